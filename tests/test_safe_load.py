"""No file ecgdist reads runs pickled code: not by default, not with any ``trusted_types`` a user gives."""

import builtins
import subprocess
import timeit

import pytest
import torch

from ecgdist import submit
from ecgdist.config import ConfigError, FinetuneConfig, load_config
from ecgdist.finetune import predict
from ecgdist.models.pretrained import UnreadableWeights, read_weights
from ecgdist.safe_load import PLAIN_DATA_TYPES, UnreadableFile, load

TINY = "configs/finetune/ptbxl_tiny.yaml"


class Payload:
    """Pickles as a call of ``function(*args)``: what an attacker's weights file holds."""

    def __init__(self, function, *args):
        self.function, self.args = function, args

    def __reduce__(self):
        return self.function, self.args


def payloads(marker):
    """Each runs code that creates ``marker`` when unpickled in full."""
    return {"timeit.timeit": Payload(timeit.timeit, f"open({str(marker)!r}, 'w').close()", "pass", None, 1),
            "builtins.exec": Payload(builtins.exec, f"open({str(marker)!r}, 'w').close()"),
            "subprocess.Popen": Payload(subprocess.Popen, ["touch", str(marker)])}


@pytest.mark.parametrize("name", ["timeit.timeit", "builtins.exec", "subprocess.Popen"])
def test_no_payload_runs_even_when_the_user_trusts_its_name(name, tmp_path, capsys):
    marker = tmp_path / "payload-ran"
    path = tmp_path / "weights.pth"
    torch.save({"state_dict": {"w": torch.zeros(2)}, "args": payloads(marker)[name]}, path)
    with pytest.raises(UnreadableWeights) as refused:
        read_weights(path)
    assert name in str(refused.value) and "trusted_types" not in str(refused.value)  # never advised
    with pytest.raises(UnreadableWeights, match=f"refused: {name}"):
        read_weights(path, [name])
    with pytest.raises(ConfigError, match=f"'finetune.trusted_types' has \\['{name}'\\]"):
        load_config(FinetuneConfig, TINY, [f"finetune.weights={path}", f"finetune.trusted_types=[{name}]"])
    # The path that ran a payload before: a dry run that trusts it stops at the config, naming the key.
    assert submit.main(["finetune", TINY, f"finetune.weights={path}", f"finetune.trusted_types=[{name}]",
                        "--dry-run"]) != 0
    assert "finetune.trusted_types" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        predict.main([str(path), "record", "--trust-type", name])
    assert not marker.exists()


def test_a_plain_data_class_loads_once_named_and_the_advice_names_the_switch(tmp_path):
    import argparse
    path = tmp_path / "with_args.pth"
    torch.save({"state_dict": {"w": torch.ones(1)}, "args": argparse.Namespace(lr=0.1)}, path)
    with pytest.raises(UnreadableFile, match=r"finetune\.trusted_types=\[argparse\.Namespace\]"):
        load(path)
    assert load(path, ["argparse.Namespace"])["args"].lr == 0.1
    assert "argparse.Namespace" in PLAIN_DATA_TYPES and all(isinstance(c, type) for c in PLAIN_DATA_TYPES.values())
