"""Every config key is read by the code of its stage, so a dead section cannot come back.

Reads are found in the source: ``<...>.section.key`` chains, and ``alias.key`` where the
alias was assigned from ``<...>.section`` or annotated with the section's class (a
parameter or a dataclass field). Validation in ecgdist/config/ does not count.
"""

import ast
from dataclasses import dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import get_type_hints

import pytest
from conftest import REPO

from ecgdist.config import FinetuneConfig, PretrainConfig, RunSection, load_config

SHARED_READERS = ["ecgdist/data", "ecgdist/models", "ecgdist/dist.py", "ecgdist/loggers.py", "ecgdist/wandb_log.py"]
STAGES = {  # config class, where the keys must be read, the shipped YAML files
    "pretrain": (PretrainConfig, ["ecgdist/pretrain", *SHARED_READERS], "configs/pretrain"),
    "finetune": (FinetuneConfig, ["ecgdist/finetune", *SHARED_READERS], "configs/finetune"),
}


def sources(places: list[str]) -> list[Path]:
    paths = []
    for place in places:
        path = REPO / place
        paths += sorted(path.rglob("*.py")) if path.is_dir() else [path]
    return paths


def section_classes(schema: type) -> dict[str, type]:
    hints = get_type_hints(schema)  # the annotations are strings (from __future__ import annotations)
    return {f.name: hints[f.name] for f in fields(schema)}


def class_names(cls: type) -> set[str]:
    return {c.__name__ for c in cls.__mro__ if c is not object}


def reads(code: str, section: str, cls: type) -> set[str]:
    """Attribute names read from ``section`` (a field of the run config, of class ``cls``) in ``code``."""
    tree = ast.parse(code)
    aliases = {section}
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign):  # d = cfg.data, or d, bs = cfg.data, ...
            for target in node.targets:
                pairs = zip(target.elts, node.value.elts) if isinstance(target, ast.Tuple) and isinstance(
                    node.value, ast.Tuple) else [(target, node.value)]
                aliases |= {t.id for t, v in pairs if isinstance(t, ast.Name) and isinstance(v, ast.Attribute)
                            and v.attr == section}
        annotated = (node.annotation if isinstance(node, (ast.arg, ast.AnnAssign)) else None)
        if annotated is not None and ast.unparse(annotated).strip("'\"") in class_names(cls):
            target = node.arg if isinstance(node, ast.arg) else getattr(node.target, "id", None)
            aliases.add(target)
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Load):
            base = node.value
            name = base.id if isinstance(base, ast.Name) else base.attr if isinstance(base, ast.Attribute) else None
            if name in aliases:
                found.add(node.attr)
    return found


def unread_keys(schema: type, places: list[str]) -> list[str]:
    code = [path.read_text() for path in sources(places)]
    missing = []
    for section, cls in section_classes(schema).items():
        if not is_dataclass(cls):  # a top-level value such as ``deepspeed``
            if not any(section in reads(c, "cfg", schema) for c in code):
                missing.append(section)
            continue
        read = set().union(*(reads(c, section, cls) for c in code))
        missing += [f"{section}.{f.name}" for f in fields(cls) if f.name not in read]
    return missing


@pytest.mark.parametrize("stage", STAGES)
def test_every_key_of_the_schema_is_read_by_its_stage(stage):
    schema, places, _ = STAGES[stage]
    assert unread_keys(schema, places) == []


@pytest.mark.parametrize("stage", STAGES)
def test_every_shipped_config_loads_and_sets_only_schema_keys(stage):
    schema, _, folder = STAGES[stage]
    shipped = sorted((REPO / folder).glob("*.yaml"))
    assert shipped
    for path in shipped:
        load_config(schema, path)  # an unknown key raises, naming it


@dataclass
class Dead:
    forgotten: int = 0


@dataclass
class WithDeadSection:
    run: RunSection = field(default_factory=RunSection)
    dead: Dead = field(default_factory=Dead)


def test_a_key_nobody_reads_is_reported():
    assert unread_keys(WithDeadSection, ["ecgdist/pretrain"]) == ["dead.forgotten"]
    # And the reader sees the three forms of a read.
    code = "def f(cfg, s: 'Dead'):\n    d = cfg.dead\n    e, n = cfg.dead, 1\n    return cfg.dead.a, d.b, s.c, e.f, other.d\n"
    assert reads(code, "dead", Dead) == {"a", "b", "c", "f"}
