"""data.stage_dir: a corpus copied to node-local storage once, verified, atomic, then read from there."""

import shutil
import subprocess
import sys

import numpy as np
import pytest
from conftest import build_corpus
from launch import refused_pretrain

from ecgdist.config import PretrainConfig, load_config
from ecgdist.data.dataset import ShardCorpus
from ecgdist.data.shards import CorruptShard, read_manifest
from ecgdist.data.staging import stage_corpus
from ecgdist.dist import DistEnv
from ecgdist.files import file_sha256
from ecgdist.pretrain.data import build_data


@pytest.fixture
def corpus(shared_data, tmp_path):
    return build_corpus("ptbxl", shared_data / "ptbxl-mini", tmp_path / "shared-fs" / "ptbxl", "--shard-size", "30")


def test_a_staged_corpus_is_a_verified_copy_read_instead_of_the_original(corpus, tmp_path):
    stage = tmp_path / "node-local"
    cfg = load_config(PretrainConfig, "configs/pretrain/ecgfounder_tiny.yaml",
                      [f"data.corpus={corpus}", f"data.stage_dir={stage}"])
    data = build_data(cfg, DistEnv(0, 0, 1, "127.0.0.1", 0, "single"))
    (staged,) = stage.glob("ptbxl-*/manifest.json")
    staged = staged.parent
    manifest = read_manifest(corpus)
    assert all(file_sha256(staged / s.file) == s.sha256 for s in manifest.shards) and len(manifest.shards) == 4
    assert (staged / "index" / "group.npy").exists() and (staged / "scp_statements.csv").exists()
    assert data.stream.loader.dataset.corpus.paths == [staged]
    assert data.provenance["corpora"][0]["path"] == str(corpus.resolve())  # the export names the real corpus
    first = data.stream.loader.dataset.__getitems__([0, 1, 2])["signal"]
    before = {p.name: p.stat().st_mtime_ns for p in staged.iterdir()}
    for shard in corpus.glob("shard-*.h5"):  # spoil the shared filesystem's copy (same sizes): it must not be read
        spoiled = bytearray(shard.read_bytes())
        spoiled[-200_000:] = bytes(200_000)
        shard.write_bytes(bytes(spoiled))
    with pytest.raises(CorruptShard):
        ShardCorpus(corpus).read(np.arange(len(ShardCorpus(corpus))))
    again = build_data(cfg, DistEnv(0, 0, 1, "127.0.0.1", 0, "single"))  # skipped: already on this node
    assert {p.name: p.stat().st_mtime_ns for p in staged.iterdir()} == before
    assert np.array_equal(again.stream.loader.dataset.__getitems__([0, 1, 2])["signal"], first)


def test_a_shard_that_differs_from_its_manifest_is_not_staged(corpus, tmp_path, capsys):
    shard = corpus / read_manifest(corpus).shards[2].file
    data = bytearray(shard.read_bytes())
    data[-100] ^= 0xFF  # same size, other content
    shard.write_bytes(bytes(data))
    with pytest.raises(CorruptShard, match=shard.name):
        stage_corpus(corpus, tmp_path / "stage", tmp_path / "verified")
    (staged,) = (tmp_path / "stage").glob("ptbxl-*/")
    assert not (staged / "manifest.json").exists() and not list(staged.glob("*.tmp"))
    assert sorted(p.name for p in staged.glob("shard-*.h5")) == ["shard-000000.h5", "shard-000001.h5"]
    code, err = refused_pretrain(capsys, corpus, tmp_path / "run", f"data.stage_dir={tmp_path / 'stage'}")
    assert code == 2 and "data.corpus" in err and shard.name in err


def test_two_ranks_of_a_node_copy_once(corpus, tmp_path):
    code = ("import sys; from pathlib import Path; from ecgdist.data.staging import stage_corpus; "
            "print(stage_corpus(Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])))")
    ranks = [subprocess.Popen([sys.executable, "-c", code, corpus, tmp_path / "stage", tmp_path / "v"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outputs = [rank.communicate(timeout=120) for rank in ranks]
    assert all(rank.returncode == 0 for rank in ranks), outputs
    assert outputs[0][0] == outputs[1][0]
    assert sum("staged" in err for _, err in outputs) <= 1 and not list((tmp_path / "stage").rglob("*.tmp"))
    shutil.rmtree(tmp_path / "stage")
