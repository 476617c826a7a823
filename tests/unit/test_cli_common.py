"""The pieces the subcommands share."""

from denoiser.cli.common import drain_training
from denoiser.progress import Progress


def _run(stop_after: int):
    for i in range(3):
        if i == stop_after:
            raise KeyboardInterrupt
        yield Progress(i + 1, 3, f"step {i + 1}")
    return "model.pt"


def test_a_training_drained_to_its_end_gives_its_result_and_ctrl_c_says_where_the_checkpoint_is(capsys):
    seen = []
    assert drain_training(_run(99), seen.append, True, "stopped") == "model.pt" and len(seen) == 3
    assert drain_training(_run(1), seen.append, True, "stopped; kept at m.pt") is None
    assert capsys.readouterr().err == "stopped; kept at m.pt\n"
    assert drain_training(_run(1), seen.append, False, "stopped") is None  # other ranks stay quiet
    assert capsys.readouterr().err == ""
