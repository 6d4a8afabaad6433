"""PhysioNet/CinC Challenge 2021: one task per source database, over the Challenge's scored classes.

The Challenge scores 30 SNOMED-CT codes (its dx_mapping_scored.csv), four pairs of them as
one diagnosis each, so 26 classes; a pair's class is named by the first code. The source
database is read from the record name (its prefix, and for JS the number: Chapman-Shaoxing
JS00001-JS10646, Ningbo from JS10647). PTB-XL (HR) and PTB (S) are left out of the
benchmarks: they are PTB-XL's own benchmark and its predecessor; St Petersburg (I, 74 long
Holter excerpts) has too few records for a row of its own.
"""

from __future__ import annotations

import re

SCORED = {  # SNOMED-CT code: the Challenge's abbreviation
    "164889003": "AF", "164890007": "AFL", "6374002": "BBB", "426627000": "Brady", "733534002": "CLBBB",
    "713427006": "CRBBB", "270492004": "IAVB", "713426002": "IRBBB", "39732003": "LAD", "445118002": "LAnFB",
    "164909002": "LBBB", "251146004": "LQRSV", "698252002": "NSIVCB", "426783006": "NSR", "284470004": "PAC",
    "10370003": "PR", "365413008": "PRWP", "427172004": "PVC", "164947007": "LPR", "111975006": "LQT",
    "164917005": "QAb", "47665007": "RAD", "59118001": "RBBB", "427393009": "SA", "426177001": "SB",
    "427084000": "STach", "63593006": "SVPB", "164934002": "TAb", "59931005": "TInv", "17338001": "VPB",
}
SAME_DIAGNOSIS = {"59118001": "713427006", "63593006": "284470004", "17338001": "427172004", "164909002": "733534002"}
CLASSES = sorted(code for code in SCORED if code not in SAME_DIAGNOSIS)  # 26
SOURCES = ("cpsc2018", "cpsc_extra", "georgia", "chapman_shaoxing", "ningbo")
LAST_CHAPMAN_SHAOXING = 10646


def scored_class(code: str) -> tuple[str, ...]:
    """The scored class a stored SNOMED-CT code counts for (none for an unscored code)."""
    code = SAME_DIAGNOSIS.get(code, code)
    return (code,) if code in SCORED else ()


def source_of(record_id: str) -> str:
    """The source database of a corpus record id (``physionet2021:<path>/<name>#<window>``)."""
    name = record_id.split(":", 1)[-1].split("#")[0].rsplit("/", 1)[-1]
    match = re.fullmatch(r"([A-Z]+)(\d+)", name)
    prefix, number = (match.group(1), int(match.group(2))) if match else ("", 0)
    if prefix == "JS":
        return "chapman_shaoxing" if number <= LAST_CHAPMAN_SHAOXING else "ningbo"
    return {"A": "cpsc2018", "Q": "cpsc_extra", "E": "georgia", "I": "st_petersburg", "S": "ptb",
            "HR": "ptbxl"}.get(prefix, "unknown")
