"""Each backbone fine-tuned the way its authors do: its input recipe, its own corpus and keys."""

import json

import pytest
import torch
from conftest import REPO

from ecgdist.config import ConfigError, FinetuneConfig, FinetuneSection, load_config
from ecgdist.data.dataset import ShardCorpus
from ecgdist.finetune.job import make_optimizer, stages
from ecgdist.finetune.schedule import StageSchedule
from ecgdist.finetune.plan import backbones, expand
from ecgdist.finetune.weights import check_weights, starting_weights
from ecgdist.models.net1d import Net1D
from ecgdist.models.pretrained import save_weights


@pytest.fixture(scope="module")
def filtered_corpus(ptbxl_ecgfounder_corpus):
    return ptbxl_ecgfounder_corpus


@pytest.fixture(scope="module")
def released(tmp_path_factory):
    """A file in the released ECGFounder layout: the released Net1D, no ecgdist record of its recipe."""
    path = tmp_path_factory.mktemp("w") / "12_lead_ECGFounder.pth"
    save_weights(Net1D(), path, epoch=3)
    return path


def config(corpus, weights, *overrides):
    return load_config(FinetuneConfig, REPO / "configs/finetune/ptbxl_tiny.yaml",
                       [f"data.corpus={corpus}", f"finetune.weights={weights}", "model.widths=[64,160,160,400,400,1024,1024]",
                        "model.blocks=[2,2,2,3,3,4,4]", "data.crop_samples=5000", *overrides])


def test_released_ecgfounder_weights_want_their_filter(ptbxl_corpus, filtered_corpus, released):
    with pytest.raises(ConfigError, match=r"filter ecgfounder \(the released ECGFounder recipe\) vs none \(corpus\)"):
        check_weights(config(ptbxl_corpus, released), ShardCorpus(ptbxl_corpus))
    check_weights(config(filtered_corpus, released), ShardCorpus(filtered_corpus))  # as released: accepted
    with pytest.raises(ConfigError, match=r"normalize ecgfounder \(the released ECGFounder recipe\) vs per_lead"):
        check_weights(config(filtered_corpus, released, "data.normalize=per_lead"), ShardCorpus(filtered_corpus))
    anyway = config(ptbxl_corpus, released, "finetune.allow_recipe_mismatch=true")
    _, known, _ = starting_weights(anyway, "baseline", ShardCorpus(ptbxl_corpus))
    assert "filter ecgfounder" in known["recipe_mismatch"]  # the row is marked in results.md


def test_a_backbones_corpus_and_keys_reach_its_jobs(ptbxl_corpus, filtered_corpus, released, tmp_path):
    cfg = load_config(FinetuneConfig, REPO / "configs/finetune/ptbxl_tiny_two_backbones.yaml", [
        f"data.corpus={ptbxl_corpus}", f"sweep.backbones.0.weights={released}",
        f"sweep.backbones.0.corpus={filtered_corpus}", "sweep.backbones.0.finetune={lr: 3.0e-4, drop_path: 0.3}"])
    (net1d, first), (mtecg, second) = backbones(cfg)
    assert (net1d, mtecg) == ("net1d", "mtecg")
    assert first.data.corpus == str(filtered_corpus) and second.data.corpus == str(ptbxl_corpus)
    assert (first.finetune.lr, first.finetune.drop_path) == (3.0e-4, 0.3)
    assert (second.finetune.lr, second.finetune.drop_path) == (cfg.finetune.lr, cfg.finetune.drop_path)
    assert {job_cfg.finetune.lr for spec, job_cfg in expand(cfg) if spec.backbone == "net1d"} == {3.0e-4}
    with pytest.raises(ConfigError, match=r"'sweep.backbones \(net1d\) finetune' has lrr"):
        load_config(FinetuneConfig, REPO / "configs/finetune/ptbxl_tiny_two_backbones.yaml",
                    ["sweep.backbones.0.finetune={lrr: 1}"])
    with pytest.raises(ConfigError, match="finetune.drop_path"):  # the override is range-checked like the key
        backbones(load_config(FinetuneConfig, REPO / "configs/finetune/ptbxl_tiny_two_backbones.yaml",
                              ["sweep.backbones.0.finetune={drop_path: 5}"]))
    assert json.dumps(cfg.sweep.backbones[0].finetune)  # plain data: saved in the sweep's config.yaml


def test_the_default_recipe_is_the_released_ecgfounder_fine_tune():
    """Restated from PKUDigitalHealth/ECGFounder's MIMIC_finetune_template.py (12-lead and 1-lead alike):
    Adam(model.parameters(), lr=5e-5, weight_decay=1e-5), BCE with logits, batches of 256, 30 epochs,
    ReduceLROnPlateau(mode='max', factor=0.1, patience=10) stepped with the validation AUROC each epoch."""
    ft = FinetuneSection()
    assert (ft.epochs, ft.batch_size, ft.optimizer, ft.schedule) == (30, 256, "adam", "plateau")
    assert stages(ft, "baseline") == [("full", 30)]
    model = Net1D(widths=(16, 32), blocks=(1, 1), num_classes=5)
    optimizer = make_optimizer(model, "full", ft, "baseline")
    assert type(optimizer) is torch.optim.Adam and len(optimizer.param_groups) == 1
    group = optimizer.param_groups[0]
    assert (group["lr"], group["weight_decay"]) == (5e-5, 1e-5)
    assert len(group["params"]) == len(list(model.parameters()))  # every parameter decays, biases too
    released = torch.optim.Adam(model.parameters(), lr=5e-5, weight_decay=1e-5)
    plateau = torch.optim.lr_scheduler.ReduceLROnPlateau(released, mode="max", factor=0.1, patience=10)
    ours = StageSchedule(optimizer, ft, ft.epochs, steps_per_epoch=3)
    val_auroc = [0.70, 0.75, 0.74] + [0.75] * 12 + [0.80] + [0.79] * 14  # two plateaus long enough to cut
    lrs = []
    for auroc in val_auroc:
        ours.after_epoch(auroc)
        plateau.step(auroc)
        lrs.append(optimizer.param_groups[0]["lr"])
        assert lrs[-1] == released.param_groups[0]["lr"]
    assert lrs[0] == 5e-5 and lrs[-1] == pytest.approx(5e-7)  # both plateaus cut it tenfold
