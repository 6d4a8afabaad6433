"""Batches through DataLoader workers, as training reads them (ecgdist.data.loader)."""

import os

import pytest
import torch

from ecgdist.data.dataset import ShardDataset
from ecgdist.data.loader import granted_cores, make_loader, share_cores_with_workers
from ecgdist.tasks.benchmark import task_splits
from ecgdist.data.sampler import BlockBatchSampler
from ecgdist.data.transforms import Transform

TRANSFORM = Transform(crop_samples=2500, random_crop=True, scale_jitter=0.2, noise_std=0.05)


@pytest.mark.parametrize("device_transform", [True, False], ids=["float16", "float32"])
def test_batches_from_two_workers_equal_batches_read_in_process(ptbxl_corpus, device_transform):
    splits = task_splits(ptbxl_corpus, "ptbxl", "superdiagnostic").splits
    train = splits["train"]
    data = ShardDataset(ptbxl_corpus, train.indices, train.targets, TRANSFORM, seed=5, device_transform=device_transform)
    sampler = BlockBatchSampler(data.shards_of(), batch_size=8, seed=1)
    batches = [b.tolist() for epoch in range(2) for b in sampler.batches(epoch)]
    finished = [data.to_device(batch, "cpu") for batch in make_loader(data, batches, workers=2)]
    assert len(finished) == len(batches)
    for positions, got in zip(batches, finished):  # crops, scales and noise drawn alike wherever read
        expected = data.to_device(data.__getitems__(positions), "cpu")
        assert got["signal"].dtype == torch.float32
        for key in ("index", "target", "signal"):
            assert torch.equal(got[key], expected[key]), key


def test_the_training_process_leaves_a_core_per_worker(monkeypatch):
    before = torch.get_num_threads()
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.delenv("SLURM_CPUS_PER_TASK", raising=False)
    cores = len(os.sched_getaffinity(0))
    try:
        share_cores_with_workers(1)
        assert torch.get_num_threads() == max(1, cores - 1)
        share_cores_with_workers(0)
        assert torch.get_num_threads() == cores
        share_cores_with_workers(0, cores=1)  # a fine-tune job: the CPUs its sweep asks for
        assert torch.get_num_threads() == 1
        monkeypatch.setenv("SLURM_CPUS_PER_TASK", "1")  # inside a SLURM job of one CPU on a node that does not bind
        assert granted_cores() == 1
        share_cores_with_workers(0)
        assert torch.get_num_threads() == 1
        monkeypatch.setenv("SLURM_CPUS_PER_TASK", str(cores + 8))  # never more than the process may run on
        assert granted_cores() == cores
        share_cores_with_workers(0)
        assert torch.get_num_threads() == cores
        monkeypatch.setenv("OMP_NUM_THREADS", "1")
        share_cores_with_workers(2)
        assert torch.get_num_threads() == cores  # an explicit setting wins
    finally:
        torch.set_num_threads(before)
