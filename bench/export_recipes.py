"""Write configs/<model>.toml: each bundled model's last training stage, read from its own checkpoint.

The checkpoint stores the `TrainConfig` that made its weights, so the committed recipe cannot drift
from them. Paths of a GPU run (`.gpu_data/...`, the copy of ../shared/data/train that `bench/gpu_train.sh`
makes) are written as ../shared/data/train/...; the machine settings (device, threads, workers) are left
to the machine that reruns it. Rerun a stage with `denoiser train --config configs/<model>.toml`.

    python bench/export_recipes.py
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from denoiser.checkpoint import load_checkpoint  # noqa: E402
from denoiser.recipe import write_recipe  # noqa: E402
from denoiser.resources import bundled_models_dir  # noqa: E402
from denoiser.training import TrainConfig  # noqa: E402

MACHINE = ("device", "threads", "workers", "precision")  # left to the machine that reruns the stage


def _repo_path(p: str | None, name: str) -> str | None:
    if p is None:
        return None
    if p.startswith(".gpu_data/base/"):
        return f"resources/models/{name}.pt"  # the GPU stage continued from the weights bundled before it
    return p.replace(".gpu_data/", "../shared/data/train/", 1) if p.startswith(".gpu_data/") else p


def recipe_for(name: str) -> dict[str, Any]:
    """The stored config of bundled model `name` as a portable recipe dict (checked by TrainConfig)."""
    stored = load_checkpoint(bundled_models_dir() / f"{name}.pt", "bundled").info.training["config"]
    cfg = TrainConfig.from_dict({k: v for k, v in stored.items() if k in {f for f in TrainConfig.__dataclass_fields__}})
    d = cfg.to_dict()
    d["data"] = [_repo_path(p, name) for p in d["data"]]
    d["real_data"] = [_repo_path(p, name) for p in d["real_data"]]
    d["base"] = _repo_path(d["base"], name)
    d["out"] = f"runs/{name}.pt"
    for k in MACHINE:
        d.pop(k, None)
    return d


def main() -> None:
    out = REPO / "configs"
    out.mkdir(exist_ok=True)
    for path in sorted(bundled_models_dir().glob("*.pt")):
        name = path.stem
        recipe = recipe_for(name)
        notes = []
        if recipe["base"] == f"resources/models/{name}.pt":
            notes.append("`base` is the weights bundled before this stage, in git history (the model card names them)")
        if any(p.startswith("runs/") for p in recipe["real_data"]):
            notes.append("the runs/ folders of `real_data` are made first, by the model card's reproduce command")
        text = (f"# The last training stage of the bundled `{name}` model, read from its checkpoint by\n"
                f"# `python bench/export_recipes.py` (resources/models/MODEL_CARD.md tells the earlier stages).\n"
                f"# Rerun it: denoiser train --config configs/{name}.toml  (options given there override these)\n"
                + "".join(f"# {n}\n" for n in notes) + "\n" + write_recipe(recipe))
        (out / f"{name}.toml").write_text(text, encoding="utf-8")
        print(f"wrote configs/{name}.toml")


if __name__ == "__main__":
    main()
