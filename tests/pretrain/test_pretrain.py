"""Real DeepSpeed pre-training on CPU (gloo): resume equivalence, checkpoint fallback, export."""

import json
import os
import signal
import time

import pytest
import torch
import forked
from launch import export, pretrain_args, read_scalars, refused_pretrain, run_ranks, start_ranks

from ecgdist.config import PretrainConfig, load_config
from ecgdist.dist import DistEnv
from ecgdist.models import build_model
from ecgdist.models.pretrained import load_pretrained
from ecgdist.pretrain.data import build_data
from ecgdist.pretrain.engine import validation_batches
from ecgdist.pretrain.probe import HISTORY_FILE, read_history

pytestmark = pytest.mark.deepspeed


def test_single_rank_loss_falls_and_scalars_reach_tensorboard_and_wandb(ptbxl_corpus, tmp_path):
    from wandb_records import OFFLINE, read_run, same_curves

    run = tmp_path / "run"
    assert run_ranks(1, pretrain_args(ptbxl_corpus, run, "train.steps=30", *OFFLINE), tmp_path, tmp_path) == [0]
    scalars = read_scalars(run / "tb")
    loss = [v for _, v in scalars["train/loss"]]
    assert loss[-1] < 0.8 * loss[0]
    for tag in ("train/lr", "train/grad_norm", "train/samples_per_s", "train/peak_memory_mb", "val/loss"):
        assert tag in scalars, tag
    logged = read_run(run)  # logging.wandb_project, offline: the same curves in the run's W&B log
    same_curves(scalars, logged["history"])
    assert logged["config"]["train"]["steps"] == 30
    assert (run / "config.yaml").read_text().count("steps: 30") == 1


def test_signal_then_resume_ends_with_the_weights_and_probes_of_an_uninterrupted_run(ptbxl_corpus, tmp_path):
    steps = ("train.steps=60", "checkpoint.save_every_steps=0", "train.log_every_steps=1", "probe.every_steps=20",
             f"data.exclude_from={ptbxl_corpus}")
    straight, interrupted = tmp_path / "straight", tmp_path / "interrupted"
    assert run_ranks(2, pretrain_args(ptbxl_corpus, straight, *steps), tmp_path, tmp_path) == [0, 0]
    procs = start_ranks(2, pretrain_args(ptbxl_corpus, interrupted, *steps), tmp_path, tmp_path)
    deadline = time.time() + 120
    while time.time() < deadline and not list((interrupted / "tb").glob("events*")):
        time.sleep(0.1)
    time.sleep(1.0)
    procs[1].send_signal(signal.SIGUSR1)  # one rank signalled: both must save and stop
    codes = [p.wait(timeout=300) for p in procs]
    assert codes == [3, 3], "the run should stop early, saved (exit 3 outside SLURM)"
    saved = sorted(p.name for p in (interrupted / "checkpoints").glob("step-*"))
    assert len(saved) == 1 and saved[0] != "step-00000060"
    assert run_ranks(2, pretrain_args(ptbxl_corpus, interrupted, *steps), tmp_path, tmp_path) == [0, 0]
    a, b = export(straight, tmp_path / "a.pth")["state_dict"], export(interrupted, tmp_path / "b.pth")["state_dict"]
    worst = max((a[k] - b[k]).abs().max().item() for k in a)
    # Same batches, masks and RNG: equal up to float reduction order in the optimizer (seen: 0 or ~1e-8).
    assert worst <= 1e-6, worst
    # One probe per interval step, in probe.jsonl and TensorBoard, as the straight run's.
    probed = read_history(straight / HISTORY_FILE)
    assert [e["step"] for e in read_history(interrupted / HISTORY_FILE)] == [e["step"] for e in probed] == [20, 40, 60]
    for e, again in zip(probed, read_history(interrupted / HISTORY_FILE)):
        assert again["values"] == pytest.approx(e["values"], abs=1e-6)
    curve = read_scalars(interrupted / "tb")["probe/ptbxl/superdiagnostic/auroc"]
    assert curve == [(e["step"], pytest.approx(e["values"]["probe/ptbxl/superdiagnostic/auroc"], abs=1e-6))
                     for e in probed]


RESTORE_AND_SAVE = """
import sys
from pathlib import Path
from ecgdist.pretrain.checkpoint import Checkpointer
from ecgdist.config import PretrainConfig, load_config, resolve_path
from ecgdist.dist import init_distributed
from ecgdist.pretrain.main import prepare
cfg = load_config(PretrainConfig, resolve_path(sys.argv[1]), sys.argv[2:])
p = prepare(cfg, init_distributed(single_group=True))
client = {"step": p.start_step, "config": {}, "labels": p.data.labels, "recipe": p.data.recipe}
Checkpointer(Path(cfg.run.dir).parent / "restored" / "checkpoints", rank=p.checkpointer.rank).save(
    p.engine, p.start_step, client)
"""


TRAIN_IN_BF16 = """
import json, sys
import ecgdist.pretrain.data as data
import ecgdist.pretrain.main as pretrain
from ecgdist.config import PretrainConfig, load_config, resolve_path
from ecgdist.dist import init_distributed
from ecgdist.pretrain.engine import TrainLoop
from ecgdist.pretrain.objectives import objective_for
on_cpu = data.build_ds_config
def as_on_a_gpu(*args):  # build_ds_config turns bf16 off without a GPU; keep it on
    ds, layout = on_cpu(*args)
    ds["bf16"] = {"enabled": True}
    return ds, layout
data.build_ds_config = as_on_a_gpu
cfg = load_config(PretrainConfig, resolve_path(sys.argv[1]), sys.argv[2:])
p = pretrain.prepare(cfg, init_distributed(single_group=True))
loop = TrainLoop(p.engine, p.data.stream, p.data.val, objective_for(cfg.model.name), cfg.train, p.layout,
                 p.checkpointer, figure=pretrain.mae_figure(0, cfg.model.patch_samples, True)
                 if cfg.model.name == "mtecg_mae" else None)
step, _ = loop.run(0)
print(json.dumps({"step": step, "dtype": str(next(p.engine.module.parameters()).dtype),
                  "val_loss": loop.validate(step)}))
"""


@pytest.mark.parametrize("config", ["configs/pretrain/ecgfounder_tiny.yaml", "configs/pretrain/mtecg_tiny.yaml"])
def test_the_loop_feeds_a_bf16_engine(ptbxl_corpus, tmp_path, config):
    """bf16 is how the bundled ZeRO configs run on GPUs; without a GPU here, DeepSpeed's CPU
    accelerator runs the same bf16 engine. (Moving batches onto a CUDA device is not tested:
    no GPU.)"""
    out = forked.run(["-c", TRAIN_IN_BF16, config, f"data.corpus={ptbxl_corpus}", f"run.dir={tmp_path}/run",
                      "train.steps=4", "train.val_every_steps=2", "train.image_every_steps=2",
                      "checkpoint.save_every_steps=0"], cwd=tmp_path, env={**os.environ, "DS_ACCELERATOR": "cpu"})
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(out.stdout.splitlines()[-1])
    assert result["step"] == 4 and result["dtype"] == "torch.bfloat16"
    assert 0 < result["val_loss"] < 10


@pytest.mark.parametrize(("stage", "before", "after"), [(2, 2, 1), (3, 2, 3)])
def test_a_run_resumes_on_another_rank_count_with_the_saved_weights(ptbxl_corpus, tmp_path, stage, before, after):
    run, logs = tmp_path / "run", [tmp_path / name for name in ("first", "restore", "resumed")]
    for log in logs:
        log.mkdir()
    args = pretrain_args(ptbxl_corpus, run, f"deepspeed=configs/deepspeed/zero{stage}.json", "train.steps=8")
    assert run_ranks(before, args, tmp_path, logs[0]) == [0] * before
    # Restored on `after` ranks (through the universal format) and saved again, untouched:
    restore = ["-c", RESTORE_AND_SAVE, *args[2:]]
    assert run_ranks(after, restore, tmp_path, logs[1]) == [0] * after, (logs[1] / "rank0.log").read_text()[-3000:]
    saved, restored = export(run, tmp_path / "a.pth"), export(tmp_path / "restored", tmp_path / "b.pth")
    assert saved["step"] == restored["step"] == 8
    assert all(torch.equal(saved["state_dict"][k], restored["state_dict"][k]) for k in saved["state_dict"])
    assert (run / "checkpoints" / "universal-step-00000008" / "zero").is_dir()
    # The run itself carries on with the new rank count:
    assert run_ranks(after, [*args[:-1], "train.steps=12"], tmp_path, logs[2]) == [0] * after
    text = (logs[2] / "rank0.log").read_text()
    assert f"step-00000008 was written by {before} ranks and this job has {after}" in text
    assert "resumed from step-00000008" in text
    marker = json.loads((run / "checkpoints" / "step-00000012" / "complete.json").read_text())
    assert marker["world_size"] == after


def test_zero3_export_reproduces_the_validation_loss_in_a_plain_model(ptbxl_corpus, tmp_path):
    run = tmp_path / "run"
    overrides = ("train.steps=10", "deepspeed=configs/deepspeed/zero3.json", "data.val_fraction=0.3")
    assert run_ranks(2, pretrain_args(ptbxl_corpus, run, *overrides), tmp_path, tmp_path) == [0, 0]
    blob = export(run, tmp_path / "w.pth")
    cfg = load_config(PretrainConfig, run / "config.yaml")
    model = build_model(cfg.model, 12, cfg.data.crop_samples, len(blob["labels"]))
    assert load_pretrained(model, tmp_path / "w.pth") == []
    model.eval()
    val = build_data(cfg, DistEnv(0, 0, 2, "127.0.0.1", 0, "test")).val
    total = count = 0.0
    with torch.no_grad():
        for rank in (0, 1):  # the job's validation: every rank's batches, summed
            for batch in validation_batches(val, cfg.train.micro_batch, rank, 2, cfg.train.val_batches):
                b = val.to_device(val.__getitems__(batch), "cpu")
                loss = torch.nn.functional.binary_cross_entropy_with_logits(model(b["signal"]), b["target"])
                total += loss.item() * len(batch)
                count += len(batch)
    logged = dict(read_scalars(run / "tb")["val/loss"])[10]
    assert total / count == pytest.approx(logged, abs=1e-5)


def test_missing_deepspeed_json_fails_before_training_naming_the_key(ptbxl_corpus, tmp_path, capsys):
    code, err = refused_pretrain(capsys, ptbxl_corpus, tmp_path / "r", "deepspeed=nope.json")
    assert code == 2 and "config key 'deepspeed'" in err
    assert not (tmp_path / "r" / "checkpoints").exists()


def test_batch_larger_than_the_corpus_fails_with_a_clear_error(ptbxl_corpus, tmp_path, capsys):
    code, err = refused_pretrain(capsys, ptbxl_corpus, tmp_path / "r", "train.micro_batch=500")
    assert code == 2 and "cannot fill one batch of train.micro_batch=500" in err
