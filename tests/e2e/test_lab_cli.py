"""`denoiser lab --quick` end to end on ../shared/data: report, figures, JSON and models agree with each other."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from denoiser.cli import EXIT_USAGE, main
from denoiser.lab.report import format_value
from tests.helpers import REPO, shared_data

pytestmark = pytest.mark.slow  # the slow tier: `pytest -m slow` (scripts/run-tests.sh runs both)


def report_tables(report: str) -> dict[str, list[list[str]]]:
    """Each Markdown table of the report, keyed by the italic caption line just above it."""
    tables: dict[str, list[list[str]]] = {}
    lines = report.splitlines()
    for i, line in enumerate(lines):
        if line.startswith("*") and i + 2 < len(lines) and lines[i + 2].startswith("| "):
            rows, j = [], i + 4  # skip the header and the separator
            while j < len(lines) and lines[j].startswith("| "):
                rows.append([c.strip() for c in re.split(r"(?<!\\)\|", lines[j])[1:-1]])
                j += 1
            tables[line.strip("*")] = rows
    return tables


def test_quick_lab_writes_a_consistent_report(tmp_path: Path) -> None:
    train, test = shared_data("train", "gray"), shared_data("test", "BSD68")
    out = tmp_path / "lab"
    proc = subprocess.run([sys.executable, "-m", "denoiser", "lab", "--out", str(out), "--quick", "-q",
                           "--train-data", str(train), "--test-data", str(test)],
                          capture_output=True, text=True, cwd=REPO, timeout=180)
    assert proc.returncode == 0, proc.stderr
    assert "report:" in proc.stdout and "checks agree with the theory" in proc.stdout
    report = (out / "REPORT.md").read_text()
    data = json.loads((out / "results.json").read_text())
    assert data["mode"] == "quick" and len(data["experiments"]) == 8
    pngs = re.findall(r"!\[[^\]]*\]\(([^)]+\.png)\)", report)
    assert len(pngs) == 11 and set(pngs) == {p.name for p in out.glob("*.png")}
    assert all((out / p).stat().st_size > 5000 for p in pngs)

    tables = report_tables(report)
    for e in data["experiments"]:
        assert f"**Expectation from theory.** {e['expectation']}" in report
        for t in e["tables"]:
            rows = tables[t["caption"]]
            assert len(rows) == len(t["rows"])
            for json_row, md_row in zip(t["rows"], rows, strict=True):
                assert md_row == [format_value(v).replace("|", "\\|") if isinstance(v, str) else format_value(v)
                                  for v in json_row]
                for v, cell in zip(json_row, md_row, strict=True):
                    if isinstance(v, float):
                        assert float(cell) == pytest.approx(v, rel=5.01e-3, abs=5.01e-3)
        for c in e["checks"]:
            prefix = "- ✅ **Agrees:**" if c["agrees"] else "- ❌ **Does not agree:**"
            assert f"{prefix} {c['text']}" in report
    summary = re.findall(r"\| \d \| \[[^\]]+\]\(#[^)]+\) \| (\d) of (\d) checks \|", report)
    assert [(int(a), int(n)) for a, n in summary] == [
        (sum(c["agrees"] for c in e["checks"]), len(e["checks"])) for e in data["experiments"]]

    env = {**os.environ, "DENOISER_MODELS_DIR": str(out / "models")}
    listed = subprocess.run([sys.executable, "-m", "denoiser", "models", "--json"], capture_output=True, text=True,
                            cwd=REPO, env=env, timeout=60)
    names = {m["name"] for m in json.loads(listed.stdout) if m["source"] == "user"}
    assert names == {m["name"] for m in data["models"]} and all(n.startswith("lab-") for n in names)


def test_lab_rejects_unknown_experiments(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["lab", "--out", str(tmp_path), "--only", "identity,telepathy"]) == EXIT_USAGE
    assert "unknown experiment 'telepathy'" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())
