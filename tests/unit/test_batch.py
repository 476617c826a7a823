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
