import logging
import shutil

import numpy as np
import pytest
from conftest import build_corpus

from ecgdist.data.index import INDEX_DIR, read_index
from ecgdist.data.labels import label_vocabulary, multi_hot
from ecgdist.data.shards import read_manifest, read_metadata
from ecgdist.data.splits import holdout_mask


def test_merge_writes_an_index_that_agrees_with_the_string_columns(ptbxl_corpus):
    assert (ptbxl_corpus / INDEX_DIR / "group.npy").exists()
    manifest = read_manifest(ptbxl_corpus)
    index = read_index(ptbxl_corpus, manifest)
    table = read_metadata(ptbxl_corpus)
    vocabulary = label_vocabulary(manifest, min_count=3)
    from_strings = multi_hot(table["labels"], vocabulary)  # the slow path, computed independently
    assert (index.targets(vocabulary) != from_strings).nnz == 0
    assert np.array_equal(index.fold, table["fold"])


def test_windows_of_one_recording_share_a_group_and_a_side(shared_data, tmp_path):
    corpus = build_corpus("wfdb", shared_data / "wfdb-samples", tmp_path / "c")
    index = read_index(corpus)
    assert len(set(index.group.tolist())) == 1  # s0010_re's three windows, no patient id
    for seed in range(20):
        assert len(set(holdout_mask(index.group, 0.5, seed).tolist())) == 1


def test_holdout_share_follows_the_fraction_and_the_seed():
    groups = np.random.default_rng(0).integers(0, 2**32, 200_000, dtype=np.uint64).astype(np.uint32)
    mask = holdout_mask(groups, 0.05, seed=1)
    assert mask.mean() == pytest.approx(0.05, abs=0.003)
    assert (mask != holdout_mask(groups, 0.05, seed=2)).any()
    assert np.array_equal(mask, holdout_mask(groups, 0.05, seed=1))
    assert not holdout_mask(groups, 0.0, seed=1).any()


def test_a_corpus_without_index_is_indexed_in_memory(ptbxl_corpus, tmp_path, caplog):
    old = tmp_path / "old"
    shutil.copytree(ptbxl_corpus, old)
    shutil.rmtree(old / INDEX_DIR)
    with caplog.at_level(logging.WARNING):
        index = read_index(old)
    assert "has no up-to-date, checksummed index" in caplog.text
    assert np.array_equal(index.group, read_index(ptbxl_corpus).group)
