"""Before a benchmark run on another machine (a lent GPU's image): does this Python hold what
setup.cfg requires? Checked in a second by bench/gpu.sh, not found out steps later.

    python bench/preflight.py      -> exit 1 and one line per unmet requirement, with the fix
"""

from __future__ import annotations

import configparser
import sys
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement

REPO = Path(__file__).resolve().parents[1]


def requirements() -> list[str]:
    """setup.cfg's ``install_requires``."""
    setup = configparser.ConfigParser()
    setup.read(REPO / "setup.cfg")
    return [line.strip() for line in setup["options"]["install_requires"].splitlines()
            if line.strip() and not line.strip().startswith("#")]


def unmet(required: list[str]) -> list[str]:
    """The requirements this Python lacks or holds outside their range, each with what it found."""
    found = []
    for requirement in map(Requirement, required):
        try:
            version = metadata.version(requirement.name)
        except metadata.PackageNotFoundError:
            found.append(f"{requirement} (not installed)")
            continue
        if not requirement.specifier.contains(version, prereleases=True):
            found.append(f"{requirement} (found {version})")
    return found


if __name__ == "__main__":
    missing = unmet(requirements())
    for line in missing:
        print(f"[preflight] unmet: {line}", file=sys.stderr)
    if missing:
        print(f"[preflight] {sys.executable} lacks {len(missing)} requirement(s) of setup.cfg: add them to "
              "bench/gpu-wheels.txt, run bash bench/gpu-prepare.sh here and carry .gpu", file=sys.stderr)
    sys.exit(1 if missing else 0)
