"""Content fingerprints: the same ECG through two sources is one record; evaluation folds are left out."""

import json

import h5py
import numpy as np
import pytest
from conftest import REPO, build_corpus
from launch import preprocess

from ecgdist.data.index import FingerprintsMissing, index_problems, read_index
from ecgdist.data.leakage import TrainingSet, evaluation_sets, overlap_by_fold
from ecgdist.data.shards import read_metadata


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
    assert not np.isin(training.fingerprints, evaluation_sets(ptbxl_corpus, [9, 10])[0]).any()
    # A corpus left out of itself: exactly its folds 9 and 10 go.
    own = TrainingSet.build(ptbxl_corpus, ptbxl_corpus, [9, 10])
    assert own.excluded == int(np.isin(read_index(ptbxl_corpus).fold, [9, 10]).sum()) == 35


def test_a_corpus_without_fingerprints_says_how_to_add_them_and_the_command_adds_them(shared_data, tmp_path):
    corpus = build_corpus("wfdb", shared_data / "physionet2021-mini", tmp_path / "old")
    expected = read_index(corpus).fingerprint.copy()
    for name in ("fingerprint.npy", "checksums.json"):  # as written before fingerprints (and checksums) existed
        (corpus / "index" / name).unlink()
    with h5py.File(corpus / "shard-000000.h5", "r+") as f:
        del f["fingerprint"]
    with pytest.raises(FingerprintsMissing, match="python -m preprocess fingerprint"):
        read_index(corpus).fingerprints(corpus)
    done = preprocess("fingerprint", corpus, shared_data / "physionet2021-mini", "--quiet")
    assert done.returncode == 0, done.stderr
    assert np.array_equal(read_index(corpus).fingerprints(corpus), expected)
    assert not list((corpus / "index").glob("*.tmp")) and index_problems(corpus) == []
    assert "fingerprint.npy" in json.loads((corpus / "index" / "checksums.json").read_text())["files"]


def test_fingerprints_ignore_the_recipe(shared_data, ptbxl_corpus, tmp_path):
    filtered = build_corpus("ptbxl", shared_data / "ptbxl-mini", tmp_path / "f", "--filter", "ecgfounder",
                            "--rate", "250")
    assert np.array_equal(read_index(filtered).fingerprint, read_index(ptbxl_corpus).fingerprint)


def ptbxl_at_both_rates(shared_data, folder):
    """ptbxl-mini with 6000-6009 at 100 Hz too. ptbxl-mini has no ECG at both rates (every ECG of the full
    download has), so it is built here as PhysioNet made PTB-XL's records100: each records500 file
    decimated by 5 into records100/06000/0600N_lr, same header fields, 1,000 samples."""
    import shutil

    import wfdb
    from scipy import signal

    shutil.copytree(shared_data / "ptbxl-mini", folder)
    (folder / "records100" / "06000").mkdir(parents=True)
    for ecg_id in range(6000, 6010):
        high = wfdb.rdrecord(str(folder / "records500" / "06000" / f"{ecg_id:05d}_hr"))
        low = signal.decimate(high.p_signal, 5, axis=0, zero_phase=True)
        wfdb.wrsamp(f"{ecg_id:05d}_lr", fs=100, units=high.units, sig_name=high.sig_name, p_signal=low,
                    fmt=high.fmt, adc_gain=high.adc_gain, baseline=high.baseline,
                    write_dir=str(folder / "records100" / "06000"))
    return folder


def test_one_ecg_at_both_rates_has_one_fingerprint_and_leakage_is_found_at_100_hz(shared_data, tmp_path):
    from ecgdist.config import ConfigError
    from ecgdist.data.leakage import manifest_sha256
    from ecgdist.finetune.provenance import pretraining_data
    from ecgdist.pretrain.export import training_provenance

    source = ptbxl_at_both_rates(shared_data, tmp_path / "ptb-xl")
    corpora = {rate: build_corpus("ptbxl", source, tmp_path / f"ptbxl{rate}", "--rate", str(rate)) for rate in (100, 500)}
    fingerprints, paths = {}, {}
    for rate, corpus in corpora.items():
        table = read_metadata(corpus, ["record_id", "fingerprint", "source_path"])
        fingerprints[rate] = dict(zip(table["record_id"], table["fingerprint"]))
        paths[rate] = dict(zip(table["record_id"], table["source_path"]))
    assert fingerprints[100]["ptbxl:6003#0"] == fingerprints[500]["ptbxl:6003#0"]
    assert paths[100]["ptbxl:6003#0"].endswith("records100/06000/06003_lr")  # the file read, not the preferred one
    assert paths[500]["ptbxl:6003#0"].endswith("records500/06000/06003_hr")
    assert paths[500]["ptbxl:5#0"].endswith("records100/00000/00005_lr")  # only at 100 Hz: read (and resampled)
    # A 100 Hz PhysioNet 2021 pre-training corpus holding PTB-XL's 6000-6009 (two in fold 10) is caught.
    challenge = build_corpus("physionet2021", shared_data / "physionet2021-mini", tmp_path / "cinc100", "--rate", "100")
    assert TrainingSet.build(challenge, str(corpora[100]), [9, 10]).excluded == 2
    provenance = training_provenance({"corpora": [{"path": str(challenge), "manifest_sha256": manifest_sha256(challenge)}],
                                      "exclude_from": None, "excluded": 0})
    with pytest.raises(ConfigError, match=r"fold 10: 2 records \(e.g. ptbxl:6000#0, ptbxl:6004#0\)"):
        pretraining_data("cinc.pth", {"provenance": provenance}, str(corpora[100]), allow_overlap=False)


def test_fingerprints_of_an_older_version_are_refused_with_the_command(ptbxl_corpus, tmp_path):
    import shutil

    from ecgdist.config import ConfigError
    from ecgdist.finetune.provenance import pretraining_data

    old = tmp_path / "old"
    shutil.copytree(ptbxl_corpus, old)
    checksums = json.loads((old / "index" / "checksums.json").read_text())
    (old / "index" / "checksums.json").write_text(json.dumps({**checksums, "fingerprint_version": 1}))
    with pytest.raises(FingerprintsMissing, match=f"version 1, not 2 .*python -m preprocess fingerprint {old} INPUT"):
        read_index(old).fingerprints(old)
    with pytest.raises(FingerprintsMissing, match="version 1"):
        TrainingSet.build([str(ptbxl_corpus)], str(old), [9, 10])
    export = {"provenance": {"fingerprints": read_index(ptbxl_corpus).fingerprint.view(np.int64)}}  # no version: 1
    with pytest.raises(ConfigError, match="fingerprints of version 1, not 2.*python -m ecgdist.export RUN OUT"):
        pretraining_data("old.pth", export, str(ptbxl_corpus), allow_overlap=False)


def test_identity_catches_a_copy_whose_samples_changed_on_the_way(shared_data, ptbxl_corpus, tmp_path):
    """The Challenge's HR06000-HR06009 rescaled by 0.1 % (as a re-quantised copy would be): no content
    match, but each is PTB-XL's ecg_id by name."""
    import wfdb

    from ecgdist.config import ConfigError
    from ecgdist.data.leakage import manifest_sha256
    from ecgdist.finetune.provenance import pretraining_data
    from ecgdist.pretrain.export import training_provenance

    folder = tmp_path / "copies"
    folder.mkdir()
    for header in sorted((shared_data / "physionet2021-mini").glob("HR*.hea")):
        record = wfdb.rdrecord(str(header.with_suffix("")))
        wfdb.wrsamp(header.stem, fs=record.fs, units=record.units, sig_name=record.sig_name,
                    p_signal=record.p_signal * 1.001, fmt=["16"] * record.n_sig, adc_gain=record.adc_gain,
                    baseline=record.baseline, comments=record.comments, write_dir=str(folder))
    copies = build_corpus("wfdb", folder, tmp_path / "c")
    assert not np.isin(read_index(copies).fingerprint, read_index(ptbxl_corpus).fingerprint).any()
    assert TrainingSet.build(copies, str(ptbxl_corpus), [9, 10]).excluded == 2  # 6000 and 6004: fold 10
    provenance = training_provenance({"corpora": [{"path": str(copies), "manifest_sha256": manifest_sha256(copies)}],
                                      "exclude_from": None, "excluded": 0})
    assert len(provenance["identities"]) == 10
    with pytest.raises(ConfigError, match=r"fold 10: 2 records \(e.g. ptbxl:6000#0, ptbxl:6004#0\)"):
        pretraining_data("copies.pth", {"provenance": provenance}, str(ptbxl_corpus), allow_overlap=False)


def test_exclude_from_must_leave_out_something_it_could(cinc_corpus, ptbxl_corpus):
    from ecgdist.config import ConfigError, PretrainConfig, load_config
    from ecgdist.pretrain.data import leave_out_evaluation_records

    challenge = cinc_corpus

    def leave_out(exclude_from, *overrides):
        cfg = load_config(PretrainConfig, REPO / "configs/pretrain/ecgfounder_tiny.yaml",
                          [f"data.corpus={challenge}", f"data.exclude_from={exclude_from}", *overrides])
        return leave_out_evaluation_records(cfg, [challenge], [read_index(challenge)])

    with pytest.raises(ConfigError, match=f"data.exclude_from': {challenge} has no records in folds 9, 10"):
        leave_out(challenge)  # a corpus without PTB-XL's folds: nothing could be left out
    with pytest.raises(ConfigError, match="no record of .* was left out, yet data.corpus holds 10 records of PTB-XL"):
        leave_out(ptbxl_corpus, "data.exclude_folds=[1]")  # none of 6000-6009 is in fold 1
    keep, provenance = leave_out(ptbxl_corpus, "data.exclude_folds=[1]", "data.allow_none_excluded=true")
    assert keep.all() and provenance["excluded"] == 0
    assert leave_out(ptbxl_corpus)[1]["excluded"] == 2
