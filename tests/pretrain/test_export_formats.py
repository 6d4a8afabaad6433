"""Exports other tools read: safetensors (tensors and JSON metadata, no pickle) and ONNX (both
model families, dynamic batch), each checked against the run's model in torch."""

import hashlib
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from launch import pretrain, python_m

from ecgdist.data.dataset import ShardDataset
from ecgdist.data.transforms import Transform
from ecgdist.finetune.provenance import CHECKED, pretraining_data
from ecgdist.models import pooled_features
from ecgdist.models.pretrained import read_weights
from ecgdist.pretrain.export import exported_model

pytestmark = pytest.mark.deepspeed

# A fresh interpreter in which nothing can unpickle: the safetensors export alone builds the model.
WITHOUT_PICKLE = """
import pickle, sys
def refused(*args, **kwargs):
    raise RuntimeError("pickle is disabled in this process")
pickle.load = pickle.loads = pickle.Unpickler = refused
import json, torch
torch.load = refused
from ecgdist.config import PretrainConfig, from_dict
from ecgdist.models import build_model
from ecgdist.models.pretrained import load_pretrained, read_weights
state, extra = read_weights(sys.argv[1])
cfg = from_dict(PretrainConfig, extra["config"])
model = build_model(cfg.model, len(cfg.data.leads), cfg.data.crop_samples, len(extra["labels"]))
assert load_pretrained(model, sys.argv[1], state=state) == []
torch.manual_seed(0)
with torch.no_grad():
    out = model.eval()(torch.randn(2, len(cfg.data.leads), cfg.data.crop_samples))
print(json.dumps({"out": out.tolist(), "labels": extra["labels"], "step": extra["step"],
                  "fingerprints": extra["provenance"]["fingerprints"].tolist()}))
"""


# Each tensor's sha256 and the fingerprint set's checksum of a weights file or reference, as one JSON line.
TENSOR_DIGESTS = """
import hashlib, json, sys
from ecgdist.models.pretrained import read_weights
state, extra = read_weights(sys.argv[1])
print(json.dumps({"tensors": {k: hashlib.sha256(v.numpy().tobytes()).hexdigest() for k, v in state.items()},
                  "fingerprints_sha256": extra["provenance"]["fingerprints_sha256"]}))
"""


@pytest.fixture(scope="module")
def exports(ptbxl_corpus, tmp_path_factory):
    """Both tiny models pre-trained 4 steps without folds 9-10, each exported as .pth, .safetensors
    and .onnx (the ONNX file beside the safetensors export, from the same command)."""
    folder = tmp_path_factory.mktemp("exports")
    for name, config in (("net1d", "configs/pretrain/ecgfounder_tiny.yaml"), ("mtecg", "configs/pretrain/mtecg_tiny.yaml")):
        done = pretrain(ptbxl_corpus, folder / name, "train.steps=4", "checkpoint.save_every_steps=4",
                        f"data.exclude_from={ptbxl_corpus}", config=config)
        assert done.returncode == 0, done.stderr[-3000:]
        for out, extra in ((f"{name}.pth", ()), (f"{name}.safetensors", ("--onnx", folder / f"{name}.onnx"))):
            exported = python_m("ecgdist.export", folder / name, folder / out, *extra)
            assert exported.returncode == 0, exported.stderr[-3000:]
    return folder


def test_a_safetensors_export_loads_without_pickle_and_predicts_as_the_run(exports, ptbxl_corpus):
    assert (exports / "net1d.safetensors").read_bytes()[8:9] == b"{"  # the safetensors header, not a zip
    threads = {**os.environ, "OMP_NUM_THREADS": str(torch.get_num_threads())}  # sums split alike round alike
    fresh = subprocess.run([sys.executable, "-c", WITHOUT_PICKLE, str(exports / "net1d.safetensors")],
                           capture_output=True, text=True, timeout=300, env=threads)
    assert fresh.returncode == 0, fresh.stderr[-3000:]
    loaded = json.loads(fresh.stdout.splitlines()[-1])
    model, _, _ = exported_model(exports / "net1d.pth")  # the run's weights as the torch export holds them
    torch.manual_seed(0)
    with torch.no_grad():
        outputs = model.eval()(torch.randn(2, 12, 2500)).tolist()
    extra = read_weights(exports / "net1d.pth")[1]
    assert loaded["out"] == outputs and loaded["labels"] == extra["labels"] and loaded["step"] == 4
    assert loaded["fingerprints"] == extra["provenance"]["fingerprints"].tolist()
    # The fine-tune's check of what the weights saw reads the same provenance from either file.
    for weights in ("net1d.pth", "net1d.safetensors"):
        checked = pretraining_data(str(exports / weights), read_weights(exports / weights)[1], str(ptbxl_corpus),
                                   allow_overlap=False)
        assert checked["status"] == CHECKED, checked


@pytest.mark.parametrize("name, output", [("net1d", "logits"), ("mtecg", "features")])
def test_the_onnx_graph_gives_the_torch_models_outputs_on_real_records_at_any_batch(exports, ptbxl_corpus, name,
                                                                                     output):
    import onnxruntime

    model, cfg, _ = exported_model(exports / f"{name}.safetensors")
    model.eval()
    data = ShardDataset(ptbxl_corpus, transform=Transform(cfg.data.crop_samples, False, cfg.data.normalize))
    session = onnxruntime.InferenceSession(str(exports / f"{name}.onnx"), providers=["CPUExecutionProvider"])
    assert [o.name for o in session.get_outputs()] == [output]
    for batch in (1, 5):  # the graph was traced at 2: the batch axis is free
        signal = data.__getitems__(list(range(batch)))["signal"].float()
        with torch.no_grad():
            expected = (model(signal) if output == "logits" else pooled_features(model, signal)).numpy()
        got = session.run(None, {"signal": signal.numpy()})[0]
        assert got.shape == expected.shape and np.abs(got - expected).max() <= 1e-4  # float32 kernels differ


def test_an_export_pushed_with_its_model_card_loads_back_by_hub_reference(exports, ptbxl_corpus, tmp_path,
                                                                          monkeypatch):
    """``--push`` against the local Hub-like server (tests/hub_server.py: create, preupload, commit)."""
    import yaml
    from hub_server import hub_for_pushes

    from ecgdist.data.leakage import manifest_sha256
    from ecgdist.models import count_parameters

    with hub_for_pushes(tmp_path, monkeypatch) as hub:
        out = tmp_path / "net1d-tiny.safetensors"
        done = python_m("ecgdist.export", exports / "net1d", out, "--push", "lab/net1d-tiny",
                        env={**os.environ, "OMP_NUM_THREADS": "1"})
        assert done.returncode == 0, done.stderr[-3000:]
        assert "load it as hf://lab/net1d-tiny/net1d-tiny.safetensors" in done.stdout
        assert ("POST", "/api/models/lab/net1d-tiny/commit/main") in hub.requests
        # Read back by reference in a fresh interpreter (huggingface_hub fixes its cache folder at import).
        fetched = subprocess.run([sys.executable, "-c", TENSOR_DIGESTS, "hf://lab/net1d-tiny/net1d-tiny.safetensors"],
                                 capture_output=True, text=True, timeout=300, env=dict(os.environ))
    assert fetched.returncode == 0, fetched.stderr[-3000:]
    local_state, local_extra = read_weights(out)
    assert json.loads(fetched.stdout.splitlines()[-1]) == {
        "tensors": {k: hashlib.sha256(v.numpy().tobytes()).hexdigest() for k, v in local_state.items()},
        "fingerprints_sha256": local_extra["provenance"]["fingerprints_sha256"]}
    extra = local_extra
    card = (tmp_path / "hub" / "lab" / "net1d-tiny" / "README.md").read_text()
    front = yaml.safe_load(card.split("---")[1])
    assert front["library_name"] == "ecgdist" and "ecg" in front["tags"]
    model, _, _ = exported_model(out)
    for fact in (f"**{count_parameters(model):,} parameters**", "for 4 steps", "500 Hz", f"`{manifest_sha256(ptbxl_corpus)}`",
                 f"{extra['provenance']['excluded']:,} records were left out of pre-training: every record of folds 9, 10",
                 "PTB-XL 1.0.3: CC BY 4.0", "finetune.weights=hf://lab/net1d-tiny/net1d-tiny.safetensors"):
        assert fact in card, fact
