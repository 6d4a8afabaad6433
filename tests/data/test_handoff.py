"""The worker hand-off: reused shared-memory slots for signals, small tensors by value (ecgdist.data.handoff)."""

import os

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from ecgdist.data.dataset import ShardDataset, keep_batch
from ecgdist.data.handoff import RINGS, SLOTS
from ecgdist.data.loader import make_loader, share_cores_with_workers
from ecgdist.data.ptbxl import ptbxl_task
from ecgdist.data.sampler import BlockBatchSampler
from ecgdist.data.transforms import Transform

TRANSFORM = Transform(crop_samples=2500, random_crop=True, scale_jitter=0.2, noise_std=0.05)


def labelled(corpus, device_transform: bool) -> ShardDataset:
    _, splits = ptbxl_task(corpus, "superdiagnostic")
    train = splits["train"]
    return ShardDataset(corpus, train.indices, train.targets, TRANSFORM, seed=5, device_transform=device_transform)


def batches_of(data: ShardDataset, epochs: int) -> list[list[int]]:
    sampler = BlockBatchSampler(data.shards_of(), batch_size=8, seed=1)
    return [b.tolist() for epoch in range(epochs) for b in sampler.batches(epoch)]


@pytest.mark.parametrize("device_transform", [True, False], ids=["float16", "float32"])
def test_batches_through_reused_slots_equal_batches_read_in_process(ptbxl_corpus, device_transform):
    data = labelled(ptbxl_corpus, device_transform)
    batches = batches_of(data, epochs=3)
    assert len(batches) > 2 * SLOTS  # every slot is refilled several times
    finished, rings = [], set()
    for batch in make_loader(data, batches, workers=2):
        assert "slot" in batch and torch.is_tensor(batch["index"]) and torch.is_tensor(batch["target"])
        rings.add(batch["signal"].untyped_storage().data_ptr())
        finished.append(data.to_device(batch, "cpu"))  # kept: a later refill must not reach them
    assert len(rings) == 2  # one ring per worker, mapped once here
    for positions, got in zip(batches, finished):
        expected = data.to_device(data.__getitems__(positions), "cpu")
        assert torch.equal(got["index"], expected["index"]) and torch.equal(got["target"], expected["target"])
        assert torch.equal(got["signal"], expected["signal"])


def test_a_consumer_that_never_gives_slots_back_keeps_every_batch_intact(ptbxl_corpus):
    data = labelled(ptbxl_corpus, device_transform=True)
    batches = batches_of(data, epochs=2)
    held = list(make_loader(data, batches, workers=1))  # never released
    assert sum("slot" in batch for batch in held) == SLOTS  # then fresh tensors, as without slots
    for positions, batch in zip(batches, held):
        assert torch.equal(batch["signal"], data.__getitems__(positions)["signal"])


def test_two_loaders_over_one_dataset_take_turns(ptbxl_corpus):
    data = labelled(ptbxl_corpus, device_transform=True)
    batches = batches_of(data, epochs=1)
    loaders = [make_loader(data, batches, workers=1) for _ in range(2)]
    for _ in range(3):
        for loader in loaders:  # each worker's ring stays here, apart from the other's
            got = [data.to_device(batch, "cpu")["signal"] for batch in loader]
            assert torch.equal(got[-1], data.to_device(data.__getitems__(batches[-1]), "cpu")["signal"])
    assert {pid for pid, _ in RINGS} >= {w.pid for loader in loaders for w in loader._iterator._workers}


def test_rings_of_workers_that_exited_are_let_go(ptbxl_corpus):
    data = labelled(ptbxl_corpus, device_transform=True)
    loader = DataLoader(data, batch_sampler=batches_of(data, epochs=1), num_workers=2, collate_fn=keep_batch)
    workers = []
    for _ in range(3):  # workers end with each epoch here, and new ones start
        workers.append(set())
        for batch in loader:
            workers[-1].add(batch["slot"].ring[0])
            data.to_device(batch, "cpu")
    assert len(set.union(*workers)) == 6
    assert {pid for pid, _ in RINGS} & set.union(*workers) == workers[-1]  # the latest two rings, not six


def test_the_training_process_leaves_a_core_per_worker(monkeypatch):
    before = torch.get_num_threads()
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    cores = len(os.sched_getaffinity(0))
    try:
        share_cores_with_workers(1)
        assert torch.get_num_threads() == max(1, cores - 1)
        share_cores_with_workers(0)
        assert torch.get_num_threads() == cores
        monkeypatch.setenv("OMP_NUM_THREADS", "1")
        share_cores_with_workers(2)
        assert torch.get_num_threads() == cores  # an explicit setting wins
    finally:
        torch.set_num_threads(before)


def test_small_tensors_cross_by_value_and_signals_fall_back_when_they_do_not_fit(ptbxl_corpus):
    data = labelled(ptbxl_corpus, device_transform=True)
    batches = [list(range(8)), list(range(8, 11)), list(range(11, 31))]  # full, shorter, longer than the slots
    got = list(make_loader(data, batches, workers=1))
    assert ["slot" in batch for batch in got] == [True, True, False]
    for positions, batch in zip(batches, got):
        assert np.array_equal(batch["index"].numpy(), positions)
        assert torch.equal(batch["signal"], data.__getitems__(positions)["signal"])
