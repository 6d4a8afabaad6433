"""A shard that no longer matches its manifest is reported by name and never trained on silently."""

import shutil

import pytest
from conftest import build_corpus
from launch import preprocess, pretrain, refused_pretrain

from ecgdist.data.dataset import ShardCorpus, ShardDataset
from ecgdist.data.shards import CorruptShard


@pytest.fixture()
def corpus(shared_data, tmp_path):
    return build_corpus("ptbxl", shared_data / "ptbxl-mini", tmp_path / "c", "--shard-size", "30")


def flip_a_byte(path, offset=-5000):
    data = bytearray(path.read_bytes())
    data[offset] ^= 0xFF
    path.write_bytes(bytes(data))


def test_verify_and_inspect_name_every_missing_truncated_or_modified_shard(corpus):
    flip_a_byte(corpus / "shard-000000.h5")
    truncated = corpus / "shard-000001.h5"
    truncated.write_bytes(truncated.read_bytes()[:100_000])
    (corpus / "shard-000002.h5").unlink()
    for command in ("verify", "inspect"):
        out = preprocess(command, corpus)
        assert out.returncode == 1
        assert "shard-000000.h5: modified" in out.stdout
        assert "shard-000001.h5: truncated: 100000 bytes" in out.stdout
        assert "shard-000002.h5: missing" in out.stdout
        assert "shard-000003.h5" not in out.stdout  # the good one
    assert preprocess("inspect", corpus, "--no-verify").returncode == 0


def test_a_corpus_whose_shard_sizes_differ_from_the_manifest_is_refused_at_start(corpus, tmp_path, capsys):
    truncated = corpus / "shard-000001.h5"
    truncated.write_bytes(truncated.read_bytes()[:100_000])
    with pytest.raises(CorruptShard, match="shard-000001.h5: truncated"):
        ShardCorpus(corpus)
    code, err = refused_pretrain(capsys, corpus, tmp_path / "run")
    assert code == 2 and "shard-000001.h5: truncated" in err and "Traceback" not in err


def test_a_flipped_byte_stops_the_first_read_of_that_shard_naming_it(corpus, tmp_path, monkeypatch):
    monkeypatch.setenv("ECGDIST_VERIFIED_CACHE", str(tmp_path / "verified"))
    flip_a_byte(corpus / "shard-000002.h5")  # same size: only its checksum can tell
    data = ShardDataset(ShardCorpus(corpus))  # sizes match: opens
    data.__getitems__([0, 1])  # shard 0 reads, and is remembered as checked
    assert len(list((tmp_path / "verified").iterdir())) == 1
    with pytest.raises(CorruptShard, match=r"shard-000002.h5 is modified"):
        data.__getitems__([65])
    shutil.rmtree(tmp_path / "verified")
    monkeypatch.setenv("ECGDIST_VERIFIED_CACHE", str(tmp_path / "v2"))  # the run's own, empty
    run = pretrain(corpus, tmp_path / "run", "train.steps=50")
    assert run.returncode == 1, run.stderr[-2000:]
    assert "shard-000002.h5 is modified" in run.stderr and "Traceback" not in run.stderr


@pytest.mark.parametrize("change", [+1, -1])
def test_a_manifest_record_count_off_by_one_is_refused_by_reads_and_verify(ptbxl_corpus, tmp_path, change, capsys):
    """Valid JSON, sha256 unchanged: one count more would pair every later row with another record's labels."""
    import json

    from ecgdist.data.index import read_index
    from preprocess.__main__ import main

    corpus = tmp_path / "c"
    shutil.copytree(ptbxl_corpus, corpus)
    manifest = json.loads((corpus / "manifest.json").read_text())
    rows = manifest["shards"][0]["records"]
    manifest["shards"][0]["records"] += change
    (corpus / "manifest.json").write_text(json.dumps(manifest))
    said = f"shard {corpus / 'shard-000000.h5'} holds {rows} records, the manifest says {rows + change}"
    with pytest.raises(CorruptShard, match=said):
        read_index(corpus)  # the index no longer fits the manifest: rebuilt from the shards, which disagree
    with pytest.raises(CorruptShard, match=said):
        ShardDataset(corpus).__getitems__([0])
    assert main(["verify", str(corpus)]) == 1
    assert f"shard-000000.h5: holds {rows} records, the manifest says {rows + change}" in capsys.readouterr().out


@pytest.mark.parametrize("spoil", ["zeroed", "truncated"])
def test_a_spoilt_index_array_is_one_line_naming_it(ptbxl_corpus, tmp_path, spoil, capsys):
    import numpy as np

    from ecgdist.data.index import CorruptIndex, read_index
    from ecgdist.data.leakage import TrainingSet
    from preprocess.__main__ import main

    corpus = tmp_path / "c"
    shutil.copytree(ptbxl_corpus, corpus)
    fold = corpus / "index" / "fold.npy"
    if spoil == "zeroed":  # exclude_from would then leave out 0 records, silently
        np.save(fold, np.zeros_like(np.load(fold)))
    else:
        fold.write_bytes(fold.read_bytes()[:-10])
    with pytest.raises(CorruptIndex, match=f"index file {fold}: does not match its checksum; rebuild the index "
                                           f"with: python -m preprocess merge {corpus}"):
        read_index(corpus)
    with pytest.raises(CorruptIndex):
        TrainingSet.build([str(ptbxl_corpus)], str(corpus), [9, 10])
    assert main(["verify", str(corpus)]) == 1 and f"CORRUPT {fold}: does not match" in capsys.readouterr().out
    assert main(["merge", str(corpus)]) == 0 and read_index(corpus).fold.any()  # the rebuild it names works
