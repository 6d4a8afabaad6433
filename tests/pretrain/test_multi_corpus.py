"""One pre-training run over several corpora: shares, masked BCE, resume, export, recipe checks."""

import signal
import time

import numpy as np
import pytest
import torch
from conftest import build_corpus
from launch import export, refused_pretrain, run_ranks, start_ranks

from ecgdist.config import PretrainConfig, load_config
from ecgdist.dist import DistEnv
from ecgdist.models import build_model
from ecgdist.pretrain.data import build_data
from ecgdist.pretrain.objectives import multilabel_bce

TINY = "configs/pretrain/ecgfounder_tiny.yaml"


def config(corpora, *overrides):
    listed = "[" + ",".join(map(str, corpora)) + "]"
    return load_config(PretrainConfig, TINY, [f"data.corpus={listed}", "data.val_fraction=0", *overrides])


def test_the_target_space_is_the_union_and_each_corpus_is_scored_on_its_own_labels(ptbxl_corpus, physionet_corpus):
    data = build_data(config([ptbxl_corpus, physionet_corpus]), DistEnv(0, 0, 1, "127.0.0.1", 0, "single"))
    train = data.stream.loader.dataset
    snomed = [k for k, label in enumerate(data.labels) if label.isdigit()]  # PhysioNet 2021: SNOMED-CT codes
    scp = [k for k, label in enumerate(data.labels) if not label.isdigit()]  # PTB-XL: SCP statements
    assert snomed and scp and len(data.labels) == len(snomed) + len(scp)
    batch = train.__getitems__(list(range(len(train))))
    from_physionet = train.corpora_of() == 1
    assert from_physionet.sum() == 20 and (~from_physionet).sum() == 110
    mask, target = batch["target_mask"].numpy(), batch["target"].numpy()
    assert (mask[from_physionet][:, snomed] == 1).all() and (mask[from_physionet][:, scp] == 0).all()
    assert (mask[~from_physionet][:, scp] == 1).all() and (mask[~from_physionet][:, snomed] == 0).all()
    assert target[from_physionet][:, snomed].sum() > 0 and target[:, scp][from_physionet].sum() == 0


def test_a_label_outside_a_records_corpus_gets_no_gradient(ptbxl_corpus, physionet_corpus):
    cfg = config([ptbxl_corpus, physionet_corpus])
    data = build_data(cfg, DistEnv(0, 0, 1, "127.0.0.1", 0, "single"))
    train = data.stream.loader.dataset
    batch = train.to_device(train.__getitems__(list(range(100, 120))), "cpu")  # PTB-XL and PhysioNet 2021 records
    model = build_model(cfg.model, 12, cfg.data.crop_samples, len(data.labels))

    class KeepLogits(torch.nn.Module):
        def forward(self, signal):
            self.logits = model(signal)
            self.logits.retain_grad()
            return self.logits

    recorder = KeepLogits()
    multilabel_bce(recorder, batch).backward()
    grad, mask = recorder.logits.grad, batch["target_mask"]
    assert (grad[mask == 0] == 0).all(), "no gradient reaches a label the record's corpus did not annotate"
    assert (grad[mask == 1] != 0).float().mean() > 0.99
    assert 0 < (mask == 0).sum() < mask.numel()
    # With every label annotated the loss is plain mean BCE.
    logits = recorder.logits.detach()
    full = {**batch, "target_mask": torch.ones_like(mask)}
    plain = torch.nn.functional.binary_cross_entropy_with_logits(logits, batch["target"])
    assert torch.allclose(multilabel_bce(lambda _: logits, full), plain)


@pytest.mark.parametrize("weights", [None, [1, 1]])
def test_corpus_weights_set_each_corpus_share_of_an_epoch(ptbxl_corpus, physionet_corpus, weights):
    extra = [f"data.corpus_weights=[{weights[0]},{weights[1]}]"] if weights else []
    data = build_data(config([ptbxl_corpus, physionet_corpus], "train.micro_batch=4", *extra),
                      DistEnv(0, 0, 1, "127.0.0.1", 0, "single"))
    corpus_of = data.stream.loader.dataset.corpora_of()
    drawn = np.concatenate([corpus_of[b] for epoch in range(20) for b in data.stream.sampler.batches(epoch)])
    share = drawn.mean()  # PhysioNet 2021's share: 20 of 130 records, or half by weight
    expected = 0.5 if weights else 20 / 130
    assert abs(share - expected) < 0.03, share


def test_corpora_made_with_other_recipes_are_refused_naming_both(ptbxl_corpus, shared_data, tmp_path, capsys):
    other = build_corpus("physionet2021", shared_data / "physionet2021-mini", tmp_path / "p250", "--rate", "250")
    code, err = refused_pretrain(capsys, f"[{ptbxl_corpus},{other}]", tmp_path / "run")
    assert code == 2
    assert str(ptbxl_corpus) in err and str(other) in err and "rate_hz is 500 and 250" in err
    assert not (tmp_path / "run").exists()
    code, err = refused_pretrain(capsys, f"[{ptbxl_corpus},{other}]", tmp_path / "run", "data.corpus_weights=[1]")
    assert code == 2 and "'data.corpus_weights' has 1 weights for 2 corpora" in err


@pytest.mark.deepspeed
def test_two_corpora_train_resume_exactly_and_export_both(ptbxl_corpus, physionet_corpus, tmp_path):
    args = lambda run: ["-m", "ecgdist.pretrain", TINY, f"data.corpus=[{ptbxl_corpus},{physionet_corpus}]",
                        "data.corpus_weights=[2,1]", f"run.dir={run}", "train.steps=40",
                        "checkpoint.save_every_steps=0", "train.log_every_steps=1"]
    straight, interrupted = tmp_path / "straight", tmp_path / "interrupted"
    assert run_ranks(2, args(straight), tmp_path, tmp_path) == [0, 0]
    procs = start_ranks(2, args(interrupted), tmp_path, tmp_path)
    deadline = time.time() + 120
    while time.time() < deadline and not list((interrupted / "tb").glob("events*")):
        time.sleep(0.1)
    time.sleep(1.0)
    procs[0].send_signal(signal.SIGUSR1)
    assert [p.wait(timeout=300) for p in procs] == [3, 3]
    assert run_ranks(2, args(interrupted), tmp_path, tmp_path) == [0, 0]
    exported = [export(run, tmp_path / f"{run.name}.pth") for run in (straight, interrupted)]
    a, b = (e["state_dict"] for e in exported)
    assert max((a[k] - b[k]).abs().max().item() for k in a) <= 1e-6
    provenance = exported[0]["provenance"]
    assert [c["path"] for c in provenance["corpora"]] == [str(ptbxl_corpus.resolve()), str(physionet_corpus.resolve())]
    assert len(provenance["fingerprints"]) == 130
    assert any(label.isdigit() for label in exported[0]["labels"]) and "NORM" in exported[0]["labels"]


def test_records_two_corpora_share_train_once_from_the_first_listed(ptbxl_corpus, cinc_corpus, caplog):
    """physionet2021-mini's ten records are PTB-XL's 6000-6009 by content."""
    import logging

    copies = cinc_corpus
    env = DistEnv(0, 0, 1, "127.0.0.1", 0, "single")
    with caplog.at_level(logging.INFO):
        data = build_data(config([ptbxl_corpus, copies]), env)
    train = data.stream.loader.dataset
    assert len(train) == 110 and (train.corpora_of() == 0).all()  # PTB-XL's copies, with PTB-XL's labels
    assert data.provenance["shared_records_dropped"] == 10 and "10 records of later corpora" in caplog.text
    flipped = build_data(config([copies, ptbxl_corpus]), env).stream.loader.dataset
    assert len(flipped) == 110 and (flipped.corpora_of() == 0).sum() == 10


def test_one_corpus_listed_twice_is_refused(ptbxl_corpus, tmp_path):
    from ecgdist.config import ConfigError

    (tmp_path / "link").symlink_to(ptbxl_corpus)
    for second in (ptbxl_corpus, tmp_path / "link", f"{ptbxl_corpus}/./"):
        with pytest.raises(ConfigError, match="'data.corpus' lists one corpus twice"):
            build_data(config([ptbxl_corpus, second]), DistEnv(0, 0, 1, "127.0.0.1", 0, "single"))
