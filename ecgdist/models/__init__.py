"""The two model families, built from a ``ModelSection``: a dict literal and an ``if``, no registry."""

from __future__ import annotations

import torch
from torch import nn

from ecgdist.config import ModelSection
from ecgdist.models.mae import MaskedAutoencoder
from ecgdist.models.net1d import Net1D
from ecgdist.models.vit import VIT_SIZES, EcgViT

CLASSIFIERS = ("net1d", "mtecg_cls")


def build_model(cfg: ModelSection, in_leads: int = 12, num_samples: int = 5000, num_classes: int = 0) -> nn.Module:
    """``num_classes`` is used when ``cfg.num_classes`` is 0 (the corpus decides)."""
    classes = cfg.num_classes or num_classes
    if cfg.name == "net1d":
        return Net1D(in_leads, classes or 1, tuple(cfg.widths), tuple(cfg.blocks), drop_path=cfg.drop_path)
    size = VIT_SIZES[cfg.size]
    vit_args = dict(in_leads=in_leads, num_samples=num_samples, patch_samples=cfg.patch_samples,
                    width=size.width, depth=size.depth, heads=size.heads, drop_path=cfg.drop_path)
    if cfg.name == "mtecg_cls":
        return EcgViT(num_classes=classes or 1, pool=cfg.pool, **vit_args)
    return MaskedAutoencoder(EcgViT(**vit_args), cfg.mask_ratio, cfg.decoder_width, cfg.decoder_depth,
                             target=cfg.target)


def head_parameter_names(model: nn.Module) -> set[str]:
    """State-dict names of the model's classifier head (none for a model without one)."""
    if not hasattr(model, "get_classifier"):
        return set()
    prefix = next(name for name, module in model.named_modules() if module is model.get_classifier())
    return {f"{prefix}.{name}" for name in model.get_classifier().state_dict()}


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def pooled_features(model: nn.Module, signal: torch.Tensor) -> torch.Tensor:
    """(B, D): the backbone's ``forward_features`` and its own pooling (Net1D's mean over time, the
    ViT's class token or mean), an autoencoder's backbone being its encoder. The one feature
    interface: embeddings and pre-training's probes read it."""
    backbone = model.encoder if isinstance(model, MaskedAutoencoder) else model
    return backbone.forward_head(backbone.forward_features(signal), pre_logits=True)
