"""The fine-tuning benchmark's smoke run: one case rerun, the others kept from the last results."""

import json
import subprocess
import sys

import pytest

from tests.helpers import REPO, make_tiny_model, shared_data

pytestmark = pytest.mark.slow  # the slow tier: `pytest -m slow` (scripts/run-tests.sh runs both)


def test_finetune_bench_reruns_one_case_and_keeps_the_others(tmp_path):
    shared_data("test", "real")
    model = make_tiny_model(tmp_path / "tiny.pt")
    out = tmp_path / "bench"
    out.mkdir()
    kept = {"sigma": {"25": {"base": 30.0, "finetuned": 30.1, "change": 0.1, "ok": True}}, "train_images": 1,
            "test_images": 1, "passed": True}
    (out / "finetune.json").write_text(json.dumps({"no_harm": kept}))
    proc = subprocess.run(
        [sys.executable, "bench/finetune.py", "--quick", "--cases", "noisy", "--noisy-bases", str(model),
         "--color-model", str(model), "--out", str(out), "--device", "cpu"],
        cwd=REPO, capture_output=True, text=True, timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    res = json.loads((out / "finetune.json").read_text())
    assert "clean" not in res and res["no_harm"] == kept and res["kept_from_previous_run"] == ["no_harm"]
    rows = list(res["noisy"].values())
    assert {r["set"] for r in rows} == {"SIDD_medium10", "SIDD_val10"}
    for r in rows:
        assert r["base_model"] == str(model) and r["train_images"] == r["test_images"] == 2
        assert 15 < r["noisy"] < 40 and r["finetuned"] > 15 and r["gain"] == r["finetuned"] - r["base"]
        assert r["run"]["validation_verified"] is False and r["run"]["validation_better"] is None
    md = (out / "finetune.md").read_text()
    assert "**Noisy mode**" in md and "**No-harm check**" in md and "**Clean mode**" not in md
    assert "no_harm kept from the previous full run" in md
