"""Endless batches over epochs from a ``ShardDataset``, with a position that checkpoints can save.

The DataLoader's workers read ahead of the training loop, so the sampler's own progress
is not the consumer's; this wrapper counts the batches actually handed out, and that
count is what a checkpoint stores.
"""

from __future__ import annotations

import multiprocessing
import os
from typing import Iterator

import torch
from torch.utils.data import DataLoader

from ecgdist.data.dataset import ShardDataset, keep_batch
from ecgdist.data.sampler import BlockBatchSampler


def make_loader(dataset: ShardDataset, sampler: BlockBatchSampler, workers: int = 0,
                start_method: str | None = None, prefetch_factor: int = 4, cores: int | None = None) -> DataLoader:
    share_cores_with_workers(workers, cores)
    kwargs = {}
    if workers > 0:
        kwargs = dict(prefetch_factor=prefetch_factor, persistent_workers=True,
                      multiprocessing_context=multiprocessing.get_context(start_method) if start_method else None)
    return DataLoader(dataset, batch_sampler=sampler, num_workers=workers, collate_fn=keep_batch,
                      pin_memory=torch.cuda.is_available(), **kwargs)  # pinned: copies to the GPU overlap


def granted_cores() -> int:
    """The cores this process was given: its SLURM allocation (``--cpus-per-task``) inside a job, else
    its affinity mask. A node without CPU binding (``TaskPlugin=task/none``, the sandbox) shows every
    task all of its cores; two one-CPU fine-tune jobs of the sandbox, two threads each, took 33 s
    where one thread each took 6 s."""
    cores = len(os.sched_getaffinity(0))
    allocated = os.environ.get("SLURM_CPUS_PER_TASK", "")
    return min(cores, int(allocated)) if allocated.isdigit() and int(allocated) > 0 else cores


def share_cores_with_workers(workers: int, cores: int | None = None) -> None:
    """Run this process's torch intra-op threads on the cores (``granted_cores`` unless given) its
    loader workers leave free (at least one).

    Left alone, torch starts one thread per core here while every worker also needs a core;
    the oversubscribed threads spin against the workers (on two cores with two workers,
    finished batches arrive ~30 % slower: docs/benchmarks.md). An explicit OMP_NUM_THREADS
    wins. The last loader made sets it.
    """
    if "OMP_NUM_THREADS" not in os.environ:
        torch.set_num_threads(max(1, (granted_cores() if cores is None else cores) - workers))


class EpochStream:
    """Iterate batches forever; ``state_dict()`` says where the consumer is."""

    def __init__(self, dataset: ShardDataset, sampler: BlockBatchSampler, workers: int = 0,
                 start_method: str | None = None) -> None:
        self.dataset, self.sampler = dataset, sampler
        self.loader = make_loader(dataset, sampler, workers, start_method)
        self.consumed = 0

    def __iter__(self) -> Iterator[dict]:
        while True:
            self.consumed = 0
            for batch in self.loader:
                self.consumed += 1
                yield batch
            self.sampler.set_epoch(self.sampler.epoch + 1)

    def state_dict(self) -> dict:
        return self.sampler.state_dict(self.consumed)

    def load_state_dict(self, state: dict) -> None:
        self.sampler.load_state_dict(state)
        self.consumed = 0
