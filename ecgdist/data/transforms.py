"""Batch transforms applied at load time (the corpus stores raw mV): crop, leads, normalise, augment.

They work on whole (B, C, L) batches, so one call serves a batch. The float16 -> float32
conversion goes through torch (about three times faster than numpy's) and normalisation
works in place: on a CPU these two steps, not the disk, bound the loader.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ecgdist.leads import STANDARD_LEADS


@dataclass(frozen=True)
class Transform:
    """Args:
        crop_samples: output length; records are cropped (or zero-padded) to it.
        random_crop: crop at a random offset (training) instead of 0 (evaluation).
        normalize: "ecgfounder" (one z-score over the whole C x L array, +1e-8),
            "per_lead" (z-score per lead) or "none".
        leads: which of the stored leads to keep, by name.
        noise_std, scale_jitter: augmentations, applied after normalisation.
    """

    crop_samples: int = 5000
    random_crop: bool = False
    normalize: str = "ecgfounder"
    leads: tuple[str, ...] = STANDARD_LEADS
    noise_std: float = 0.0
    scale_jitter: float = 0.0

    @property
    def lead_index(self) -> list[int]:
        return [STANDARD_LEADS.index(lead) for lead in self.leads]

    def __call__(self, x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """(B, C, L) in any float dtype -> a new float32 array."""
        x = crop(x, self.crop_samples, self.random_crop, rng)
        if len(self.leads) != len(STANDARD_LEADS):
            x = x[:, self.lead_index]
        x = torch.from_numpy(np.ascontiguousarray(x)).to(torch.float32, copy=True).numpy()
        normalize_(x, self.normalize)
        if self.scale_jitter:
            x *= rng.uniform(1 - self.scale_jitter, 1 + self.scale_jitter, size=(len(x), 1, 1)).astype(np.float32)
        if self.noise_std:
            x += rng.normal(0, self.noise_std, size=x.shape).astype(np.float32)
        return x


def crop(x: np.ndarray, n: int, random: bool, rng: np.random.Generator) -> np.ndarray:
    length = x.shape[-1]
    if length < n:
        return np.pad(x, ((0, 0), (0, 0), (0, n - length)))
    if length == n:
        return x
    if not random:
        return x[..., :n]
    starts = rng.integers(0, length - n + 1, size=len(x))
    return np.stack([record[:, s:s + n] for record, s in zip(x, starts)])


def normalize_(x: np.ndarray, mode: str) -> None:
    """Z-score float32 ``x`` in place: over each record's whole C x L array, or per lead."""
    if mode == "none":
        return
    axes = (1, 2) if mode == "ecgfounder" else (2,)
    x -= x.mean(axis=axes, keepdims=True)
    count = x.shape[1] * x.shape[2] if mode == "ecgfounder" else x.shape[2]
    square_sum = np.einsum("bcl,bcl->b", x, x) if mode == "ecgfounder" else np.einsum("bcl,bcl->bc", x, x)
    std = np.sqrt(square_sum / count)
    x /= (std[:, None, None] if mode == "ecgfounder" else std[:, :, None]) + 1e-8
