"""The quality benchmark's partial runs: a variant on some sets, merged into the stored results."""

import importlib.util
import json
import subprocess
import sys

import pytest
from PIL import Image as PILImage

from tests.helpers import REPO, SHARED_DATA, shared_data

pytestmark = pytest.mark.slow  # the slow tier: `pytest -m slow` (scripts/run-tests.sh runs both)


@pytest.fixture(scope="module")
def quality():
    """bench/quality.py as a module (bench/ is not a package)."""
    spec = importlib.util.spec_from_file_location("quality_bench", REPO / "bench" / "quality.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run_quality(out, *args: str) -> dict:
    proc = subprocess.run([sys.executable, "bench/quality.py", "--out", str(out), "--limit", "1", "--no-real", *args],
                          cwd=REPO, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads((out / "quality.json").read_text())


def test_ensemble_cells_merge_into_earlier_results(tmp_path):
    shared_data("test", "Set12")
    first = run_quality(tmp_path, "--sets", "Set12", "--variants", "given", "--no-finishing", "--no-jpeg", "--no-raw",
                        "--no-luma")
    assert list(first["synthetic"]) == ["given"] and "real" not in first and "finishing" not in first
    merged = run_quality(tmp_path, "--sets", "Set12", "--variants", "ensemble", "--merge", "--no-finishing", "--no-jpeg",
                         "--no-raw", "--no-luma")
    given, ens = merged["synthetic"]["given"]["Set12"], merged["synthetic"]["ensemble"]["Set12"]
    assert given == first["synthetic"]["given"]["Set12"]
    for sigma in ("15", "25", "50"):
        assert ens[sigma]["psnr"] > given[sigma]["psnr"]
    md = (tmp_path / "quality.md").read_text()
    assert "ours ×8 self-ensemble" in md and "| **ours, σ given** | " in md and " | – | " in md
    bad = subprocess.run([sys.executable, "bench/quality.py", "--out", str(tmp_path), "--sets", "Set13"],
                         cwd=REPO, capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "Set13" in bad.stderr
    mixed = subprocess.run([sys.executable, "bench/quality.py", "--out", str(tmp_path), "--sets", "Set12", "--merge"],
                           cwd=REPO, capture_output=True, text=True, timeout=120)
    assert mixed.returncode == 2 and "1 images per set" in mixed.stderr and "would mix" in mixed.stderr
    assert json.loads((tmp_path / "quality.json").read_text()) == merged


def test_merge_replaces_only_what_the_new_run_measured(quality):
    old = {"models": {"color": "a.pt"}, "seconds": 9,
           "synthetic": {"given": {"Set12": {"15": 1}, "Kodak24": {"15": 2}}},
           "real": {"SIDD": {"images": 10, "noisy": 3, "photo (ours)": 4, "CBM3D, σ tuned": 5}}}
    new = {"models": {"color": "b.pt"}, "seconds": 1,
           "synthetic": {"given": {"Kodak24": {"15": 7}}, "ensemble": {"Kodak24": {"15": 8}}},
           "real": {"SIDD": {"images": 10, "noisy": 3, "photo (ours)": 6, "photo ×8 (ours)": 7}}}
    merged = quality.merge(old, new)
    assert merged["models"] == {"color": "b.pt"} and merged["seconds"] == 1
    assert merged["synthetic"] == {"given": {"Set12": {"15": 1}, "Kodak24": {"15": 7}}, "ensemble": {"Kodak24": {"15": 8}}}
    assert merged["real"]["SIDD"] == {"images": 10, "noisy": 3, "photo (ours)": 6, "CBM3D, σ tuned": 5, "photo ×8 (ours)": 7}
    assert old["synthetic"]["given"]["Kodak24"] == {"15": 2}  # the stored results are not modified in place


def test_real_table_puts_photo_and_its_ensemble_first(quality):
    cell = {"psnr": 40.0, "ssim": 0.9}
    res = {"synthetic": {}, "real": {"SIDD": {"images": 2, "noisy": cell, "gaussian-color (ours)": cell,
                                              "CBM3D, σ tuned": cell, "photo (ours)": cell, "photo ×8 (ours)": cell}}}
    header = next(line for line in quality.markdown(res).splitlines() if line.startswith("| set |"))
    assert header == ("| set | images | noisy input | photo (ours) | photo ×8 (ours) | gaussian-color (ours) "
                      "| CBM3D, σ tuned |")


def test_finishing_table_measures_each_control_and_draws_its_sheet(tmp_path):
    shared_data("test", "Kodak24")
    res = run_quality(tmp_path, "--sets", "", "--variants", "", "--no-fidelity", "--no-jpeg", "--no-raw", "--no-luma")
    fin = res["finishing"]
    kodak = fin["Kodak24 σ25"]
    assert kodak["images"] == 1 and set(kodak) - {"images"} == {"as denoised", "detail 0.5", "detail 1", "grain 0.3",
                                                               "luminance 0.7"}
    assert kodak["grain 0.3"]["psnr"] < kodak["as denoised"]["psnr"]  # fresh grain is not the clean image
    assert kodak["detail 1"]["psnr"] != kodak["as denoised"]["psnr"]
    assert "Finishing controls" in (tmp_path / "quality.md").read_text()
    sheet = PILImage.open(tmp_path / "finish_sheet.png")
    assert sheet.width > 6 * sheet.height  # noisy, five finishes, clean side by side


def test_jpeg_table_scores_the_decode_and_each_model(quality, monkeypatch, models_dir):
    from denoiser.checkpoint import load_model

    shared_data("test", "Kodak24")
    monkeypatch.setattr(quality, "JPEG_SETS", ("Kodak24",))
    monkeypatch.setattr(quality, "JPEG_QUALITIES", (10, 40))
    table = quality.jpeg_table({"tiny": load_model("gaussian-color")}, limit=1)
    entry = table["Kodak24"]
    assert entry["images"] == 1 and list(entry["rows"]) == ["q10", "q40", "q10 + σ15", "q40 + σ15"]
    rows = entry["rows"]
    assert rows["q10"]["decoded"] < rows["q40"]["decoded"]  # more compression, more loss
    assert rows["q40 + σ15"]["decoded"] < rows["q40"]["decoded"] and set(rows["q10"]) == {"decoded", "tiny"}
    md = "\n".join(quality.jpeg_markdown(table))
    assert "| Kodak24 (1) | q10 + σ15 |" in md


def test_raw_table_scores_the_develop_of_each_method():
    pytest.importorskip("rawpy")
    shared_data("test", "Kodak24")
    sys.path.insert(0, str(REPO / "bench"))
    from raw_table import raw_markdown, raw_table

    from denoiser.checkpoint import load_model

    table = raw_table(SHARED_DATA, load_model("raw"), load_model("photo"), limit=1)
    assert table["images"] == 1 and list(table["rows"]) == ["level 0.5", "level 0.75", "level 1"]
    high = table["rows"]["level 1"]  # very high ISO: the raw model cleans the mosaic, photo the LibRaw develop
    assert high["raw (ours)"] > high["noisy develop"] + 3 and high["photo on the develop (ours)"] > high["noisy develop"] + 3
    assert table["rows"]["level 1"]["noisy develop"] < table["rows"]["level 0.5"]["noisy develop"]
    assert "| level 0.75 |" in "\n".join(raw_markdown(table))


def test_luma_table_measures_noise_alike_in_every_channel(tmp_path):
    shared_data("test", "Kodak24")
    res = run_quality(tmp_path, "--sets", "", "--variants", "", "--no-fidelity", "--no-finishing", "--no-jpeg",
                      "--no-raw")
    table = res["luma"]
    assert set(table) >= {"Kodak24 colour, σ15 alike in every channel", "Kodak24 B&W, σ25 alike in every channel"}
    for label, row in table.items():
        bw = "B&W" in label
        assert ("gaussian-gray (ours)" in row) == bw  # the grey model only where the photo is B&W
        assert row["images"] >= 1 and {"noisy", "photo (ours)", "gaussian-color (ours)"} <= set(row)
        if bw and "Kodak24" in label:
            assert row["gaussian-gray (ours)"] > row["noisy"] + 3  # a grey denoiser removes it: the case is sound
    md = (tmp_path / "quality.md").read_text()
    assert "Noise alike in every channel" in md and "| Kodak24 colour, σ15 alike in every channel | 1 |" in md
