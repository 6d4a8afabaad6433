"""``python -m ecgdist.pretrain CONFIG [key=value ...]``: one rank of a pre-training job.

Launch it once per GPU (``srun`` in slurm/pretrain.sh, or ``torchrun``) or alone. The
build order reads top to bottom: ``check_inputs`` (DeepSpeed config, data), before the
rank joins the process group, so a bad config or corpus stops every rank at once and
leaves no run folder; then ``prepare`` (which checkpoint to resume from, model,
optimizer, engine, resume); ``run`` adds the distributed set-up and the loop after it.
Net1D (and the MTECG classifier) learn the corpus's labels with BCE; the MTECG masked
autoencoder learns to reconstruct hidden segments. The job resumes from the newest
usable checkpoint in ``run.dir`` by itself, so a requeued job needs no arguments changed.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import torch

from ecgdist.config import ConfigError, PretrainConfig, load_config, resolve_path, save_resolved, to_dict
from ecgdist.data.shards import CorruptShard
from ecgdist.dist import DistEnv, init_distributed, read_dist_env
from ecgdist.loggers import make_logger
from ecgdist.models import build_model
from ecgdist.models.param_groups import param_groups
from ecgdist.pretrain.checkpoint import Checkpointer, CheckpointsCorrupt
from ecgdist.pretrain.data import PretrainData, check_inputs
from ecgdist.pretrain.deepspeed_adapter import initialize
from ecgdist.pretrain.deepspeed_config import BatchLayout
from ecgdist.pretrain.engine import TrainLoop
from ecgdist.pretrain.figures import reconstruction_figure
from ecgdist.pretrain.objectives import objective_for
from ecgdist.pretrain.optim import build_adamw, peak_lr, warmup_cosine
from ecgdist.pretrain.preemption import PreemptionFlag, requeue_slurm_job
from ecgdist.pretrain.probe import Probes
from ecgdist.pretrain.submission import record_job

log = logging.getLogger("ecgdist.pretrain")
EXIT_PREEMPTED = 3  # stopped on a signal outside SLURM, checkpoint saved: run again to resume


def mae_figure(rank: int, patch: int, fluctuated: bool):
    def draw(engine, batch):
        _, pred, mask = engine(batch["signal"])
        if rank != 0:
            return None
        first = [t[0].float().cpu().numpy() for t in (batch["signal"], pred, mask)]
        return reconstruction_figure(*first, patch, fluctuated)
    return draw


@dataclass
class Prepared:
    """A rank ready to train: the engine restored from the newest checkpoint, if any."""

    engine: object
    data: PretrainData
    layout: BatchLayout
    checkpointer: Checkpointer
    start_step: int
    client_state: dict  # the resumed checkpoint's (stream position, probe history); empty at a fresh start


def prepare(cfg: PretrainConfig, env: DistEnv,
            inputs: tuple[dict, BatchLayout, PretrainData] | None = None) -> Prepared:
    """``inputs``: what ``check_inputs`` read, when it ran before the process group was made."""
    ds_config, layout, data = inputs or check_inputs(cfg, env)
    c = cfg.checkpoint
    checkpointer = Checkpointer(Path(cfg.run.dir) / "checkpoints", c.save_every_steps, c.save_every_minutes,
                                c.keep_last, env.rank, c.keep_best)
    resume = checkpointer.plan_resume(c.fresh_start)
    if resume is not None and resume.universal:
        ds_config["checkpoint"] = {**ds_config.get("checkpoint", {}), "load_universal": True}
    torch.manual_seed(cfg.run.seed)  # identical initial weights on every rank
    model = build_model(cfg.model, len(cfg.data.leads), cfg.data.crop_samples, len(data.labels))
    torch.manual_seed(cfg.run.seed + 1000 * (env.rank + 1))  # rank-specific masks and drop-path
    lr = peak_lr(cfg.train, layout.global_batch)
    if cfg.train.lr_base > 0:
        log.info("train.lr_base %.3g x global batch %d / 256: peak learning rate %.3g", cfg.train.lr_base,
                 layout.global_batch, lr)
    optimizer = build_adamw(param_groups(model, lr, cfg.train.weight_decay), lr)
    scheduler = warmup_cosine(optimizer, cfg.train.steps, cfg.train.warmup_steps, cfg.train.lr_min_ratio)
    torch.backends.cudnn.benchmark = True  # every training batch has the same shape: tune the convolutions once
    engine = initialize(model, optimizer, scheduler, ds_config, cfg.train)
    start_step, client_state = 0, {}
    if resume is not None:
        start_step, client_state = checkpointer.load(engine, resume)
        if resume.saved_world_size != env.world_size:
            log.warning("the global batch changes with the rank count: now %d (micro %d x accumulation %d x %d "
                        "ranks); train.grad_accum can keep it as before", layout.global_batch, layout.micro_batch,
                        layout.grad_accum, layout.world_size)
    return Prepared(engine, data, layout, checkpointer, start_step, client_state)


def run(cfg: PretrainConfig) -> dict:
    env = read_dist_env()
    inputs = check_inputs(cfg, env)
    env = init_distributed(env, single_group=True)
    run_dir = Path(cfg.run.dir)
    p = prepare(cfg, env, inputs)
    if env.is_main:
        excluded = p.data.provenance["excluded"]
        notes = [f"data.exclude_from left out {excluded} records whose content matches folds "
                 f"{', '.join(map(str, cfg.data.exclude_folds))} of {cfg.data.exclude_from}"] if cfg.data.exclude_from else []
        for note in notes:
            log.info(note)
        save_resolved(cfg, run_dir, notes)
        if "SLURM_JOB_ID" in os.environ:
            record_job(run_dir, os.environ["SLURM_JOB_ID"], "started")
        log.info("global batch %d = micro %d x accumulation %d x %d ranks", p.layout.global_batch,
                 p.layout.micro_batch, p.layout.grad_accum, p.layout.world_size)
    # Resumed, TensorBoard hides what an attempt that crashed logged after the checkpoint: one value a step.
    logger = make_logger(run_dir, env.is_main, cfg.logging, run_dir.name, to_dict(cfg),
                         purge_step=p.start_step + 1 if p.start_step else None)
    figure = (mae_figure(env.rank, cfg.model.patch_samples, cfg.model.target == "fluctuated")
              if cfg.model.name == "mtecg_mae" else None)
    probes = Probes(p.data.probes, cfg.probe, run_dir, cfg.train.steps, env.rank, env.world_size, logger,
                    cfg.data.workers) if p.data.probes else None
    loop = TrainLoop(p.engine, p.data.stream, p.data.val, objective_for(cfg.model.name), cfg.train, p.layout,
                     p.checkpointer, env.rank, logger, PreemptionFlag(),
                     lambda: {"config": to_dict(cfg), "labels": p.data.labels, "recipe": p.data.recipe,
                              "provenance": p.data.provenance}, figure, probes)
    loop.restore(p.client_state)
    step, outcome = loop.run(p.start_step)
    logger.close()
    return {"step": step, "outcome": outcome, "resumed_from": p.start_step, "rank": env.rank}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ecgdist.pretrain", description=__doc__.splitlines()[0])
    parser.add_argument("config", help="a YAML under configs/pretrain/")
    parser.add_argument("overrides", nargs="*", help="key.sub=value")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s rank" + os.environ.get("RANK", os.environ.get(
        "SLURM_PROCID", "0")) + " %(levelname)s %(name)s: %(message)s")
    try:
        result = run(load_config(PretrainConfig, resolve_path(args.config), args.overrides))
    except ConfigError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except OSError as error:  # disk full or unwritable run folder: one line naming the file
        print(f"error: {error.strerror or error}" + (f" ({error.filename})" if error.filename else ""), file=sys.stderr)
        return 1
    except (CheckpointsCorrupt, FloatingPointError) as error:  # every checkpoint corrupt; a non-finite loss or state
        print(f"error: {error}", file=sys.stderr)
        return 1
    except RuntimeError as error:  # after CheckpointsCorrupt, a RuntimeError too
        if "DataLoader worker" not in str(error):
            raise
        line = next(ln for ln in str(error).splitlines() if "DataLoader worker" in ln).strip()
        print(f"error: {line} (out of memory? a node's OOM killer ends the largest process first)", file=sys.stderr)
        return 1
    except CorruptShard as error:  # raised in a loader worker, it arrives wrapped in that worker's traceback
        print(f"error: {str(error).strip().splitlines()[-1].split('CorruptShard: ')[-1]}", file=sys.stderr)
        return 1
    if result["outcome"] in ("requeue", "stopped"):
        in_slurm = "SLURM_JOB_ID" in os.environ
        if in_slurm and result["rank"] == 0 and result["outcome"] == "requeue":
            requeue_slurm_job()
        return 0 if in_slurm else EXIT_PREEMPTED
    return 0


if __name__ == "__main__":
    sys.exit(main())
