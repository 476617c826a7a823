"""Recipes: a TrainConfig as TOML and back, the command line over the recipe, and the committed configs/."""

import re
from pathlib import Path

import pytest

from denoiser.checkpoint import load_checkpoint
from denoiser.config_dict import config_changes
from denoiser.errors import DenoiserError
from denoiser.losses import LossConfig
from denoiser.recipe import merge_recipe, read_recipe, write_recipe
from denoiser.resources import bundled_models_dir
from denoiser.training import NoiseConfig, TrainConfig
from denoiser.training.config import RESUME_MAY_CHANGE

REPO = Path(__file__).resolve().parents[2]


def test_a_config_written_as_toml_reads_back_equal(tmp_path):
    cfg = TrainConfig(data=["a", "b"], out="m.pt", arch_config={"channels": [8, 16], "noise_map": True},
                      noise=NoiseConfig(name="camera", jpeg_prob=0.5, jpeg_quality=(30, 95), params={"p": 0.1}),
                      loss=LossConfig(sparsity_beta=0.2), minutes=3.5, description='say "hi"')
    path = tmp_path / "r.toml"
    path.write_text(write_recipe(cfg.to_dict()))
    assert TrainConfig.from_dict(read_recipe(path)) == cfg


def test_the_command_line_wins_over_the_recipe_and_the_recipe_over_the_defaults():
    flags = TrainConfig(data=["cli"], out="m.pt", lr=5e-4, arch_config={"blocks": 1}).to_dict()
    recipe = {"data": ["recipe"], "lr": 1e-4, "steps": 7, "noise": {"jpeg_prob": 0.5, "clip_prob": 0.0},
              "arch_config": {"channels": [8, 16], "blocks": 3}}
    merged = TrainConfig.from_dict(merge_recipe(recipe, flags, {"data", "noise.clip_prob", "arch_config.blocks"}))
    assert merged.data == ["cli"] and merged.lr == 1e-4 and merged.steps == 7
    assert merged.noise.jpeg_prob == 0.5 and merged.noise.clip_prob == 0.5  # the flag's value (its default here)
    assert merged.arch_config == {"channels": [8, 16], "blocks": 1}


def test_a_broken_or_misspelt_recipe_is_refused_by_name(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("lr = \n")
    with pytest.raises(DenoiserError, match="not valid TOML"):
        read_recipe(bad)
    with pytest.raises(DenoiserError, match="cannot read recipe"):
        read_recipe(tmp_path / "missing.toml")
    typo = tmp_path / "typo.toml"
    typo.write_text('data = ["x"]\nout = "m.pt"\n[noise]\nclip_probability = 0.3\n')
    with pytest.raises(DenoiserError, match="unknown NoiseConfig setting clip_probability"):
        TrainConfig.from_dict(read_recipe(typo))
    wrong = tmp_path / "wrong.toml"
    wrong.write_text('data = ["x"]\nout = "m.pt"\n[noise]\nclean_sigma = "estimated"\n')
    with pytest.raises(DenoiserError, match="clean_sigma must be one of zero, estimate, not 'estimated'"):
        TrainConfig.from_dict(read_recipe(wrong))


@pytest.mark.parametrize("name", sorted(p.stem for p in bundled_models_dir().glob("*.pt")))
def test_each_bundled_model_has_its_recipe_committed_and_current(name):
    recipe = TrainConfig.from_dict(read_recipe(REPO / "configs" / f"{name}.toml"))
    stored = load_checkpoint(bundled_models_dir() / f"{name}.pt", "bundled").info.training["config"]
    same = TrainConfig.from_dict({k: v for k, v in stored.items() if k in TrainConfig.__dataclass_fields__})
    paths = ("data", "real_data", "base")  # written for this repo instead of the training machine's
    assert config_changes(same.to_dict(), recipe.to_dict(), (*RESUME_MAY_CHANGE, *paths)) == []
    made = [d for d in recipe.real_data if d.startswith("runs/")]  # pair folders the model card's command makes
    assert all(d.startswith("../shared/data/train/") for d in [*recipe.data, *recipe.real_data]
               if d not in made)  # never test sets
    card = (REPO / "resources" / "models" / "MODEL_CARD.md").read_text(encoding="utf-8")
    for folder in made:  # made from training photos, and only from them
        assert re.search(rf"bench/develop_pairs\.py \.\./shared/data/train/\S+ --out {re.escape(folder)} ", card), folder
