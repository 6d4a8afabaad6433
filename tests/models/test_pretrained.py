import json
import subprocess
import sys

import pytest
import torch

from ecgdist.models.mae import MaskedAutoencoder
from ecgdist.models.net1d import Net1D
from ecgdist.models.pretrained import CheckpointMismatchError, UnreadableWeights, load_pretrained, save_weights
from ecgdist.models.vit import EcgViT


def small_net(**kw):
    return Net1D(widths=(16, 32), blocks=(1, 1), **kw)


def test_released_format_loads_strictly_and_reproduces_logits(tmp_path):
    torch.manual_seed(0)
    source = Net1D().eval()
    # The released file: a dict with 'state_dict' (and training leftovers), saved by DataParallel.
    torch.save({"state_dict": {f"module.{k}": v for k, v in source.state_dict().items()}, "epoch": 3},
               tmp_path / "ecgfounder.pth")
    target = Net1D().eval()
    assert load_pretrained(target, tmp_path / "ecgfounder.pth") == []
    x = torch.randn(2, 12, 5000)
    with torch.no_grad():
        assert torch.equal(source(x), target(x))


def test_other_class_count_gets_a_fresh_head(tmp_path):
    source = small_net(num_classes=150)
    save_weights(source, tmp_path / "w.pth")
    target = small_net(num_classes=5)
    assert load_pretrained(target, tmp_path / "w.pth") == ["dense.bias", "dense.weight"]
    assert torch.equal(target.first_conv.conv.weight, source.first_conv.conv.weight)


def test_mismatched_checkpoint_lists_every_difference(tmp_path):
    state = small_net(num_classes=3).state_dict()
    state.pop("stage_list.0.block_list.0.se_fc1.weight")
    state["extra.weight"] = torch.zeros(1)
    state["first_conv.conv.weight"] = torch.zeros(64, 1, 16)
    torch.save({"state_dict": state}, tmp_path / "bad.pth")
    with pytest.raises(CheckpointMismatchError) as info:
        load_pretrained(small_net(num_classes=3), tmp_path / "bad.pth")
    text = str(info.value)
    assert "missing (1): stage_list.0.block_list.0.se_fc1.weight" in text
    assert "unexpected (1): extra.weight" in text
    assert "first_conv.conv.weight: file (64, 1, 16) vs model (64, 12, 16)" in text


def test_pickled_code_is_refused(tmp_path):
    import os
    torch.save({"state_dict": small_net(num_classes=3).state_dict(), "hook": os.system}, tmp_path / "evil.pth")
    with pytest.raises(UnreadableWeights, match=r"pickled object of type \w+\.system") as error:
        load_pretrained(small_net(num_classes=3), tmp_path / "evil.pth")
    assert "weights_only=False" not in str(error.value)  # never the advice to run the file's code


def test_autoencoder_export_loads_into_classifier_encoder(tmp_path):
    mae = MaskedAutoencoder(EcgViT(width=32, depth=2, heads=2, num_samples=500), decoder_width=16)
    save_weights(mae, tmp_path / "mae.pth")
    classifier = EcgViT(width=32, depth=2, heads=2, num_samples=500, num_classes=4)
    assert load_pretrained(classifier, tmp_path / "mae.pth") == ["head.bias", "head.weight"]
    assert torch.equal(classifier.embed.pos_embed, mae.encoder.embed.pos_embed)


def test_summary_cli_ends_with_json():
    out = subprocess.run([sys.executable, "-m", "ecgdist.models", "mtecg_cls", "size=tiny", "num_classes=5"],
                         capture_output=True, text=True, check=True).stdout
    summary = json.loads(out.strip().splitlines()[-1])
    assert summary["params"] == 5_435_328 + 192 * 5 + 5
    assert summary["output"] == [1, 5] and len(summary["stages"]) == 12
