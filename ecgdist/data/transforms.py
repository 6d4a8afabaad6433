"""Batch transforms applied at load time (the corpus stores raw mV): crop, leads, normalise, augment.

They work on whole (B, C, L) batches. A transform has two halves: ``select`` (crop and
lead choice, in the storage dtype, plus the batch's random draws) runs in the loader, and
``finish`` (float32, normalisation, augmentation: torch ops) runs wherever the batch is.
With ``ShardDataset(device_transform=True)`` the loader hands over float16 batches and
the training process finishes them on its device: half the bytes through the worker
hand-off and the host-to-device copy, and none of the arithmetic on the CPU. Without it
the loader finishes them itself (``__call__``), with the same code.
Cropping stays in the loader: it only drops samples, so doing it first moves fewer bytes.
Noise is drawn from a torch generator seeded by the batch's own random draws, so a batch
is augmented the same way wherever it is finished.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ecgdist.config import ConfigError
from ecgdist.leads import STANDARD_LEADS


def check_crop(crop_samples: int, window_samples: int, corpus) -> None:
    """A crop longer than the corpus's windows would make the model read mostly zero padding."""
    if crop_samples > window_samples:
        raise ConfigError(f"config key 'data.crop_samples' is {crop_samples}, longer than the {window_samples}-sample "
                          f"windows of corpus {corpus}: {1 - window_samples / crop_samples:.0%} of every input would "
                          "be zero padding")


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

    def select(self, x: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, dict]:
        """The loader's half: (B, C, L) cropped, leads chosen, still in the storage dtype, and the
        augmentation draws (``scale`` (B, 1, 1) float32 array, ``noise_seed`` int) that ``finish`` needs."""
        x = crop(x, self.crop_samples, self.random_crop, rng)
        if len(self.leads) != len(STANDARD_LEADS):
            x = x[:, self.lead_index]
        draws = {}
        if self.scale_jitter:
            draws["scale"] = rng.uniform(1 - self.scale_jitter, 1 + self.scale_jitter, (len(x), 1, 1)).astype(np.float32)
        if self.noise_std:
            draws["noise_seed"] = int(rng.integers(2**62))
        return np.ascontiguousarray(x), draws

    def finish(self, x: torch.Tensor, scale: torch.Tensor | None = None, noise_seed: int | None = None) -> torch.Tensor:
        """The device's half: a new float32 tensor, normalised and augmented, on ``x``'s device."""
        x = x.to(torch.float32, copy=True)
        normalize_(x, self.normalize)
        if scale is not None:
            x *= scale.to(x.device)
        if noise_seed is not None:
            generator = torch.Generator(device=x.device).manual_seed(noise_seed)
            x += torch.randn(x.shape, generator=generator, device=x.device) * self.noise_std
        return x

    def __call__(self, x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Both halves on the CPU: (B, C, L) in any float dtype -> a new float32 array."""
        selected, draws = self.select(x, rng)
        scale = torch.from_numpy(draws["scale"]) if "scale" in draws else None
        return self.finish(torch.from_numpy(selected), scale, draws.get("noise_seed")).numpy()


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


def normalize_(x: torch.Tensor, mode: str) -> None:
    """Z-score float32 ``x`` in place: over each record's whole C x L array, or per lead."""
    if mode == "none":
        return
    dims = (1, 2) if mode == "ecgfounder" else (2,)
    x -= x.mean(dim=dims, keepdim=True)
    count = x.shape[1] * x.shape[2] if mode == "ecgfounder" else x.shape[2]
    x /= torch.linalg.vector_norm(x, dim=dims, keepdim=True).div_(count ** 0.5).add_(1e-8)  # no squared copy
