"""The standard 12-lead order and the names sources use for each lead.

Every corpus is stored in this order (the order of PTB-XL and ECGFounder). Lead names in
source files vary in case and spelling (CODE-15 writes DI/DII/DIII, PhysioNet 2021 aVR,
PTB Diagnostic avr); they are matched here, in one place.
"""

from __future__ import annotations

STANDARD_LEADS: tuple[str, ...] = ("I", "II", "III", "aVR", "aVL", "aVF",
                                   "V1", "V2", "V3", "V4", "V5", "V6")

_ALIASES = {"di": "I", "dii": "II", "diii": "III", "lead i": "I", "lead ii": "II",
            "lead iii": "III", "d1": "I", "d2": "II", "d3": "III"}
_CANONICAL = {name.lower(): name for name in STANDARD_LEADS}


def canonical_lead(name: str) -> str | None:
    """The standard name of a source lead name, or None when it is not one of the 12."""
    key = name.strip().lower().replace("-", "").replace("_", " ")
    return _CANONICAL.get(key) or _ALIASES.get(key)


def lead_indices(names: list[str]) -> tuple[list[int], list[str]]:
    """Column of each standard lead in ``names``, and the standard leads that are missing."""
    found: dict[str, int] = {}
    for column, name in enumerate(names):
        lead = canonical_lead(name)
        if lead is not None and lead not in found:
            found[lead] = column
    missing = [lead for lead in STANDARD_LEADS if lead not in found]
    return [found[lead] for lead in STANDARD_LEADS if lead in found], missing
