"""Weights that saw the evaluation records are refused; exports say what they were trained on."""

import json

import numpy as np
import pytest
import torch
from launch import export, pretrain, python_m

from ecgdist.data.index import read_index
from ecgdist.config import ConfigError
from ecgdist.finetune.provenance import CHECKED, OVERLAP, UNKNOWN, finetuned_provenance, pretraining_data
from ecgdist.models.net1d import Net1D
from ecgdist.models.pretrained import read_weights, save_weights

pytestmark = pytest.mark.deepspeed


def pretrain_and_export(corpus, folder, *overrides):
    run = folder / "run"
    done = pretrain(corpus, run, "train.steps=2", "checkpoint.save_every_steps=2", "train.val_every_steps=2",
                    "train.micro_batch=4", *overrides)
    assert done.returncode == 0, done.stderr[-2000:]
    out = folder / "weights" / "net1d.pth"  # the folder does not exist yet: export makes it
    export(run, out)
    return run, out


@pytest.fixture(scope="module")
def leaky_weights(challenge_corpus, tmp_path_factory):
    """Pre-trained on the Challenge copies of PTB-XL 6000-6009, two of which are in PTB-XL's test fold."""
    return pretrain_and_export(challenge_corpus, tmp_path_factory.mktemp("leaky"))[1]


def sweep(corpus, weights, run_dir, *overrides):
    return python_m("ecgdist.submit", "finetune", "configs/finetune/ptbxl_tiny.yaml", f"data.corpus={corpus}",
                    f"finetune.weights={weights}", f"run.dir={run_dir}", "sweep.tasks=[superdiagnostic]",
                    "sweep.strategies=[baseline]", "finetune.epochs=1", "finetune.bootstrap=20", *overrides,
                    "--cluster", "debug", "--wait", timeout=600)


def test_weights_that_saw_test_records_are_refused_before_submission(ptbxl_corpus, leaky_weights, tmp_path):
    out = sweep(ptbxl_corpus, leaky_weights, tmp_path / "sweep")
    assert out.returncode == 2
    assert "fold 10: 2 records (e.g. ptbxl:6000#0, ptbxl:6004#0)" in out.stderr and "Traceback" not in out.stderr
    assert not (tmp_path / "sweep" / "jobs").exists()


def test_allow_overlap_runs_and_marks_every_row(ptbxl_corpus, leaky_weights, tmp_path):
    out = sweep(ptbxl_corpus, leaky_weights, tmp_path / "sweep", "finetune.allow_overlap=true")
    assert out.returncode == 0, out.stderr
    result = json.loads(next((tmp_path / "sweep" / "jobs").glob("*/result.json")).read_text())
    assert result["pretraining_data"]["status"] == OVERLAP and "fold 10: 2 records" in result["pretraining_data"]["detail"]
    assert "**OVERLAP: trained on evaluation records**" in (tmp_path / "sweep" / "results.md").read_text()


def test_pretraining_that_leaves_the_evaluation_folds_out_passes_the_check(challenge_corpus, ptbxl_corpus, tmp_path):
    run, weights = pretrain_and_export(challenge_corpus, tmp_path, f"data.exclude_from={ptbxl_corpus}")
    assert "data.exclude_from left out 2 records" in (run / "config.yaml").read_text()
    provenance = torch.load(weights, weights_only=True)["provenance"]
    assert len(provenance["fingerprints"]) == 8 and provenance["excluded"] == 2
    assert provenance["exclude_from"]["folds"] == [9, 10]
    checked = pretraining_data(str(weights), read_weights(weights)[1], str(ptbxl_corpus), allow_overlap=False)
    assert checked["status"] == CHECKED and "8 pre-training records" in checked["detail"]


def test_weights_without_a_record_of_their_data_are_unknown_not_refused(ptbxl_corpus, tmp_path):
    released = tmp_path / "released.pth"
    save_weights(Net1D(widths=(16, 32), blocks=(1, 1)), released, epoch=3)
    checked = pretraining_data(str(released), read_weights(released)[1], str(ptbxl_corpus), allow_overlap=False)
    assert checked["status"] == UNKNOWN and "cannot be checked" in checked["detail"]


@pytest.mark.parametrize("edit", ["drop the fold-10 entries", "empty", "int32", "float32", "no checksum"])
def test_hand_edited_provenance_reads_as_unknown_never_as_no_overlap(ptbxl_corpus, leaky_weights, tmp_path, edit):
    import numpy as np

    from ecgdist.data.leakage import evaluation_sets

    blob = torch.load(leaky_weights, weights_only=True)
    provenance = blob["provenance"]
    assert pretraining_data(str(leaky_weights), {"provenance": provenance}, str(ptbxl_corpus), True)["status"] == OVERLAP
    fingerprints = provenance["fingerprints"]
    test_fold = evaluation_sets(ptbxl_corpus, [9, 10])[0].view(np.int64)
    provenance["fingerprints"] = {
        "drop the fold-10 entries": fingerprints[~torch.from_numpy(np.isin(fingerprints.numpy(), test_fold))],
        "empty": fingerprints[:0], "int32": fingerprints.to(torch.int32), "float32": fingerprints.to(torch.float32),
        "no checksum": fingerprints}[edit]
    if edit == "no checksum":
        del provenance["fingerprints_sha256"]
    torch.save(blob, tmp_path / "edited.pth")
    checked = pretraining_data(str(tmp_path / "edited.pth"), read_weights(tmp_path / "edited.pth")[1],
                               str(ptbxl_corpus), allow_overlap=False)
    assert checked["status"] == UNKNOWN and "cannot be checked" in checked["detail"]


def test_a_label_fraction_row_whose_backbone_saw_training_folds_is_marked(ptbxl_corpus, leaky_weights, tmp_path):
    """The Challenge copies of 6000-6009: eight of them are in PTB-XL's training folds 1-8."""
    out = sweep(ptbxl_corpus, leaky_weights, tmp_path / "sweep", "finetune.allow_overlap=true", "sweep.fractions=[0.5]")
    assert out.returncode == 0, out.stderr
    result = json.loads(next((tmp_path / "sweep" / "jobs").glob("*/result.json")).read_text())
    from ecgdist.tasks.benchmark import task_splits
    splits = task_splits(ptbxl_corpus, "ptbxl", "superdiagnostic").splits
    expected = sum(r.split("#")[0] in {f"ptbxl:{i}" for i in range(6000, 6010)} for r in splits["train"].record_ids)
    assert expected == 8 and result["pretraining_data"]["training_records_seen"] == expected
    table = (tmp_path / "sweep" / "results.md").read_text()
    assert "| **OVERLAP: trained on evaluation records**; saw 8 training-fold records (**label fraction < 1: a " \
        "supervised pre-training or fine-tune has seen their labels**) |" in table


def test_a_model_fine_tuned_on_the_challenge_copies_is_refused_for_a_ptbxl_evaluation(challenge_corpus, ptbxl_corpus,
                                                                                      leaky_weights):
    """PhysioNet/CinC 2021 holds PTB-XL's records under other ids: a model fine-tuned on it, then
    fine-tuned on PTB-XL, would be tested on records it trained on. Listed, and refused, whatever
    its backbone: random weights, weights with a record, or weights without one."""
    rows = np.arange(len(read_index(challenge_corpus).fold))
    backbone = read_weights(leaky_weights)[1]["provenance"]
    for start, complete in ((None, True), (backbone, True), ({}, False)):
        listed = finetuned_provenance(start, str(challenge_corpus), rows)
        assert listed["finetuned"] and listed["complete"] == complete and len(listed["fingerprints"]) == 10
        with pytest.raises(ConfigError) as refused:
            pretraining_data("tuned.pth", {"provenance": listed}, str(ptbxl_corpus), allow_overlap=False)
        assert "tuned.pth was trained on records of the evaluation folds" in str(refused.value)
        assert "fold 10: 2 records (e.g. ptbxl:6000#0, ptbxl:6004#0)" in str(refused.value)
        assert "Fine-tune from weights that did not train on them" in str(refused.value)
        assert pretraining_data("tuned.pth", {"provenance": listed}, str(ptbxl_corpus), True)["status"] == OVERLAP
    # The backbone's records and the fine-tune's, joined: PTB-XL's training folds after the Challenge copies.
    train_rows = np.flatnonzero(np.isin(read_index(ptbxl_corpus).fold, range(1, 9)))
    joined = finetuned_provenance(backbone, str(ptbxl_corpus), train_rows)
    own = read_index(ptbxl_corpus).fingerprints(ptbxl_corpus)[train_rows]
    expected = np.union1d(own, backbone["fingerprints"].numpy().view(np.uint64))
    assert np.array_equal(joined["fingerprints"].numpy().view(np.uint64), expected) and len(expected) > len(set(own))
    assert [c["path"] for c in joined["corpora"]] == [str(challenge_corpus), str(ptbxl_corpus)]


def test_a_sweep_from_a_fine_tuned_model_counts_the_records_it_was_fine_tuned_on(ptbxl_corpus, tmp_path):
    """Through ``python -m ecgdist.submit finetune``: a sweep's job model.pth as the next sweep's weights."""
    start = tmp_path / "start.pth"
    save_weights(Net1D(widths=(16, 32, 32, 64), blocks=(1, 1, 1, 1), num_classes=150), start)
    first = sweep(ptbxl_corpus, start, tmp_path / "first", "sweep.fractions=[0.5]")
    assert first.returncode == 0, first.stderr
    tuned = next((tmp_path / "first" / "jobs").glob("*/model.pth"))
    listed = read_weights(tuned)[1]["provenance"]
    again = sweep(ptbxl_corpus, tuned, tmp_path / "again")
    assert again.returncode == 0, again.stderr
    known = json.loads(next((tmp_path / "again" / "jobs").glob("*/result.json")).read_text())["pretraining_data"]
    assert known["status"] == UNKNOWN and f"none of the {len(listed['fingerprints'])} training records" in known["detail"]
    assert known["training_records_seen"] == len(listed["fingerprints"]) > 0


def test_a_made_split_is_guarded_like_ptbxl_folds(physionet_corpus, split_physionet_corpus, tmp_path):
    """Weights pre-trained on the whole Georgia/Ningbo corpus saw the validation and test folds that
    ``preprocess split`` made: refused before submission. ``data.exclude_from`` reads the same folds,
    so a pre-training can leave the benchmark's test split out in advance."""
    _, leaky = pretrain_and_export(physionet_corpus, tmp_path)
    benchmark = f"[{{name: physionet, kind: physionet2021, corpus: {split_physionet_corpus}, tasks: [georgia]}}]"
    out = sweep(split_physionet_corpus, leaky, tmp_path / "sweep", "sweep.tasks=[]", f"sweep.benchmarks={benchmark}")
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert "pre-trained on records of the evaluation folds" in out.stderr and "fold 9: 2 records" in out.stderr
    assert "fold 10: 2 records" in out.stderr and not (tmp_path / "sweep" / "jobs").exists()
    from ecgdist.data.leakage import evaluation_sets
    fingerprints, _ = evaluation_sets(split_physionet_corpus, [9, 10])
    folds = read_index(split_physionet_corpus).fold
    assert len(fingerprints) == int(np.isin(folds, [9, 10]).sum()) == 4  # one record of each source in each
