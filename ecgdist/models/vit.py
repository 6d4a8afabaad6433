"""MTECG's Vision Transformer for ECG: a token is one time segment across all leads.

A (B, C, L) signal is cut into N = L / patch segments of C x patch samples; each becomes a
token through one linear map (a strided convolution). A class token and learnable
position embeddings are added. ``EcgViT`` is the encoder and, with its head, the
fine-tuning classifier (class token or mean pool); the masked autoencoder reuses it.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ecgdist.models.drop_path import linear_rates, make_drop_path


@dataclass(frozen=True)
class VitSize:
    width: int
    depth: int
    heads: int


# MTECG-T is the published tiny encoder; small and base follow the usual ViT ladder.
VIT_SIZES = {"tiny": VitSize(192, 12, 3), "small": VitSize(384, 12, 6), "base": VitSize(768, 12, 12)}


class Attention(nn.Module):
    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, dim * 3, bias=True)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, N, D = x.shape
        q, k, v = self.qkv(x).reshape(B, N, 3, self.heads, D // self.heads).permute(2, 0, 3, 1, 4)
        out = F.scaled_dot_product_attention(q, k, v)
        return self.proj(out.transpose(1, 2).reshape(B, N, D))


class Mlp(nn.Module):
    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(F.gelu(self.fc1(x)))


class Block(nn.Module):
    """Pre-norm Transformer block.

    Args:
        dim: token width.
        heads: attention heads.
        mlp_ratio: hidden width of the MLP as a multiple of ``dim``.
        drop_path: stochastic depth rate on both residual branches.
    """

    def __init__(self, dim: int, heads: int, mlp_ratio: float = 4.0, drop_path: float = 0.0) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = Attention(dim, heads)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))
        self.drop_path = make_drop_path(drop_path)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.drop_path(self.attn(self.norm1(x)))
        return x + self.drop_path(self.mlp(self.norm2(x)))


class TokenEmbedding(nn.Module):
    """Segments to tokens, plus the class token, each with its learnable position embedding.

    Kept in one module so that everything the encoder owns is used inside some module's
    call: ZeRO-3 gathers partitioned parameters only there.
    """

    def __init__(self, in_leads: int, num_patches: int, patch_samples: int, width: int) -> None:
        super().__init__()
        self.proj = nn.Conv1d(in_leads, width, patch_samples, stride=patch_samples)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, width))
        self.pos_embed = nn.Parameter(torch.zeros(1, num_patches + 1, width))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, C, L) -> class token (B, 1, D) and segment tokens (B, N, D)."""
        tokens = self.proj(x).transpose(1, 2) + self.pos_embed[:, 1:]
        cls = (self.cls_token + self.pos_embed[:, :1]).expand(x.shape[0], -1, -1)
        return cls, tokens


class EcgViT(nn.Module):
    """Segment-token ViT encoder with a classification head.

    Args:
        in_leads: leads C of the input.
        num_samples: input length L; L / patch_samples tokens.
        patch_samples: samples per segment (25 at 500 Hz = 50 ms).
        width, depth, heads: encoder size (see ``VIT_SIZES``).
        num_classes: outputs of the head; 0 gives no head (pre-training).
        pool: "cls" (class token) or "mean" (mean of segment tokens).
        drop_path: stochastic depth of the last block; earlier blocks rise linearly to it.
    """

    def __init__(self, in_leads: int = 12, num_samples: int = 5000, patch_samples: int = 25,
                 width: int = 192, depth: int = 12, heads: int = 3, mlp_ratio: float = 4.0,
                 num_classes: int = 0, pool: str = "cls", drop_path: float = 0.0) -> None:
        super().__init__()
        if num_samples % patch_samples:
            raise ValueError(f"input length {num_samples} is not a multiple of patch_samples {patch_samples}")
        self.patch_samples, self.pool, self.num_features = patch_samples, pool, width
        self.num_patches = num_samples // patch_samples
        self.in_leads = in_leads
        self.embed = TokenEmbedding(in_leads, self.num_patches, patch_samples, width)
        self.blocks = nn.ModuleList(Block(width, heads, mlp_ratio, rate)
                                    for rate in linear_rates(drop_path, depth))
        self.norm = nn.LayerNorm(width, eps=1e-6)
        self.head = nn.Linear(width, num_classes) if num_classes else nn.Identity()
        self.init_weights()

    def init_weights(self) -> None:
        nn.init.trunc_normal_(self.embed.pos_embed, std=0.02)
        nn.init.trunc_normal_(self.embed.cls_token, std=0.02)
        nn.init.xavier_uniform_(self.embed.proj.weight.view(self.embed.proj.weight.shape[0], -1))
        for module in self.modules():
            if isinstance(module, nn.Linear):
                nn.init.xavier_uniform_(module.weight)
                nn.init.zeros_(module.bias)
            elif isinstance(module, nn.LayerNorm):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)

    def encode(self, cls: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        """Run the blocks over the class token and (some of) the segment tokens: (B, 1 + n, D)."""
        x = torch.cat([cls, tokens], dim=1)
        for block in self.blocks:
            x = block(x)
        return self.norm(x)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.encode(*self.embed(x))

    def forward_head(self, features: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        """The model's own pooling (class token, or the mean of the segment tokens), then the head;
        ``pre_logits``: the pooled (B, D) features, the one feature interface embeddings and probes use."""
        pooled = features[:, 0] if self.pool == "cls" else features[:, 1:].mean(dim=1)
        return pooled if pre_logits else self.head(pooled)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))

    def get_classifier(self) -> nn.Module:
        """The head a fine-tune starts fresh and a linear probe trains alone."""
        return self.head

    def no_weight_decay(self) -> set[str]:
        return {"embed.pos_embed", "embed.cls_token"} | {n for n, p in self.named_parameters() if p.ndim <= 1}

    @property
    def num_layers(self) -> int:
        """Layer ids for layer-wise LR decay: embeddings 0, blocks 1..depth, norm/head depth + 1."""
        return len(self.blocks) + 2

    def layer_id(self, name: str) -> int:
        if name.startswith("blocks."):
            return int(name.split(".")[1]) + 1
        if name.startswith(("norm.", "head.")):
            return self.num_layers - 1
        return 0
