"""Weights of the MTECG ViT in its published layout, and exports made at another crop length."""

import logging

import torch
from torch import nn

from ecgdist.models.pretrained import load_pretrained, save_weights
from ecgdist.models.vit import EcgViT


class PublishedBlock(nn.Module):
    """A DeiT/timm block as fwaiaccount/MTECG-SPEED-TR's vision_transformer.py defines it, re-stated."""

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.norm1, self.norm2 = nn.LayerNorm(dim, eps=1e-6), nn.LayerNorm(dim, eps=1e-6)
        self.attn = nn.Module()
        self.attn.qkv, self.attn.proj = nn.Linear(dim, 3 * dim), nn.Linear(dim, dim)
        self.mlp = nn.Module()
        self.mlp.fc1, self.mlp.fc2 = nn.Linear(dim, 4 * dim), nn.Linear(4 * dim, dim)

    def forward(self, x):
        B, N, C = x.shape
        q, k, v = self.attn.qkv(self.norm1(x)).reshape(B, N, 3, self.heads, C // self.heads).permute(2, 0, 3, 1, 4)
        attention = ((q @ k.transpose(-2, -1)) * (C // self.heads) ** -0.5).softmax(dim=-1)
        x = x + self.attn.proj((attention @ v).transpose(1, 2).reshape(B, N, C))
        return x + self.mlp.fc2(nn.functional.gelu(self.mlp.fc1(self.norm2(x))))


class PublishedViT(nn.Module):
    """``ti_12_25``: patch (12 leads x 25 samples) of a 1 x 12 x 5000 image, width 192, 12 blocks, 3 heads."""

    def __init__(self, num_classes: int = 5, dim: int = 192, depth: int = 12, heads: int = 3) -> None:
        super().__init__()
        self.patch_embed = nn.Module()
        self.patch_embed.proj = nn.Conv2d(1, dim, kernel_size=(12, 25), stride=(12, 25))
        self.cls_token = nn.Parameter(torch.randn(1, 1, dim) * 0.02)
        self.pos_embed = nn.Parameter(torch.randn(1, 201, dim) * 0.02)
        self.blocks = nn.ModuleList(PublishedBlock(dim, heads) for _ in range(depth))
        self.norm, self.head = nn.LayerNorm(dim, eps=1e-6), nn.Linear(dim, num_classes)

    def forward(self, x):  # (B, 1, 12, 5000)
        x = self.patch_embed.proj(x).flatten(2).transpose(1, 2)
        x = torch.cat([self.cls_token.expand(len(x), -1, -1), x], dim=1) + self.pos_embed
        for block in self.blocks:
            x = block(x)
        return self.head(self.norm(x)[:, 0])


def test_a_file_in_the_published_mtecg_layout_loads_strictly_and_reproduces_its_outputs(tmp_path):
    torch.manual_seed(0)
    published = PublishedViT().eval()
    torch.save({"model": published.state_dict(), "epoch": 99}, tmp_path / "mtecg.pth")
    ours = EcgViT(num_classes=5, pool="cls").eval()
    assert load_pretrained(ours, tmp_path / "mtecg.pth") == []  # every tensor placed, none left fresh
    x = torch.randn(2, 12, 5000)
    with torch.no_grad():
        assert torch.allclose(ours(x), published(x[:, None]), atol=1e-5)


def test_an_export_at_another_crop_length_loads_by_interpolating_its_position_embedding(tmp_path, caplog):
    short = EcgViT(width=32, depth=2, heads=2, num_samples=2500, num_classes=3)
    with torch.no_grad():  # a ramp along the 100 segments: linear interpolation must reproduce it
        short.embed.pos_embed[0, 1:] = torch.arange(100.0)[:, None]
    save_weights(short, tmp_path / "short.pth")
    long = EcgViT(width=32, depth=2, heads=2, num_samples=5000, num_classes=3)
    with caplog.at_level(logging.INFO, logger="ecgdist.models.pretrained"):
        load_pretrained(long, tmp_path / "short.pth")
    assert "interpolated from 100 to 200 segments" in caplog.text
    assert torch.equal(long.embed.pos_embed[:, :1], short.embed.pos_embed[:, :1])  # the class token's own
    # Segment j of 200 sits where segment (j + 0.5) / 2 - 0.5 of 100 sat (centres aligned, ends held).
    expected = ((torch.arange(200.0) + 0.5) / 2 - 0.5).clamp(0, 99)
    assert torch.allclose(long.embed.pos_embed[0, 1:], expected[:, None].expand(200, 32))
    assert torch.equal(long.blocks[0].attn.qkv.weight, short.blocks[0].attn.qkv.weight)
