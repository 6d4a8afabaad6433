from pathlib import Path

import pytest
import torch
from real_records import ptbxl_500hz_batch

from ecgdist.models.net1d import Net1D, same_padding

REFERENCE = Path(__file__).resolve().parents[3] / "shared" / "reference" / "ecgfounder_12lead_state_dict.tsv"


def reference_shapes() -> dict[str, str]:
    if not REFERENCE.exists():
        pytest.skip("reference state-dict listing missing")
    rows = [line.split("\t") for line in REFERENCE.read_text().splitlines()[1:] if line]
    return dict(rows)


def shape_text(t: torch.Tensor) -> str:
    return "scalar" if t.ndim == 0 else "x".join(map(str, t.shape))


def test_released_configuration_has_exact_parameter_count():
    model = Net1D()
    assert sum(p.numel() for p in model.parameters()) == 30_819_014
    used = sum(p.numel() for n, p in model.named_parameters() if "bn" not in n)
    assert used == 30_752_646  # without the BatchNorm affine weights the released model never applies


def test_state_dict_matches_released_checkpoint_keys_and_shapes():
    ours = {k: shape_text(v) for k, v in Net1D().state_dict().items()}
    assert len(ours) == 509
    assert ours == reference_shapes()


def test_one_lead_variant_differs_only_in_the_stem():
    ours = {k: shape_text(v) for k, v in Net1D(in_leads=1).state_dict().items()}
    ref = reference_shapes()
    assert {k for k in ref if ours[k] != ref[k]} == {"first_conv.conv.weight"}
    assert ours["first_conv.conv.weight"] == "64x1x16"


def test_5000_samples_become_20_after_the_stages():
    model = Net1D(num_classes=5).eval()
    with torch.no_grad():
        features = model.forward_features(torch.randn(2, 12, 5000))
    assert features.shape == (2, 1024, 20)


def test_same_padding_is_tensorflow_style():
    assert same_padding(5000, 16, 2) == (7, 7)  # (2500 - 1) * 2 + 16 - 5000 = 14
    assert same_padding(313, 16, 2) == (7, 8)  # odd total: the extra sample goes right
    assert same_padding(10, 1, 1) == (0, 0)


def test_every_parameter_gets_a_gradient_except_unused_batchnorm():
    model = Net1D(widths=(16, 32), blocks=(2, 1), num_classes=3)
    model(torch.randn(2, 12, 500)).sum().backward()
    without_grad = {n for n, p in model.named_parameters() if p.grad is None}
    assert without_grad and all(".bn" in n or n.startswith("first_bn") for n in without_grad)


def test_stochastic_depth_rises_with_depth_and_is_off_in_eval():
    model = Net1D(widths=(16, 32), blocks=(2, 2), num_classes=3, drop_path=0.3)
    rates = [b.drop_path.rate if hasattr(b.drop_path, "rate") else 0.0
             for s in model.stage_list for b in s.block_list]
    assert rates == pytest.approx([0.0, 0.1, 0.2, 0.3])
    x = torch.randn(4, 12, 500)
    model.eval()
    assert torch.equal(model(x), model(x))
    model.train()
    torch.manual_seed(0)
    a = model(x)
    torch.manual_seed(1)
    assert not torch.allclose(a, model(x))


def test_overfits_a_real_batch(shared_data):
    torch.manual_seed(0)
    x = ptbxl_500hz_batch(shared_data, 8)
    y = torch.tensor([[1, 0], [0, 1], [1, 1], [0, 0], [1, 0], [0, 1], [1, 0], [0, 1]], dtype=torch.float32)
    model = Net1D(widths=(16, 32, 32), blocks=(1, 1, 1), num_classes=2)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(40):
        loss = torch.nn.functional.binary_cross_entropy_with_logits(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.25 * losses[0]
