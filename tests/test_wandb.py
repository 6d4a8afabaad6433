"""Weights & Biases beside TensorBoard (``logging.wandb_project``), in W&B's offline mode, read back
from the run's own transaction log (tests/wandb_records.py)."""

import sys

import pytest
import torch
from launch import read_scalars
from wandb_records import OFFLINE, offline_runs, read_run, same_curves

from ecgdist.config import ConfigError, FinetuneConfig, PretrainConfig, load_config
from ecgdist.finetune.job import JobSpec, run_job
from ecgdist.finetune.weights import build_finetune_model
from ecgdist.models.pretrained import save_weights


def test_a_fine_tune_job_logs_the_same_scalars_and_figure_to_wandb(ptbxl_corpus, tmp_path):
    overrides = [f"data.corpus={ptbxl_corpus}", "finetune.epochs=2", "finetune.probe_epochs=1", "finetune.bootstrap=0"]
    cfg = load_config(FinetuneConfig, "configs/finetune/ptbxl_tiny.yaml", overrides)
    torch.manual_seed(0)
    save_weights(build_finetune_model(cfg, "scratch", 150), tmp_path / "start.pth")
    cfg = load_config(FinetuneConfig, "configs/finetune/ptbxl_tiny.yaml",
                      [*overrides, f"finetune.weights={tmp_path / 'start.pth'}", *OFFLINE])
    job_dir = tmp_path / "sweep" / "jobs" / "rhythm"
    result = run_job(cfg, JobSpec("rhythm", "post_training", 1.0, 0), job_dir)
    logged = read_run(job_dir)
    tensorboard = read_scalars(job_dir / "tb")
    hparams = {tag: tensorboard.pop(tag) for tag in ("test/macro_auroc", "test/macro_auprc")}  # W&B: the summary
    assert {"probe/train_loss", "full/train_loss", "val/macro_auroc", "lr"} <= set(tensorboard)
    same_curves(tensorboard, logged["history"])
    assert len(tensorboard["val/macro_auroc"]) == 3  # one probe epoch, two full ones
    # The ROC/PR figure as an image file of the run, and the hparams' metrics and values.
    (step, kind), = logged["history"]["test/roc_pr/_type"]
    assert kind == "image-file" and step == result["selected_epoch"]
    image = offline_runs(job_dir)[0].parent / "files" / logged["history"]["test/roc_pr/path"][0][1]
    assert image.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    for tag, [(_, value)] in hparams.items():
        assert logged["summary"][tag] == pytest.approx(value, rel=1e-6) == result[tag.removeprefix("test/")]
    assert logged["config"]["strategy"] == "post_training" and logged["config"]["finetune"]["epochs"] == 2


def test_a_resumed_run_continues_its_wandb_run(tmp_path):
    from ecgdist.config import LoggingSection
    from ecgdist.wandb_log import WandbLogger

    section = LoggingSection("ecgdist-tests", "", "offline")
    # The second attempt resumed from step 300's checkpoint; 400 steps of 8 scalars fill several 32 KiB blocks.
    for attempt, steps in enumerate((range(1, 302), range(301, 401))):
        logger = WandbLogger(section, tmp_path, "run", None, {"attempt": attempt})
        for step in steps:
            logger.log({f"train/loss_{k}": k / step for k in range(8)}, step)
        logger.close()
    logged = read_run(tmp_path)
    assert len(offline_runs(tmp_path)) == 2 and len(set(logged["ids"])) == 1  # two attempts, one run to sync
    assert max(path.stat().st_size for path in offline_runs(tmp_path)) > 2 * 32 * 1024
    assert logged["history"]["train/loss_7"] == [(s, 7 / s) for s in [*range(1, 302), *range(301, 401)]]
    assert logged["ids"][0] == (tmp_path / "wandb_id.txt").read_text().strip()


def test_wandb_settings_are_checked_when_the_config_loads(monkeypatch):
    with pytest.raises(ConfigError, match="'logging.wandb_mode' is 'ofline'"):
        load_config(PretrainConfig, "configs/pretrain/ecgfounder_tiny.yaml", ["logging.wandb_mode=ofline"])
    monkeypatch.setitem(sys.modules, "wandb", None)  # as if not installed: the import raises ImportError
    with pytest.raises(ConfigError, match=r"'logging.wandb_project' is set but wandb is not installed: "
                                          r"pip install 'ecgdist\[wandb\]'"):
        load_config(FinetuneConfig, "configs/finetune/ptbxl_tiny.yaml", OFFLINE)
    load_config(FinetuneConfig, "configs/finetune/ptbxl_tiny.yaml")  # no project: wandb is never imported
