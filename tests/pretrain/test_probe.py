"""Probes during real pre-training (2 ranks, ZeRO-3, gloo): scalars at the interval steps, each
recomputed offline from its step's checkpoint (``python -m ecgdist.probe``), the best kept and
exported; and the configs a probe refuses before anything runs."""

import json

import pytest
import torch
from launch import python_m, read_scalars, refused_pretrain, pretrain_args, run_ranks

from ecgdist.pretrain.probe import HISTORY_FILE, read_history

pytestmark = pytest.mark.deepspeed
AUROC = "probe/ptbxl/superdiagnostic/auroc"


def test_a_two_rank_zero3_run_probes_each_interval_as_its_checkpoint_does_offline(ptbxl_corpus, tmp_path):
    run = tmp_path / "run"
    args = pretrain_args(ptbxl_corpus, run, "deepspeed=configs/deepspeed/zero3.json", "train.steps=6",
                         "probe.every_steps=2", "checkpoint.save_every_steps=2", "checkpoint.keep_last=5",
                         f"checkpoint.keep_best={AUROC}", f"data.exclude_from={ptbxl_corpus}",
                         config="configs/pretrain/mtecg_tiny.yaml")
    assert run_ranks(2, args, tmp_path, tmp_path) == [0, 0], (tmp_path / "rank0.log").read_text()[-3000:]
    history = read_history(run / HISTORY_FILE)
    assert [entry["step"] for entry in history] == [2, 4, 6]
    names = {f"probe/ptbxl/{task}/{metric}" for task in ("superdiagnostic", "rhythm") for metric in ("auroc", "auprc")}
    scalars = read_scalars(run / "tb")
    for name in names:
        assert scalars[name] == [(e["step"], pytest.approx(e["values"][name])) for e in history], name
    log = (tmp_path / "rank0.log").read_text()
    assert log.count("% of the interval's wall time") == 3 and "probe at step 4: ptbxl/superdiagnostic/auroc" in log
    # Each logged value is what the step's checkpoint gives offline in one fp32 process: the same
    # records and fit, features from the gathered weights instead of ZeRO-3's partitioned forwards.
    # Tolerance 1e-6: float reduction order (seen: 0.0).
    for entry in history:
        done = python_m("ecgdist.probe", run, "--step", entry["step"])
        assert done.returncode == 0, done.stderr[-3000:]
        offline = json.loads(done.stdout.splitlines()[-1])
        assert offline["step"] == entry["step"] and set(offline["values"]) == names
        assert offline["max_difference"] <= 1e-6, offline
        assert offline["values"] == pytest.approx(entry["values"], abs=1e-6)
    # export --best: the step of the highest value (the earliest of equal ones), named.
    best = max(history, key=lambda e: (e["values"][AUROC], -e["step"]))
    done = python_m("ecgdist.export", run, tmp_path / "best.pth", "--best")
    assert done.returncode == 0, done.stderr[-3000:]
    assert f"best {AUROC} {best['values'][AUROC]:.4f}" in done.stdout
    assert torch.load(tmp_path / "best.pth", weights_only=True)["step"] == best["step"]


@pytest.mark.parametrize("overrides, said", [
    (["probe.score_folds=[10]"], "config key 'probe.score_folds' has fold 10, the test fold"),
    (["probe.train_folds=[1,2,3,10]"], "config key 'probe.train_folds' has fold 10, the test fold"),
    (["probe.score_folds=[8]"], "config keys 'probe.train_folds' and 'probe.score_folds' share folds [8]"),
    (["checkpoint.keep_best=probe/ptbxl/superdiagnostic/f1"],
     "config key 'checkpoint.keep_best' is 'probe/ptbxl/superdiagnostic/f1'; it names a probe metric"),
    (["probe.benchmarks=[{name: ptbxl, kind: ptbxl, tasks: [rhytm]}]"], "config key 'probe.benchmarks (ptbxl) tasks'"),
])
def test_a_probe_config_that_would_read_the_test_fold_or_name_nothing_is_refused(ptbxl_corpus, tmp_path, capsys,
                                                                                  overrides, said):
    code, err = refused_pretrain(capsys, ptbxl_corpus, tmp_path / "run", "probe.every_steps=2",
                                 f"data.exclude_from={ptbxl_corpus}", *overrides)
    assert code == 2 and said in err, err
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_a_probe_scored_on_records_pre_training_reads_is_refused(ptbxl_corpus, tmp_path, capsys):
    code, err = refused_pretrain(capsys, ptbxl_corpus, tmp_path / "run", "probe.every_steps=2")
    assert code == 2, err
    assert "config key 'probe.benchmarks (ptbxl)':" in err and "pre-training records are records of fold 9" in err
    assert f"data.exclude_from={ptbxl_corpus}" in err
    assert not (tmp_path / "run" / "checkpoints").exists()
