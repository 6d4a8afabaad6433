"""MTECG's masked autoencoder: hide random segments, reconstruct them from the visible ones.

The encoder (an ``EcgViT``) sees only the visible segment tokens; a light Transformer
decoder gets them back with a shared mask token at every hidden position and predicts
each hidden segment. The default target is "fluctuated": each segment (all leads
together, as MAE normalises a whole patch) z-scored, so the model learns the waveform's
shape rather than its offset and scale; "raw" reconstructs the samples as given. The loss
covers hidden segments only. (Z-scoring each lead on its own would blow a flat lead's
50 ms of noise up to unit variance: a target nothing can predict, which kept the loss
next to the all-zero prediction's 1.0; docs/benchmarks.md has the comparison.)
"""

from __future__ import annotations

import torch
from torch import nn

from ecgdist.models.vit import Block, EcgViT


class MaskedAutoencoder(nn.Module):
    """Args:
        encoder: the ``EcgViT`` to pre-train (its head is unused).
        mask_ratio: share of segments hidden from the encoder.
        decoder_width, decoder_depth: size of the decoder (1 layer of 128 in MTECG-T).
        decoder_heads: attention heads in the decoder.
        target: "fluctuated" or "raw".
    """

    def __init__(self, encoder: EcgViT, mask_ratio: float = 0.75, decoder_width: int = 128,
                 decoder_depth: int = 1, decoder_heads: int = 4, target: str = "fluctuated") -> None:
        super().__init__()
        self.encoder, self.mask_ratio, self.target = encoder, mask_ratio, target
        n, leads = encoder.num_patches, encoder.in_leads
        self.decoder_embed = nn.Linear(encoder.num_features, decoder_width)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, decoder_width))
        self.decoder_pos_embed = nn.Parameter(torch.zeros(1, n + 1, decoder_width))
        self.decoder_blocks = nn.ModuleList(Block(decoder_width, decoder_heads) for _ in range(decoder_depth))
        self.decoder_norm = nn.LayerNorm(decoder_width, eps=1e-6)
        self.decoder_pred = nn.Linear(decoder_width, leads * encoder.patch_samples)
        nn.init.trunc_normal_(self.mask_token, std=0.02)
        nn.init.trunc_normal_(self.decoder_pos_embed, std=0.02)
        for module in (self.decoder_embed, self.decoder_pred):
            nn.init.xavier_uniform_(module.weight)
            nn.init.zeros_(module.bias)

    def patchify(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, L) -> (B, N, C, P): segment n holds samples n*P .. (n+1)*P of every lead."""
        B, C, L = x.shape
        P = self.encoder.patch_samples
        return x.reshape(B, C, L // P, P).transpose(1, 2)

    def random_masking(self, tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Keep a random (1 - ratio) share of tokens per sample.

        Returns the kept tokens (B, n_keep, D), the mask (B, N; 1 = hidden) and the
        permutation that restores the original token order.
        """
        B, N, D = tokens.shape
        n_keep = max(1, int(round(N * (1 - self.mask_ratio))))
        order = torch.rand(B, N, device=tokens.device).argsort(dim=1)
        restore = order.argsort(dim=1)
        kept = torch.gather(tokens, 1, order[:, :n_keep, None].expand(-1, -1, D))
        mask = torch.ones(B, N, device=tokens.device)
        mask[:, :n_keep] = 0
        return kept, torch.gather(mask, 1, restore), restore

    def forward_decoder(self, latent: torch.Tensor, restore: torch.Tensor) -> torch.Tensor:
        """Encoder output (B, 1 + n_keep, D) -> predicted segments (B, N, C * P)."""
        x = self.decoder_embed(latent)
        B, N = restore.shape
        filler = self.mask_token.expand(B, N + 1 - x.shape[1], -1)
        tokens = torch.cat([x[:, 1:], filler], dim=1)
        tokens = torch.gather(tokens, 1, restore[..., None].expand(-1, -1, x.shape[2]))
        x = torch.cat([x[:, :1], tokens], dim=1) + self.decoder_pos_embed
        for block in self.decoder_blocks:
            x = block(x)
        return self.decoder_pred(self.decoder_norm(x))[:, 1:]

    def reconstruction_target(self, x: torch.Tensor) -> torch.Tensor:
        segments = self.patchify(x)  # (B, N, C, P)
        if self.target == "fluctuated":
            mean = segments.mean(dim=(-2, -1), keepdim=True)
            var = segments.var(dim=(-2, -1), keepdim=True, unbiased=False)
            segments = (segments - mean) / (var + 1e-6).sqrt()
        return segments.flatten(2)

    def forward_loss(self, x: torch.Tensor, pred: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        per_segment = ((pred.float() - self.reconstruction_target(x.float())) ** 2).mean(dim=-1)  # fp32 under bf16
        return (per_segment * mask).sum() / mask.sum()

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Returns (loss, predicted segments (B, N, C*P), mask (B, N))."""
        cls, tokens = self.encoder.embed(x)
        kept, mask, restore = self.random_masking(tokens)
        pred = self.forward_decoder(self.encoder.encode(cls, kept), restore)
        return self.forward_loss(x, pred, mask), pred, mask

    def no_weight_decay(self) -> set[str]:
        return ({f"encoder.{n}" for n in self.encoder.no_weight_decay()}
                | {"mask_token", "decoder_pos_embed"} | {n for n, p in self.named_parameters() if p.ndim <= 1})
