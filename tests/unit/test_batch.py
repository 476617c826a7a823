import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image as PILImage

from denoiser.batch import BatchOptions, plan_batch, run_batch
from denoiser.imageio import load_image
from denoiser.progress import drain


def _write(path: Path, shape=(24, 32, 3), seed=0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    a = (np.random.default_rng(seed).random(shape) * 255).astype(np.uint8)
    PILImage.fromarray(a.squeeze()).save(path)
    return path


def test_tree_is_mirrored_and_bad_files_do_not_stop_the_rest(tmp_path, models_dir):
    src = tmp_path / "in"
    _write(src / "a.png")
    _write(src / "sub" / "b.png", (20, 20, 1))
    (src / "sub" / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\nbroken")
    (src / "empty.jpg").write_bytes(b"")
    out = tmp_path / "out"
    summary = drain(run_batch([src], BatchOptions(out, recursive=True, suffix="_dn", sigma=10)))
    assert summary.count("done") == 2 and summary.count("failed") == 2
    assert (out / "a_dn.png").exists() and (out / "sub" / "b_dn.png").exists()
    assert load_image(out / "sub" / "b_dn.png").channels == 1
    reasons = {r.input.name: r.reason for r in summary.failed}
    assert "corrupt.png" in reasons["corrupt.png"] and "empty" in reasons["empty.jpg"]
    assert not [p for p in out.rglob("*") if p.name.startswith(".")]  # no temp files left


def test_existing_outputs_are_skipped_unless_overwrite(tmp_path, models_dir):
    _write(tmp_path / "in" / "a.png")
    out = tmp_path / "out"
    drain(run_batch([tmp_path / "in"], BatchOptions(out, sigma=5)))
    stamp = (out / "a.png").stat().st_mtime_ns
    again = drain(run_batch([tmp_path / "in"], BatchOptions(out, sigma=5)))
    assert again.count("skipped") == 1 and (out / "a.png").stat().st_mtime_ns == stamp
    forced = drain(run_batch([tmp_path / "in"], BatchOptions(out, sigma=5, overwrite=True)))
    assert forced.count("done") == 1


def test_an_input_is_never_overwritten(tmp_path, models_dir):
    src = _write(tmp_path / "a.png")
    before = src.read_bytes()
    summary = drain(run_batch([src], BatchOptions(tmp_path, sigma=5, overwrite=True)))
    assert summary.count("failed") == 1 and "overwrite the input" in summary.failed[0].reason
    assert src.read_bytes() == before


def test_single_file_output_and_format_conversion(tmp_path, models_dir):
    src = _write(tmp_path / "a.png")
    summary = drain(run_batch([src], BatchOptions(tmp_path / "x" / "result.tif", sigma=5)))
    assert summary.count("done") == 1 and load_image(tmp_path / "x" / "result.tif").format == "tiff"
    plan = plan_batch([src, tmp_path / "missing.png"], BatchOptions(tmp_path / "o", format="jpeg"))
    assert plan[0][1] == tmp_path / "o" / "a.jpg" and plan[1][2] == "no such file or folder"
    with pytest.raises(ValueError):
        plan_batch([src], BatchOptions(tmp_path / "o", format="gif"))


def test_unwritable_output_is_reported(tmp_path, models_dir):
    src = _write(tmp_path / "a.png")
    blocker = tmp_path / "blocker"
    blocker.write_text("a file where a folder should be")
    summary = drain(run_batch([src], BatchOptions(blocker / "out", sigma=5)))
    assert summary.count("failed") == 1 and "blocker" in summary.failed[0].reason


def test_sixteen_bit_input_stays_sixteen_bit(tmp_path, models_dir):
    import tifffile

    a = (np.random.default_rng(0).random((20, 24, 3)) * 65535).astype(np.uint16)
    tifffile.imwrite(tmp_path / "deep.tif", a)
    drain(run_batch([tmp_path / "deep.tif"], BatchOptions(tmp_path / "out", sigma=5)))
    assert load_image(tmp_path / "out" / "deep.tif").bit_depth == 16


def test_cancel_leaves_no_partial_output(tmp_path, models_dir):
    _write(tmp_path / "in" / "big.png", (300, 300, 3))
    gen = run_batch([tmp_path / "in"], BatchOptions(tmp_path / "out", sigma=5, tile=128))
    next(gen)
    gen.close()
    assert not (tmp_path / "out").exists() or not any(os.scandir(tmp_path / "out"))


def test_inputs_that_would_write_the_same_file_do_not_replace_each_other(tmp_path, models_dir):
    _write(tmp_path / "in" / "photo.png", seed=1)
    _write(tmp_path / "in" / "photo.tif", seed=2)
    out = tmp_path / "out"
    summary = drain(run_batch([tmp_path / "in"], BatchOptions(out, format="png", sigma=5, overwrite=True)))
    assert summary.count("done") == 1 and summary.count("failed") == 1
    done, failed = (next(r for r in summary.results if r.status == s) for s in ("done", "failed"))
    assert failed.input.name == "photo.tif" and "also the output of" in failed.reason
    assert "photo.png" in failed.reason and str(done.input) in failed.reason
    assert [p.name for p in out.iterdir()] == ["photo.png"]
    written = load_image(out / "photo.png").data
    first = drain(run_batch([done.input], BatchOptions(tmp_path / "check.png", sigma=5)))
    assert first.count("done") == 1
    np.testing.assert_array_equal(written, load_image(tmp_path / "check.png").data)  # photo.png's result, kept


def test_an_output_folder_inside_the_input_is_not_scanned(tmp_path, models_dir):
    src = tmp_path / "shoot"
    _write(src / "a.png")
    out = src / "denoised"
    for _ in range(2):
        summary = drain(run_batch([src], BatchOptions(out, recursive=True, sigma=5)))
        assert [r.input.name for r in summary.results] == ["a.png"]
    assert sorted(p.relative_to(src).as_posix() for p in src.rglob("*.png")) == ["a.png", "denoised/a.png"]


def test_options_that_would_fail_every_file_are_refused_up_front(tmp_path, models_dir):
    from denoiser.batch import check_options
    from denoiser.errors import DenoiserError

    check_options(BatchOptions(tmp_path, format="tiff", bit_depth=16))
    with pytest.raises(ValueError, match="JPEG cannot store 16-bit"):
        check_options(BatchOptions(tmp_path, format="jpeg", bit_depth=16))
    with pytest.raises(ValueError, match="quality must be between 1 and 100"):
        check_options(BatchOptions(tmp_path, quality=0))
    with pytest.raises(DenoiserError, match="no model named 'nosuch'"):
        check_options(BatchOptions(tmp_path, model="nosuch"))
    fake = _write(tmp_path / "fake.pt.png")
    os.replace(fake, tmp_path / "fake.pt")
    with pytest.raises(DenoiserError, match="corrupt or not a model"):
        check_options(BatchOptions(tmp_path, model=str(tmp_path / "fake.pt")))


def test_a_depth_the_format_cannot_hold_fails_before_the_denoising(tmp_path, models_dir, monkeypatch):
    import denoiser.batch as batch

    _write(tmp_path / "in" / "a.jpg")
    monkeypatch.setattr(batch, "denoise_array", lambda *a, **k: pytest.fail("denoised before the depth check"))
    summary = drain(run_batch([tmp_path / "in"], BatchOptions(tmp_path / "out", bit_depth=16, sigma=5)))
    assert summary.count("failed") == 1 and "JPEG cannot store 16-bit" in summary.failed[0].reason


def test_an_output_folder_above_the_input_folder_still_gets_the_work(tmp_path, models_dir):
    _write(tmp_path / "photos" / "noisy" / "a.png")
    summary = drain(run_batch([tmp_path / "photos" / "noisy"], BatchOptions(tmp_path / "photos", sigma=5)))
    assert summary.count("done") == 1 and (tmp_path / "photos" / "a.png").exists()


def test_an_output_that_would_replace_another_input_is_refused(tmp_path, models_dir):
    folder = tmp_path / "p"
    original = _write(folder / "x.png", seed=1).read_bytes()
    _write(folder / "x.jpg", seed=2)
    summary = drain(run_batch([folder], BatchOptions(folder, format="png", sigma=5, overwrite=True)))
    assert summary.count("done") == 0 and summary.count("failed") == 2
    reasons = {r.input.name: r.reason for r in summary.results}
    assert "would replace the input" in reasons["x.jpg"] and "overwrite the input" in reasons["x.png"]
    assert (folder / "x.png").read_bytes() == original


def test_a_single_file_depth_check_uses_the_chosen_format(tmp_path, models_dir):
    src = _write(tmp_path / "a.png")
    summary = drain(run_batch([src], BatchOptions(tmp_path / "o" / "b.png", format="tiff", bit_depth=32, sigma=5)))
    assert summary.count("failed") == 0, summary.text()


def test_an_output_that_appears_during_the_run_is_skipped_not_replaced(tmp_path, models_dir):
    _write(tmp_path / "in" / "a.png")
    _write(tmp_path / "in" / "b.png", seed=1)
    out = tmp_path / "out"
    run = run_batch([tmp_path / "in"], BatchOptions(out, sigma=5))
    planted = False
    try:
        while True:
            ev = next(run)
            if not planted and ev.data.get("index") == 0 and "result" not in ev.data:
                out.mkdir(parents=True, exist_ok=True)
                (out / "a.png").write_bytes(b"the user's own file")  # appears while a.png is being denoised
                planted = True
    except StopIteration as stop:
        summary = stop.value
    assert planted
    first, second = summary.results
    assert first.status == "skipped" and "appeared" in first.reason
    assert (out / "a.png").read_bytes() == b"the user's own file"
    assert second.status == "done" and (out / "b.png").exists()
    assert not [p for p in out.iterdir() if p.name.startswith(".")]


def test_a_rerun_into_the_input_folder_leaves_its_own_outputs_alone(tmp_path, models_dir):
    folder = tmp_path / "shoot"
    _write(folder / "k1.png")
    _write(folder / "k2.png", seed=1)
    first = drain(run_batch([folder], BatchOptions(folder, suffix="_dn", sigma=5)))
    assert first.count("done") == 2
    again = drain(run_batch([folder], BatchOptions(folder, suffix="_dn", sigma=5)))
    assert again.count("failed") == 0 and again.count("skipped") == 2 and again.count("done") == 0
    assert sorted(p.name for p in folder.iterdir()) == ["k1.png", "k1_dn.png", "k2.png", "k2_dn.png"]
    assert [r.input.name for r in again.results] == ["k1.png", "k2.png"]
    overwrite = drain(run_batch([folder], BatchOptions(folder, suffix="_dn", sigma=5, overwrite=True)))
    assert overwrite.count("done") == 2 and not list(folder.glob("*_dn_dn*"))
    lone = tmp_path / "lone"
    _write(lone / "x_dn.png")  # a suffixed name with no original beside it is an ordinary input
    assert drain(run_batch([lone], BatchOptions(lone, suffix="_dn", sigma=5))).count("done") == 1
