import h5py
import numpy as np
import pytest
import torch
from conftest import build_corpus

from ecgdist.data.dataset import ShardCorpus, ShardDataset
from ecgdist.data.loader import EpochStream, make_loader
from ecgdist.tasks.benchmark import task_splits
from ecgdist.data.sampler import BlockBatchSampler
from ecgdist.data.shards import read_manifest
from ecgdist.data.transforms import Transform


def test_reads_equal_the_stored_records_in_request_order(ptbxl_corpus):
    corpus = ShardCorpus(ptbxl_corpus)
    with h5py.File(ptbxl_corpus / read_manifest(ptbxl_corpus).shards[0].file) as f:
        stored = f["signals"][:].astype(np.float32)
    index = np.array([50, 3, 4, 5, 99])
    read = corpus.read(index)
    assert read.dtype == np.float16 and np.array_equal(read.astype(np.float32), stored[index])


def test_runs_of_rows_read_across_shard_boundaries_and_repeats(shared_data, tmp_path):
    path = build_corpus("ptbxl", shared_data / "ptbxl-mini", tmp_path / "c", "--shard-size", "30")
    shards = []
    for shard in read_manifest(path).shards:
        with h5py.File(path / shard.file) as f:
            shards.append(f["signals"][:])
    stored, first = np.concatenate(shards), len(shards[0])
    assert len(shards) > 2
    index = np.array([first - 2, first - 1, first, first + 1, 5, 6, 6, 7, 3, 2, 0, first + 1, len(stored) - 1])
    assert np.array_equal(ShardCorpus(path).read(index), stored[index])  # runs across shards, repeats, rows 0, 1


def test_ecgfounder_normalisation_is_one_zscore_per_record(ptbxl_corpus):
    data = ShardDataset(ptbxl_corpus, transform=Transform(normalize="ecgfounder"))
    x = data.__getitems__([0, 1, 2])["signal"].numpy()
    assert np.allclose(x.mean(axis=(1, 2)), 0, atol=1e-4) and np.allclose(x.std(axis=(1, 2)), 1, atol=1e-3)
    assert not np.allclose(x.std(axis=2), 1, atol=1e-2)  # not per lead
    per_lead = ShardDataset(ptbxl_corpus, transform=Transform(normalize="per_lead")).__getitems__([0])["signal"]
    assert np.allclose(per_lead.numpy().std(axis=2), 1, atol=1e-3)


def test_lead_subset_and_random_crop(ptbxl_corpus):
    data = ShardDataset(ptbxl_corpus, transform=Transform(crop_samples=2500, random_crop=True, leads=("I",),
                                                          normalize="none"), seed=1)
    x = data.__getitems__([7, 8])["signal"].numpy()
    assert x.shape == (2, 1, 2500)
    raw = ShardCorpus(ptbxl_corpus).read(np.array([7]))[0, 0]
    offset = next(s for s in range(2501) if np.array_equal(raw[s:s + 2500], x[0, 0]))
    assert 0 <= offset <= 2500
    again = data.__getitems__([7, 8])["signal"].numpy()
    assert np.array_equal(x, again)  # the same batch crops the same way (resume determinism)


def test_targets_follow_positions(ptbxl_corpus):
    splits = task_splits(ptbxl_corpus, "ptbxl", "superdiagnostic").splits
    data = ShardDataset(ptbxl_corpus, splits["train"].indices, splits["train"].targets)
    batch = data.__getitems__([4, 0])
    assert np.array_equal(batch["target"].numpy(), splits["train"].targets[[4, 0]].toarray())


@pytest.mark.parametrize("start_method", ["fork", "spawn"])
def test_two_workers_deliver_every_record_once(ptbxl_corpus, start_method):
    data = ShardDataset(ptbxl_corpus, transform=Transform(normalize="none"))
    sampler = BlockBatchSampler(data.shards_of(), batch_size=16, seed=0)
    loader = make_loader(data, sampler, workers=2, start_method=start_method)
    seen, corpus = [], ShardCorpus(ptbxl_corpus)
    for batch in loader:
        index = batch["index"].numpy()
        seen.extend(index.tolist())
        assert np.array_equal(batch["signal"].numpy(), corpus.read(index).astype(np.float32))
    assert sorted(seen) == list(range(110))


def test_stream_state_resumes_at_the_next_batch(ptbxl_corpus):
    data = ShardDataset(ptbxl_corpus)
    stream = EpochStream(data, BlockBatchSampler(data.shards_of(), batch_size=16, seed=3))
    it = iter(stream)
    taken = [next(it)["index"].tolist() for _ in range(9)]  # crosses into the second epoch (7 batches each)
    resumed = EpochStream(data, BlockBatchSampler(data.shards_of(), batch_size=16, seed=3))
    reference = EpochStream(data, BlockBatchSampler(data.shards_of(), batch_size=16, seed=3))
    ref_it = iter(reference)
    ref = [next(ref_it)["index"].tolist() for _ in range(12)]
    assert taken == ref[:9]
    resumed.load_state_dict(stream.state_dict())
    res_it = iter(resumed)
    assert [next(res_it)["index"].tolist() for _ in range(3)] == ref[9:12]


def numpy_transform(x: np.ndarray, rng: np.random.Generator, crop: int, jitter: float) -> np.ndarray:
    """The loader's transform before batches were finished on the device, re-stated in numpy:
    random crop, float32, one z-score per record (ECGFounder), amplitude jitter."""
    starts = rng.integers(0, x.shape[-1] - crop + 1, size=len(x))
    x = np.stack([r[:, s:s + crop] for r, s in zip(x, starts)]).astype(np.float32)
    x = (x - x.mean(axis=(1, 2), keepdims=True)) / (x.std(axis=(1, 2), keepdims=True) + 1e-8)
    return x * rng.uniform(1 - jitter, 1 + jitter, size=(len(x), 1, 1)).astype(np.float32)


def test_float16_batches_finished_on_the_device_equal_the_cpu_transform(ptbxl_corpus):
    transform = Transform(crop_samples=2500, random_crop=True, scale_jitter=0.2)
    on_device = ShardDataset(ptbxl_corpus, transform=transform, seed=3, device_transform=True)
    in_loader = ShardDataset(ptbxl_corpus, transform=transform, seed=3)
    positions = [5, 60, 7, 99]
    handed_over = on_device.__getitems__(positions)
    assert handed_over["signal"].dtype == torch.float16 and handed_over["signal"].shape == (4, 12, 2500)
    finished = on_device.to_device(handed_over, "cpu")["signal"]  # the CPU stands in for the GPU here
    assert finished.dtype == torch.float32
    assert torch.equal(finished, in_loader.__getitems__(positions)["signal"])
    raw = ShardCorpus(ptbxl_corpus).read(np.array(positions))
    expected = numpy_transform(raw, np.random.default_rng([3, *positions]), 2500, 0.2)
    assert np.allclose(finished.numpy(), expected, atol=2e-3)  # within float16 precision of normalised values


def test_noise_drawn_on_the_device_is_fixed_by_the_batch(ptbxl_corpus):
    data = ShardDataset(ptbxl_corpus, transform=Transform(noise_std=0.1), device_transform=True)
    clean = ShardDataset(ptbxl_corpus, transform=Transform(), device_transform=True)
    a = data.to_device(data.__getitems__([1, 2]), "cpu")["signal"]
    b = data.to_device(data.__getitems__([1, 2]), "cpu")["signal"]
    noise = a - clean.to_device(clean.__getitems__([1, 2]), "cpu")["signal"]
    assert torch.equal(a, b) and abs(noise.std().item() - 0.1) < 0.005 and abs(noise.mean().item()) < 0.005
