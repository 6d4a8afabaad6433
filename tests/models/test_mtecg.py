import pytest
import torch
from real_records import ptbxl_500hz_batch

from ecgdist.config import ModelSection
from ecgdist.models import build_model, count_parameters
from ecgdist.models.mae import MaskedAutoencoder
from ecgdist.models.vit import EcgViT


def test_tiny_encoder_and_autoencoder_parameter_counts():
    encoder = EcgViT()
    assert count_parameters(encoder) == 5_435_328  # published: ~5.44 M
    assert count_parameters(MaskedAutoencoder(encoder)) == 5_723_116  # published: ~5.7 M


def test_a_token_is_one_segment_across_all_leads():
    encoder = EcgViT()
    assert encoder.num_patches == 200
    assert encoder.forward_features(torch.randn(2, 12, 5000)).shape == (2, 201, 192)
    # Changing one segment of one lead changes exactly that token's embedding.
    x = torch.randn(1, 12, 5000)
    y = x.clone()
    y[0, 7, 50:75] += 1.0  # segment 2 of lead V2
    changed = (encoder.embed(x)[1] - encoder.embed(y)[1]).abs().sum(-1)[0] > 0
    assert changed.nonzero().flatten().tolist() == [2]


@pytest.mark.parametrize("ratio", [0.05, 0.5, 0.75])
def test_masking_hides_the_requested_share(ratio):
    mae = MaskedAutoencoder(EcgViT(depth=1), mask_ratio=ratio)
    kept, mask, restore = mae.random_masking(torch.randn(3, 200, 192))
    assert (mask.sum(1) == round(200 * ratio)).all()
    assert kept.shape == (3, 200 - round(200 * ratio), 192)


def test_loss_ignores_visible_segments():
    torch.manual_seed(0)
    mae = MaskedAutoencoder(EcgViT(depth=1), mask_ratio=0.5)
    x = torch.randn(2, 12, 5000)
    loss, pred, mask = mae(x)
    target = mae.reconstruction_target(x)
    spoiled = pred.detach().clone()
    spoiled[mask == 0] = target[mask == 0] + 100.0  # ruin only the visible segments
    assert mae.forward_loss(x, spoiled, mask).item() == pytest.approx(loss.item(), rel=1e-5)
    spoiled[mask == 1] += 1.0  # ruin a hidden segment: the loss moves
    assert mae.forward_loss(x, spoiled, mask).item() > loss.item()


def test_fluctuated_target_ignores_segment_offset_and_scale():
    mae = MaskedAutoencoder(EcgViT(depth=1))
    x = torch.randn(1, 12, 5000)
    assert torch.allclose(mae.reconstruction_target(x), mae.reconstruction_target(3 * x + 2), atol=1e-4)
    raw = MaskedAutoencoder(EcgViT(depth=1), target="raw")
    assert not torch.allclose(raw.reconstruction_target(x), raw.reconstruction_target(3 * x + 2))


def test_fluctuated_target_keeps_a_flat_lead_flat():
    mae = MaskedAutoencoder(EcgViT(depth=1))
    x = torch.zeros(1, 12, 5000)
    x[:, 0] = torch.sin(torch.arange(5000) / 20.0)  # one lead with a waveform
    x[:, 1] = 1e-3 * torch.randn(5000)  # a flat lead: nothing but a little noise
    target = mae.reconstruction_target(x).reshape(1, 200, 12, 25)
    within_segment = target.std(dim=-1)  # (1, segments, leads): each lead's spread in each segment
    assert within_segment[..., 0].mean() > 0.5
    assert within_segment[..., 1].max() < 0.05  # the noise is not blown up to unit variance


def test_classifier_pools_and_every_parameter_gets_a_gradient():
    for pool in ("cls", "mean"):
        model = build_model(ModelSection(name="mtecg_cls", pool=pool, drop_path=0.1), num_classes=5)
        out = model(torch.randn(2, 12, 5000))
        assert out.shape == (2, 5) and torch.isfinite(out).all()
        out.sum().backward()
        assert all(p.grad is not None for p in model.parameters())


def test_layer_ids_cover_embedding_blocks_and_head():
    model = EcgViT(num_classes=3)
    ids = {n: model.layer_id(n) for n, _ in model.named_parameters()}
    assert ids["embed.pos_embed"] == 0 and ids["blocks.0.attn.qkv.weight"] == 1
    assert ids["blocks.11.mlp.fc2.bias"] == 12 and ids["head.weight"] == 13 == model.num_layers - 1


def test_autoencoder_overfits_a_real_batch(shared_data):
    torch.manual_seed(0)
    x = ptbxl_500hz_batch(shared_data, 4)
    mae = MaskedAutoencoder(EcgViT(width=64, depth=2, heads=2), mask_ratio=0.5, decoder_width=64)
    opt = torch.optim.AdamW(mae.parameters(), lr=2e-3)
    losses = []
    for _ in range(60):
        torch.manual_seed(1)  # the same mask every step: a pure overfitting check
        loss, _, _ = mae(x)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]
