"""Records land in shards in a seeded random order; the input is listed once for every slice."""

import json

import h5py
import numpy as np
from conftest import build_corpus
from launch import preprocess

from ecgdist.data.shards import read_manifest
from preprocess.pipeline import chunk_members

OPTIONS = ("--shard-size", "10")


def record_ids(corpus) -> list[list[str]]:
    """Record ids of each shard, in shard order."""
    ids = []
    for entry in read_manifest(corpus).shards:
        with h5py.File(corpus / entry.file) as f:
            ids.append(list(f["record_id"].asstr()[:]))
    return ids


def test_a_patient_ordered_listing_is_spread_over_shards():
    """A source lists each patient's records together (here 4 per patient); placement scatters them."""
    members = chunk_members(10_000, 100, seed=0)
    shard_of = np.empty(10_000, dtype=int)
    for shard, positions in enumerate(members):
        shard_of[positions] = shard
        assert np.all(np.diff(positions) > 0), "a chunk keeps listing order, so a source file is read forward"
    assert sorted(np.concatenate(members).tolist()) == list(range(10_000))
    shards_per_patient = np.array([len(set(shard_of[p:p + 4])) for p in range(0, 10_000, 4)])
    # In input order every patient would sit in one shard; at random, 4 records over 100 shards
    # share one only with probability 1e-6 and span 4 with probability 0.94.
    assert (shards_per_patient == 1).sum() == 0 and (shards_per_patient == 4).mean() > 0.9
    assert [m.tolist() for m in chunk_members(10_000, 100, seed=0)] == [m.tolist() for m in members]
    assert [m.tolist() for m in chunk_members(10_000, 100, seed=1)] != [m.tolist() for m in members]


def test_shards_are_random_samples_and_the_manifest_records_the_seed(shared_data, tmp_path):
    corpus = build_corpus("ptbxl", shared_data / "ptbxl-mini", tmp_path / "c", *OPTIONS)
    ids = record_ids(corpus)
    ecg_ids = [[int(r.split(":")[1].split("#")[0]) for r in shard] for shard in ids]
    assert sorted(sum(ecg_ids, [])) == list(range(1, 101)) + list(range(6000, 6010))
    assert ecg_ids[0] != list(range(1, 11)), "shard 0 is not the first ten records of the listing"
    assert all(shard == sorted(shard) for shard in ecg_ids)
    assert read_manifest(corpus).placement_seed == 0
    other = build_corpus("ptbxl", shared_data / "ptbxl-mini", tmp_path / "d", *OPTIONS, "--seed", "7")
    assert read_manifest(other).placement_seed == 7
    assert record_ids(other) != ids and sorted(sum(record_ids(other), [])) == sorted(sum(ids, []))


def test_slices_read_one_listing_and_equal_a_single_run(shared_data, tmp_path):
    reference = build_corpus("ptbxl", shared_data / "ptbxl-mini", tmp_path / "ref", *OPTIONS)
    listing = tmp_path / "ptbxl.listing"
    made = preprocess("list", "ptbxl", shared_data / "ptbxl-mini", listing)
    assert made.returncode == 0 and "110 ptbxl records listed" in made.stdout
    header = json.loads(listing.read_text().splitlines()[0])
    assert header["records"] == 110 and len(listing.read_text().splitlines()) == 111
    out = tmp_path / "c"
    for index in (1, 0, 2):
        done = preprocess("ptbxl", shared_data / "ptbxl-mini", out, *OPTIONS, "--listing", listing,
                          "--slice", f"{index}/3", "--quiet")
        assert done.returncode == 0, done.stderr
        assert "listed" not in done.stderr, "a task given a listing does not walk the input"
    assert preprocess("merge", out).returncode == 0
    assert read_manifest(out).to_dict() == read_manifest(reference).to_dict()


def test_a_listing_of_another_source_folder_or_rate_is_refused(shared_data, tmp_path):
    listing = tmp_path / "ptbxl.listing"
    assert preprocess("list", "ptbxl", shared_data / "ptbxl-mini", listing, "--rate", "100").returncode == 0
    wrong_rate = preprocess("ptbxl", shared_data / "ptbxl-mini", tmp_path / "a", "--listing", listing)
    assert wrong_rate.returncode == 2 and "rate_hz: 100 in the listing, 500 here" in wrong_rate.stderr
    wrong_source = preprocess("wfdb", shared_data / "ptbxl-mini", tmp_path / "b", "--listing", listing, "--rate", "100")
    assert wrong_source.returncode == 2 and "source: ptbxl in the listing, wfdb here" in wrong_source.stderr
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()
    broken = tmp_path / "broken.listing"
    broken.write_text('{"records": 5}\n["only one line"]\n')
    refused = preprocess("ptbxl", shared_data / "ptbxl-mini", tmp_path / "c", "--listing", broken)
    assert refused.returncode == 2 and "holds 1 records, its header says 5" in refused.stderr
