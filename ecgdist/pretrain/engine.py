"""The training loop shared by pre-training jobs: step, log, validate, probe, save, stop on request.

One optimizer step is ``grad_accum`` micro-batches through the DeepSpeed engine, which
accumulates, clips and steps on the boundary. The host waits for the device as little as
it can: losses add up on the device and are read at log steps, the non-finite guard reads
one flag before each optimizer step, and the decisions that need every rank (save now?
preempted?) are agreed by one small all-reduce every ``train.agree_every_steps`` steps and
at the last, so ranks never diverge. ``train.loss_sync: micro_step`` is the path before
(every loss read on the host, agreement every step), kept until a GPU run has compared them.
"""

from __future__ import annotations

import logging
import resource
import time
from dataclasses import dataclass, field
from typing import Callable

import torch
from torch.utils.data import DataLoader

from ecgdist.config import TrainSection
from ecgdist.data.dataset import ShardDataset, keep_batch
from ecgdist.data.loader import EpochStream
from ecgdist.data.sampler import BlockBatchSampler
from ecgdist.dist import any_rank, sum_over_ranks
from ecgdist.pretrain.checkpoint import Checkpointer
from ecgdist.pretrain.deepspeed_config import BatchLayout
from ecgdist.pretrain.engine_interface import TrainingEngine, on_engine
from ecgdist.pretrain.objectives import Objective
from ecgdist.pretrain.preemption import PreemptionFlag
from ecgdist.pretrain.probe import Probes
from ecgdist.tensorboard_log import NullLogger

log = logging.getLogger(__name__)
VALIDATION_SEED = 1234  # fixed masks and crops: validation losses are comparable across steps


def peak_memory_mb() -> float:
    if torch.cuda.is_available():
        return torch.cuda.max_memory_allocated() / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def validation_batches(data: ShardDataset, batch_size: int, rank: int, world_size: int, limit: int) -> list[list[int]]:
    """This rank's validation batches; every rank gets the same count (ZeRO-3 forwards are collective)."""
    size = max(1, min(batch_size, len(data) // max(1, world_size)))
    samplers = [BlockBatchSampler(data.shards_of(), size, r, world_size, shuffle=False) for r in range(world_size)]
    count = min(limit, *(len(s.batches(0)) for s in samplers))
    return [b.tolist() for b in samplers[rank].batches(0)[:count]]


@dataclass
class TrainLoop:
    engine: TrainingEngine
    stream: EpochStream
    val_data: ShardDataset
    objective: Objective
    train: TrainSection
    layout: BatchLayout
    checkpointer: Checkpointer
    rank: int = 0
    logger: NullLogger = field(default_factory=NullLogger)
    preemption: PreemptionFlag | None = None
    client_state: Callable[[], dict] = dict
    figure: Callable[[TrainingEngine, dict], object] | None = None  # e.g. the MAE reconstruction
    probes: Probes | None = None  # downstream probes (pretrain/probe.py)

    def restore(self, client_state: dict) -> None:
        """Where a checkpoint's run was: the stream's position and the probe history (nothing: a fresh start)."""
        if "stream" in client_state:
            self.stream.load_state_dict(client_state["stream"])
        if self.probes is not None:
            self.probes.restore(client_state.get("probe", []))

    def run(self, start_step: int) -> tuple[int, str]:
        """Train from ``start_step`` to ``train.steps``; returns (last step, "done" | "requeue" | "stopped"),
        the last two after a save on a signal (see preemption.py)."""
        batches = iter(self.stream)
        step, started, samples = start_step, time.perf_counter(), 0
        interval_loss, interval_steps = torch.zeros((), device=self.engine.device), 0  # since the last log line
        while step < self.train.steps:
            step += 1
            interval_loss += self.optimizer_step(batches, step)
            interval_steps += 1
            samples += self.layout.global_batch
            if step % self.train.log_every_steps == 0 or step == self.train.steps:
                self.log_train(step, interval_loss.item() / interval_steps, samples / (time.perf_counter() - started))
                started, samples = time.perf_counter(), 0
                interval_loss.zero_()
                interval_steps = 0
            if step % self.train.val_every_steps == 0 or step == self.train.steps:
                self.validate(step)
            probed = self.probes is not None and self.probes.due(step)
            if probed:
                self.probes.run(self.engine, step)
            if not (probed or self.agreement_due(step)):
                continue
            flag = self.preemption
            preempted, requeue, save_due = any_rank(flag is not None and flag.requested,
                                                    flag is not None and flag.requeue,
                                                    self.checkpointer.due(step, step == self.train.steps))
            # A new best probe value is saved at once: the weights it was measured on exist nowhere else.
            metric = self.checkpointer.keep_best
            best = probed and bool(metric) and self.probes.is_best(step, metric)
            if save_due or preempted or best:
                self.save(step)
            if preempted:
                return step, "requeue" if requeue else "stopped"
        return step, "done"

    def save(self, step: int) -> None:
        history = self.probes.history if self.probes is not None else []
        self.checkpointer.save(self.engine, step, {"step": step, "stream": self.stream.state_dict(), "probe": history,
                                                   **self.client_state()},
                               self.probes.values_at(step) if self.probes is not None else None)

    def optimizer_step(self, batches, step: int) -> torch.Tensor:
        """``grad_accum`` micro-batches, the engine stepping the optimizer after the last; their mean
        loss, on the device. Raises before that optimizer step when a loss is not finite."""
        on_host = self.train.loss_sync == "micro_step"
        total = torch.zeros((), device=self.engine.device)
        for micro in range(self.train.grad_accum):
            loss = self.objective(self.engine, on_engine(next(batches), self.engine, self.stream.dataset))
            total += loss.detach().float()
            # A NaN or inf in any micro-batch's loss stays in the sum, so one read before the
            # boundary (the only micro-step at which the weights change) guards them all.
            if (on_host or micro == self.train.grad_accum - 1) and not torch.isfinite(total):
                raise FloatingPointError(f"loss is {loss.item() if on_host else total.item()} at step {step}: "
                                         "stopping before the optimizer step")
            self.engine.backward(loss)
            self.engine.step()
        return total / self.train.grad_accum

    def agreement_due(self, step: int) -> bool:
        """Whether the ranks agree on saving and stopping after ``step``: every ``agree_every_steps``
        steps (every step on the old path), at the last step, and whenever a save falls due by steps
        (the same step on every rank), so a signal waits at most ``agree_every_steps`` steps."""
        every = 1 if self.train.loss_sync == "micro_step" else self.train.agree_every_steps
        return step % every == 0 or step == self.train.steps or self.checkpointer.due_by_steps(step)

    def log_train(self, step: int, loss: float, samples_per_s: float) -> None:
        (loss_total,) = sum_over_ranks(loss)
        grad_norm = self.engine.get_global_grad_norm()
        metrics = {"train/loss": loss_total / self.layout.world_size, "train/lr": self.engine.get_lr()[0],
                   "train/samples_per_s": samples_per_s, "train/peak_memory_mb": peak_memory_mb()}
        if grad_norm is not None:
            metrics["train/grad_norm"] = float(grad_norm)
        self.logger.log(metrics, step)
        if self.rank == 0:
            log.info("step %d/%d loss %.4f lr %.2e %.1f samples/s", step, self.train.steps, metrics["train/loss"],
                     metrics["train/lr"], samples_per_s)

    def validate(self, step: int) -> float | None:
        batches = validation_batches(self.val_data, self.layout.micro_batch, self.rank, self.layout.world_size,
                                     self.train.val_batches)
        if not batches:
            return None
        loader = DataLoader(self.val_data, batch_sampler=batches, collate_fn=keep_batch)
        self.engine.eval()
        total = count = 0.0
        with torch.no_grad(), torch.random.fork_rng():
            torch.manual_seed(VALIDATION_SEED)
            for i, batch in enumerate(loader):
                batch = on_engine(batch, self.engine, self.val_data)
                total += self.objective(self.engine, batch).item() * len(batch["index"])
                count += len(batch["index"])
                if i == 0 and self.figure is not None and step % self.train.image_every_steps == 0:
                    figure = self.figure(self.engine, batch)  # every rank runs the forward; rank 0 draws
                    if figure is not None:
                        self.logger.figure("val/reconstruction", figure, step)
        self.engine.train()
        total, count = sum_over_ranks(total, count)
        self.logger.log({"val/loss": total / count}, step)
        return total / count
