"""The speed benchmark's smoke run: every part it keeps runs in its own process and lands in the tables."""

import json
import shutil
import subprocess
import sys

import pytest

from tests.helpers import REPO, make_tiny_model, shared_data

pytestmark = pytest.mark.slow  # the slow tier: `pytest -m slow` (scripts/run-tests.sh runs both)


def test_speed_bench_quick_run_times_models_and_anchors(tmp_path):
    kodak = shared_data("test", "Kodak24")
    images = tmp_path / "two"  # --images: the photos are tiled from this folder instead
    images.mkdir()
    for png in sorted(kodak.glob("*.png"))[:2]:
        shutil.copy(png, images)
    model = make_tiny_model(tmp_path / "tiny.pt")
    out = tmp_path / "bench"
    proc = subprocess.run(
        [sys.executable, "bench/speed.py", "--quick", "--models", str(model), "--skip", "dncnn,nlm,bf16,onnxruntime",
         "--images", str(images), "--out", str(out)],
        cwd=REPO, capture_output=True, text=True, timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    report = json.loads((out / "speed.json").read_text())
    assert report["conv_gflops"] > 1
    assert report["images"]["count"] == 2
    ours, ffdnet = report["cases"]
    assert ours["case"]["model"] == str(model) and ffdnet["case"]["arch"] == "ffdnet"
    for case in (ours, ffdnet):
        assert case["median_s"] > 0 and case["mp"] > 0.04 and case["rss_mb"] > 50
        assert 0 < case["gflops"] and case["peak_share"] > 0
    assert ffdnet["macs_per_pixel"] > 50 * ours["macs_per_pixel"]  # the 12×96 workload vs the tiny net
    assert [b["case"]["backend"] for b in report["backends"]] == ["eager", "eager-contiguous"]
    assert all(b["median_s"] > 0 and b["gflops"] > 0 for b in report["backends"])
    assert [t["case"]["tile"] for t in report["tiles"]] == [256]
    md = (out / "speed.md").read_text()
    assert "| method | MP | seconds |" in md and "FFDNet-sized net (12×96)" in md and "GFLOP/s" in md
    assert "tiling 2 Kodak24 images" in md
    so = report["scaleout"]  # the Ray batch and the torchrun training case ran and were measured
    assert "error" not in so["batch"] and "error" not in so["ddp"], so
    assert so["batch"]["files"] == 2 and so["batch"]["local_s"] > 0 and so["batch"]["ray_s"] > 0
    assert so["ddp"]["one_patches_per_s"] > 0 and so["ddp"]["ddp_patches_per_s"] > 0
    assert "**Scale-out, batch**" in md and "**Scale-out, training**" in md
