"""What is known of the released ECGFounder weights (PKUDigitalHealth/ECGFounder) that their file
does not say: the input recipe they were trained on and the names of their 150 outputs.

The names, one a line in output order, are the released code's ``tasks.txt`` (its PTB-XL
evaluation reads the same file to name the outputs), shipped beside this module.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import torch

from ecgdist.models.net1d import ECGFOUNDER_CLASSES

# 500 Hz, 10 s windows through its filter, z-scored over the whole array; its README asks users
# to preprocess exactly so.
RELEASED_RECIPE = {"rate_hz": 500, "seconds": 10.0, "filter": "ecgfounder", "normalize": "ecgfounder"}
HUB_REPO = "hf://PKUDigitalHealth/ECGFounder/"
LABELS_FILE = Path(__file__).with_name("ecgfounder_tasks.txt")


@cache
def label_names() -> tuple[str, ...]:
    names = tuple(line.strip() for line in LABELS_FILE.read_text().splitlines() if line.strip())
    if len(names) != ECGFOUNDER_CLASSES:
        raise RuntimeError(f"{LABELS_FILE} names {len(names)} outputs, not the released model's {ECGFOUNDER_CLASSES}")
    return names


def is_released_file(state: dict[str, torch.Tensor], extra: dict) -> bool:
    """A file in the released layout: the full Net1D with its 150-output head, and none of the
    records ecgdist writes (classes, recipe, provenance)."""
    head = state.get("dense.weight")
    return head is not None and tuple(head.shape) == (ECGFOUNDER_CLASSES, 1024) \
        and not {"classes", "recipe", "provenance"} & set(extra)
