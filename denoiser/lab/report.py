"""Writing the lab's results: `results.json` (every number) and `REPORT.md` (tables, figures and verdicts from it)."""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from denoiser.lab.common import LAB_PREFIX, ExperimentResult, LabContext, Table, json_ready

REPORT_NAME = "REPORT.md"
RESULTS_NAME = "results.json"


def format_value(value: Any) -> str:
    """How a table cell is written: 2 decimals (3 significant digits below 1), '—' if missing, '∞' for infinity."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "—"
        if math.isinf(value):
            return "∞" if value > 0 else "−∞"
        if value == 0:
            return "0"
        return f"{value:.2f}" if abs(value) >= 1 else f"{value:.3g}"
    return str(value).replace("|", "\\|")


def markdown_table(table: Table) -> str:
    """A Markdown table of the rows."""
    lines = ["| " + " | ".join(c.replace("|", "\\|") for c in table.columns) + " |",
             "|" + "|".join(["---"] + ["---:"] * (len(table.columns) - 1)) + "|"]
    lines += ["| " + " | ".join(format_value(v) for v in row) + " |" for row in table.rows]
    return "\n".join(lines)


def results_dict(ctx: LabContext, results: list[ExperimentResult], seconds: float) -> dict[str, Any]:
    """Everything the run measured, JSON-ready."""
    cfg = ctx.cfg
    return json_ready({
        "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "mode": ctx.scale.name,
        "seed": cfg.seed,
        "train_data": str(cfg.train_data),
        "test_data": str(cfg.test_data),
        "test_crops": ctx.test_names,
        "scale": asdict(ctx.scale),
        "seconds": seconds,
        "models": [{"name": f"{LAB_PREFIX}{name}", "file": f"models/{LAB_PREFIX}{name}.pt",
                    "trained_on": spec.training_label(), "arch_config": spec.arch_config(),
                    "robustness_lambda": spec.robustness_lambda, "sparsity_beta": spec.sparsity_beta,
                    "sparsity_rho": spec.sparsity_rho, "train_seconds": ctx.train_seconds.get(name)}
                   for name, spec in ctx.specs.items()],
        "experiments": [r.to_json() for r in results],
    })


def write_json(path: Path, data: dict[str, Any]) -> Path:
    """Write the results as indented JSON."""
    path.write_text(json.dumps(data, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return path


def render_report(data: dict[str, Any]) -> str:
    """REPORT.md from the results dict alone, so every number in it comes from `results.json`."""
    sc = data["scale"]
    exps = data["experiments"]
    out = [
        "# Autoencoder lab report",
        "",
        f"Written by `denoiser lab` ({data['mode']} mode, seed {data['seed']}) on {data['created']} in "
        f"{data['seconds'] / 60:.1f} min. Training: {sc['pool']} random {sc['patch']}×{sc['patch']} gray patches of "
        f"`{Path(data['train_data']).name}` ({'all' if sc['train_images'] is None else sc['train_images']} images), "
        f"{sc['steps']} Adam steps of {sc['batch']} patches per model. Testing: centre {sc['test_size']}×"
        f"{sc['test_size']} crops of {len(data['test_crops'])} images of `{Path(data['test_data']).name}` (never "
        "trained on), with seeded noise. Every number and verdict below is computed by this run and is also in "
        f"`{RESULTS_NAME}`; the models are ordinary checkpoints in `models/` "
        "(`DENOISER_MODELS_DIR=models denoiser models` lists them).",
        "",
        "| # | experiment | agrees with the theory | time s |",
        "|---:|---|---:|---:|",
    ]
    for i, e in enumerate(exps, 1):
        agree = sum(c["agrees"] for c in e["checks"])
        out.append(f"| {i} | [{e['title']}](#{_anchor(i, e['title'])}) | {agree} of {len(e['checks'])} checks | "
                   f"{e['seconds']:.0f} |")
    for i, e in enumerate(exps, 1):
        out += ["", f"## {i}. {e['title']}", "", f"**Expectation from theory.** {e['expectation']}", "",
                "**Measured.**", ""]
        for t in e["tables"]:
            out += [f"*{t['caption']}*", "", markdown_table(Table(**t)), ""]
        for name, caption in e["figures"]:
            out += [f"![{caption}]({name})", "", f"*{caption}*", ""]
        out += ["**Does the measurement agree?**", ""]
        for c in e["checks"]:
            if c["agrees"]:
                out.append(f"- ✅ **Agrees:** {c['text']}.")
            else:
                out.append(f"- ❌ **Does not agree:** {c['text']}. *Why:* {c['why']}")
        out += ["", f"Models: {', '.join(f'`{LAB_PREFIX}{m}`' for m in e['models'])}."]
    out += ["", "## Models", "", "| model | trained on | architecture | training s |", "|---|---|---|---:|"]
    for m in data["models"]:
        arch = ", ".join(f"{k}={v}" for k, v in m["arch_config"].items())
        extra = []
        if m["robustness_lambda"]:
            extra.append(f"λ={m['robustness_lambda']:g}")
        if m["sparsity_beta"]:
            extra.append(f"KL ρ={m['sparsity_rho']:g} β={m['sparsity_beta']:g}")
        trained = m["trained_on"] + (f" ({', '.join(extra)})" if extra else "")
        out.append(f"| `{m['name']}` | {trained} | conv-ae {arch} | {format_value(m['train_seconds'])} |")
    return "\n".join(out) + "\n"


def _anchor(i: int, title: str) -> str:
    """GitHub's heading anchor of '## i. title'."""
    keep = "".join(ch for ch in f"{i}. {title}".lower() if ch.isalnum() or ch in " -")
    return keep.replace(" ", "-")


def write_report(out: Path, ctx: LabContext, results: list[ExperimentResult], seconds: float) -> tuple[Path, Path]:
    """Write results.json and REPORT.md into `out`; returns their paths."""
    out.mkdir(parents=True, exist_ok=True)
    data = results_dict(ctx, results, seconds)
    json_path = write_json(out / RESULTS_NAME, data)
    report = out / REPORT_NAME
    report.write_text(render_report(data), encoding="utf-8")
    return report, json_path
