"""Content fingerprints: the same ECG through two sources is one record; evaluation folds are left out."""

import json

import h5py
import numpy as np
import pytest
from conftest import build_corpus

from ecgdist.data.index import FingerprintsMissing, index_problems, read_index
from ecgdist.data.leakage import TrainingSet, evaluation_fingerprints, overlap_by_fold
from ecgdist.data.shards import read_metadata


@pytest.fixture(scope="module")
def challenge_corpus(shared_data, tmp_path_factory):
    """PTB-XL records 6000-6009 as the PhysioNet/CinC 2021 copies (.mat, ids HR06000...), another source."""
    return build_corpus("wfdb", shared_data / "physionet2021-mini", tmp_path_factory.mktemp("c") / "challenge")


def test_a_record_reaching_a_corpus_through_a_second_source_under_another_id_is_caught(ptbxl_corpus, challenge_corpus):
    seen = read_index(challenge_corpus).fingerprints(challenge_corpus)
    assert len(np.unique(seen)) == 10
    # 6000 and 6004 sit in PTB-XL's test fold; no other record of the 110 matches.
    assert overlap_by_fold(ptbxl_corpus, seen, [9, 10]) == {10: (2, ["ptbxl:6000#0", "ptbxl:6004#0"])}
    everywhere = overlap_by_fold(ptbxl_corpus, seen, list(range(1, 11)))
    assert sum(count for count, _ in everywhere.values()) == 10


def test_exclude_from_drops_exactly_the_matching_records(ptbxl_corpus, challenge_corpus):
    training = TrainingSet.build(challenge_corpus, ptbxl_corpus, [9, 10])
    ids = read_metadata(challenge_corpus, ["record_id"])["record_id"]
    assert sorted(ids[~training.keep]) == ["wfdb:HR06000#0", "wfdb:HR06004#0"] and training.excluded == 2
    assert len(training.fingerprints) == 8
    assert not np.isin(training.fingerprints, evaluation_fingerprints(ptbxl_corpus, [9, 10])).any()
    # A corpus left out of itself: exactly its folds 9 and 10 go.
    own = TrainingSet.build(ptbxl_corpus, ptbxl_corpus, [9, 10])
    assert own.excluded == int(np.isin(read_index(ptbxl_corpus).fold, [9, 10]).sum()) == 35


def test_a_corpus_without_fingerprints_says_how_to_add_them_and_the_command_adds_them(shared_data, tmp_path):
    import subprocess
    import sys

    corpus = build_corpus("wfdb", shared_data / "physionet2021-mini", tmp_path / "old")
    expected = read_index(corpus).fingerprint.copy()
    for name in ("fingerprint.npy", "checksums.json"):  # as written before fingerprints (and checksums) existed
        (corpus / "index" / name).unlink()
    with h5py.File(corpus / "shard-000000.h5", "r+") as f:
        del f["fingerprint"]
    with pytest.raises(FingerprintsMissing, match="python -m preprocess fingerprint"):
        read_index(corpus).fingerprints(corpus)
    done = subprocess.run([sys.executable, "-m", "preprocess", "fingerprint", str(corpus),
                           str(shared_data / "physionet2021-mini"), "--quiet"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert np.array_equal(read_index(corpus).fingerprints(corpus), expected)
    assert not list((corpus / "index").glob("*.tmp")) and index_problems(corpus) == []
    assert "fingerprint.npy" in json.loads((corpus / "index" / "checksums.json").read_text())


def test_fingerprints_ignore_the_recipe(shared_data, ptbxl_corpus, tmp_path):
    filtered = build_corpus("ptbxl", shared_data / "ptbxl-mini", tmp_path / "f", "--filter", "ecgfounder",
                            "--rate", "250")
    assert np.array_equal(read_index(filtered).fingerprint, read_index(ptbxl_corpus).fingerprint)
