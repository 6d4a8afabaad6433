import h5py
import numpy as np
import pytest

from ecgdist.data.dataset import ShardCorpus, ShardDataset
from ecgdist.data.loader import EpochStream, make_loader
from ecgdist.data.ptbxl import ptbxl_task
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
    classes, splits = ptbxl_task(ptbxl_corpus, "superdiagnostic")
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
