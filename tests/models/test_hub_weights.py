"""Released weights by Hub reference (hf://OWNER/REPO/FILE[@REV]) and weights files with more than tensors."""

import argparse
import dataclasses
import json
import os
import subprocess
import sys

import pytest
import torch
from hub_server import HubServer

from ecgdist.config import ConfigError, FinetuneConfig, load_config
from ecgdist.data.dataset import ShardCorpus
from ecgdist.finetune.job import JobSpec, run_job
from ecgdist.finetune.weights import build_finetune_model, check_weights
from ecgdist.finetune.sweep import submit_finetune
from ecgdist.models import head_parameter_names
from ecgdist.models.pretrained import UnreadableWeights, read_weights, save_weights

TINY = "configs/finetune/ptbxl_tiny.yaml"
REF = "hf://PKUDigitalHealth/ECGFounder/12_lead_ECGFounder.pth"


class PickledThing:  # a class a file could smuggle in: never unpickled
    def __init__(self) -> None:
        self.value = 1


@pytest.fixture
def hub(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    with HubServer(tmp_path / "hub") as server:
        monkeypatch.setenv("HF_ENDPOINT", server.url)
        yield server


def released_net1d(cfg, path):
    """A Net1D file as ECGFounder releases it: a dict with the weights under state_dict (``module.``
    prefixed, as saved from DataParallel) beside the epoch and optimizer state."""
    torch.manual_seed(0)
    model = build_finetune_model(cfg, "scratch", 150)
    optimizer = torch.optim.Adam(model.parameters())
    torch.save({"epoch": 17, "state_dict": {f"module.{k}": v for k, v in model.state_dict().items()},
                "optimizer": optimizer.state_dict()}, path)
    return model


def config(corpus, *overrides):
    return load_config(FinetuneConfig, TINY, [f"data.corpus={corpus}", "finetune.bootstrap=20", *overrides])


def test_a_fine_tune_job_loads_released_weights_by_hub_reference(ptbxl_ecgfounder_corpus, ptbxl_corpus, shared_data,
                                                                 hub, tmp_path):
    """On the corpus made with the released recipe (its filter); an unfiltered one is refused."""
    cfg = config(ptbxl_ecgfounder_corpus, f"finetune.weights={REF}")
    model = released_net1d(cfg, tmp_path / "released.pth")
    hub.publish("PKUDigitalHealth/ECGFounder", "12_lead_ECGFounder.pth", tmp_path / "released.pth")
    check_weights(cfg, ShardCorpus(ptbxl_ecgfounder_corpus))
    submit_finetune(dataclasses.replace(cfg, run=dataclasses.replace(cfg.run, dir=str(tmp_path / "sweep"))),
                    "debug", dry_run=True)  # what submission checks: a reference is not a missing file
    with pytest.raises(ConfigError, match="filter ecgfounder"):
        check_weights(config(ptbxl_corpus, f"finetune.weights={REF}"), ShardCorpus(ptbxl_corpus))
    loaded = build_finetune_model(cfg, "baseline", 150)
    body = [k for k in model.state_dict() if k not in head_parameter_names(model)]
    assert all(torch.equal(loaded.state_dict()[k], model.state_dict()[k]) for k in body)
    cached = list((tmp_path / "hf-home" / "hub").rglob("12_lead_ECGFounder.pth"))
    assert cached, "fetched into huggingface_hub's own cache"
    result = run_job(cfg, JobSpec("superdiagnostic", "baseline", 1.0, 0), tmp_path / "job")
    assert result["pretraining_data"]["status"] == "unknown" and 0 <= result["macro_auroc"] <= 1
    # The fine-tuned model, published in turn, serves predict by reference too.
    hub.publish("lab/ptbxl-superdiagnostic", "model.pth", tmp_path / "job" / "model.pth")
    record = shared_data / "ptbxl-mini" / "records500" / "06000" / "06000_hr"
    done = subprocess.run([sys.executable, "-m", "ecgdist.predict", "hf://lab/ptbxl-superdiagnostic/model.pth@main",
                           str(record), "--json"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    classes = json.loads((tmp_path / "job" / "classes.json").read_text())
    assert set(json.loads(done.stdout.splitlines()[-1])["probabilities"]) == set(classes)


def test_models_command_loads_hub_weights_strictly_and_works_offline_from_the_cache(ptbxl_corpus, hub, tmp_path):
    cfg = config(ptbxl_corpus)
    released_net1d(cfg, tmp_path / "released.pth")
    hub.publish("PKUDigitalHealth/ECGFounder", "12_lead_ECGFounder.pth", tmp_path / "released.pth")
    widths = ",".join(map(str, cfg.model.widths))
    blocks = ",".join(map(str, cfg.model.blocks))
    command = [sys.executable, "-m", "ecgdist.models", "net1d", f"widths=[{widths}]", f"blocks=[{blocks}]",
               "--samples", str(cfg.data.crop_samples), "--weights", REF]
    online = subprocess.run(command, capture_output=True, text=True)
    assert online.returncode == 0, online.stderr
    assert f"loaded {REF} (every tensor)" in online.stdout and '"weights": "hf://' in online.stdout
    served = len(hub.requests)
    offline = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert offline.returncode == 0 and "every tensor" in offline.stdout and len(hub.requests) == served
    cold = subprocess.run(command, capture_output=True, text=True,
                          env={**os.environ, "HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "empty")})
    assert cold.returncode != 0
    assert "not in the Hugging Face cache" in cold.stderr and "hf download PKUDigitalHealth/ECGFounder " \
        "12_lead_ECGFounder.pth" in cold.stderr and "Traceback" not in cold.stderr
    missing = subprocess.run([*command[:-1], "hf://PKUDigitalHealth/ECGFounder/1_lead_ECGFounder.pth"],
                             capture_output=True, text=True)
    assert missing.returncode != 0 and "the Hub has no such file" in missing.stderr


def test_plain_extras_load_a_namespace_needs_the_switch_and_a_class_is_refused(ptbxl_corpus, tmp_path):
    cfg = config(ptbxl_corpus)
    model = released_net1d(cfg, tmp_path / "released.pth")
    state, extra = read_weights(tmp_path / "released.pth")
    assert extra["epoch"] == 17 and "state" in extra["optimizer"] and set(state) == set(model.state_dict())
    torch.save({"state_dict": model.state_dict(), "args": argparse.Namespace(lr=0.001, epochs=30)},
               tmp_path / "with_args.pth")
    with pytest.raises(UnreadableWeights, match=r"argparse\.Namespace.*finetune\.trusted_types=\[argparse\.Namespace\]"):
        read_weights(tmp_path / "with_args.pth")
    _, extra = read_weights(tmp_path / "with_args.pth", ["argparse.Namespace"])
    assert extra["args"].epochs == 30
    allowed = config(ptbxl_corpus, f"finetune.weights={tmp_path / 'with_args.pth'}",
                     "finetune.trusted_types=[argparse.Namespace]")
    check_weights(allowed, ShardCorpus(ptbxl_corpus))
    save_weights(model, tmp_path / "smuggled.pth", thing=PickledThing())
    with pytest.raises(UnreadableWeights, match="test_hub_weights.PickledThing") as refused:
        read_weights(tmp_path / "smuggled.pth")
    assert "no code in the file runs" in str(refused.value)
