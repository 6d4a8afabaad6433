"""Everything a fine-tune job would fail on with its weights is found before anything is submitted."""

import argparse

import pytest
import torch
from conftest import REPO

from ecgdist.config import ConfigError, FinetuneConfig, load_config
from ecgdist.finetune.sweep import submit_finetune
from ecgdist.models.net1d import Net1D
from ecgdist.models.pretrained import save_weights

TINY_NET = dict(widths=(16, 32, 32, 64), blocks=(1, 1, 1, 1))


def sweep_config(corpus, weights, run_dir):
    return load_config(FinetuneConfig, REPO / "configs/finetune/ptbxl_tiny.yaml",
                       [f"data.corpus={corpus}", f"finetune.weights={weights}", f"run.dir={run_dir}"])


def refused(corpus, weights, tmp_path) -> str:
    with pytest.raises(ConfigError) as error:
        submit_finetune(sweep_config(corpus, weights, tmp_path / "sweep"), cluster="debug")
    assert not (tmp_path / "sweep" / "jobs").exists() and not (tmp_path / "sweep" / "submitit").exists()
    return str(error.value)


def test_a_file_with_a_pickled_class_is_refused_by_name_and_never_unpickled(ptbxl_corpus, tmp_path):
    torch.save({"state_dict": Net1D(**TINY_NET).state_dict(), "args": argparse.Namespace(lr=1e-4)},
               tmp_path / "w.pth")  # what training scripts often leave in a checkpoint
    message = refused(ptbxl_corpus, tmp_path / "w.pth", tmp_path)
    assert "argparse.Namespace" in message and "weights_only=False" not in message


def test_weights_that_do_not_fit_the_model_are_refused_listing_the_differences(ptbxl_corpus, tmp_path):
    save_weights(Net1D(widths=(16, 32, 32, 32), blocks=(1, 1, 1, 1)), tmp_path / "w.pth")
    message = refused(ptbxl_corpus, tmp_path / "w.pth", tmp_path)
    assert "does not fit Net1D" in message and "shape mismatch" in message


@pytest.mark.parametrize("field, value", [("rate_hz", 250), ("filter", "ecgfounder"), ("seconds", 5.0)])
def test_weights_trained_on_another_recipe_are_refused_naming_the_field(ptbxl_corpus, tmp_path, field, value):
    from ecgdist.data.shards import read_manifest

    recipe = {**read_manifest(ptbxl_corpus).recipe.to_dict(), field: value}
    save_weights(Net1D(**TINY_NET), tmp_path / "w.pth", recipe=recipe)
    message = refused(ptbxl_corpus, tmp_path / "w.pth", tmp_path)
    assert f"{field} {value} (weights)" in message


def test_fitting_weights_with_the_corpus_recipe_pass(ptbxl_corpus, tmp_path):
    from ecgdist.data.shards import read_manifest

    save_weights(Net1D(**TINY_NET), tmp_path / "w.pth", recipe=read_manifest(ptbxl_corpus).recipe.to_dict())
    cfg = sweep_config(ptbxl_corpus, tmp_path / "w.pth", tmp_path / "sweep")
    from ecgdist.finetune.sweep_checks import check_inputs

    check_inputs(cfg)  # no error
