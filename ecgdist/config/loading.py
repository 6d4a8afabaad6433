"""Loading a typed run configuration: dataclass schema < YAML file < ``key.sub=value`` overrides.

Loading goes through OmegaConf structured configs, so an unknown key or a value of the wrong
type is an error at load time, before anything is submitted. Errors name the full dotted key
and the valid choices; the checks sections run in ``__post_init__`` are here too.
"""

from __future__ import annotations

import difflib
import math
import os
from dataclasses import fields, is_dataclass
from pathlib import Path
from typing import Any, Sequence, TypeVar

import yaml
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import ConfigKeyError, OmegaConfBaseException

from ecgdist.files import atomic_write_text

T = TypeVar("T")
REPO = Path(__file__).resolve().parents[2]


class ConfigError(ValueError):
    """A configuration that cannot run; the message names the offending key."""


def check_choice(key: str, value: Any, choices: Sequence[Any]) -> None:
    if value not in choices:
        raise ConfigError(f"config key '{key}' is {value!r}; valid choices: {', '.join(map(str, choices))}")


def check_range(key: str, value: float, low: float | None = None, high: float | None = None) -> None:
    """A finite number in [low, high] (either bound may be open): NaN and infinity never are."""
    if not math.isfinite(value) or (low is not None and value < low) or (high is not None and value > high):
        raise ConfigError(f"config key '{key}' is {value}; it must be a finite number in [{low}, {high}]")


def _explain(error: OmegaConfBaseException, schema: type) -> str:
    key = getattr(error, "full_key", None) or "?"
    if isinstance(error, ConfigKeyError) or "not in" in str(error):
        parent, _, leaf = key.rpartition(".")
        node: Any = schema
        for part in filter(None, parent.split(".")):
            node = _resolve(node, {f.name: f.type for f in fields(node)}.get(part, None))
        valid = [f.name for f in fields(node)] if node is not None and is_dataclass(node) else []
        hint = difflib.get_close_matches(leaf, valid, n=1)
        where = f"'{parent}'" if parent else "the top level"
        return (f"unknown config key '{key}'" + (f" (did you mean '{hint[0]}'?)" if hint else "")
                + f"; valid keys in {where}: {', '.join(valid)}")
    return f"config key '{key}': {str(error).splitlines()[0]}"


def _resolve(owner: type, annotation: Any) -> Any:
    """Section annotations are strings under ``from __future__ import annotations``: names in the
    module of the dataclass that holds the field."""
    if isinstance(annotation, str):
        import sys
        return getattr(sys.modules[owner.__module__], annotation, None)
    return annotation


def read_yaml_mapping(path: str | os.PathLike) -> Any:
    """A config file's contents; a file that is not YAML, or not a mapping of sections, is a ConfigError."""
    try:
        loaded = OmegaConf.load(path)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        raise ConfigError(f"config file {path} is not valid YAML{where}: {getattr(error, 'problem', None) or error}") \
            from None
    if not isinstance(loaded, DictConfig):
        raise ConfigError(f"config file {path} holds a {type(loaded).__name__.removesuffix('Config').lower()}, "
                          "not a mapping of sections (run:, data:, ...)")
    return loaded


def load_config(schema: type[T], path: str | os.PathLike | None = None,
                overrides: Sequence[str] = ()) -> T:
    """Build a ``schema`` instance from its defaults, a YAML file and dotted overrides."""
    cfg = OmegaConf.structured(schema)
    try:
        if path is not None:
            cfg = OmegaConf.merge(cfg, read_yaml_mapping(path))
        for item in overrides:
            if "=" not in item:
                raise ConfigError(f"override {item!r} is not of the form key.sub=value")
            key, _, text = item.partition("=")
            # update() walks list indices too (sweep.backbones.1.weights=...); the value is parsed as YAML
            OmegaConf.update(cfg, key, OmegaConf.from_dotlist([f"value={text}"])["value"], merge=True)
        return OmegaConf.to_object(cfg)
    except OmegaConfBaseException as error:
        cause = error.__cause__ if isinstance(error.__cause__, ConfigError) else None
        raise (cause or ConfigError(_explain(error, schema))) from None


def from_dict(schema: type[T], values: dict) -> T:
    """A ``schema`` instance from a resolved config stored as a dict (in a checkpoint)."""
    try:
        return OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(schema), OmegaConf.create(values)))
    except OmegaConfBaseException as error:
        raise ConfigError(_explain(error, schema)) from None


def to_yaml(cfg: Any) -> str:
    return OmegaConf.to_yaml(OmegaConf.structured(cfg))


def to_dict(cfg: Any) -> dict:
    return OmegaConf.to_container(OmegaConf.structured(cfg))


def resolve_path(path: str | os.PathLike) -> Path:
    """A path as given, else relative to the repository (the bundled configs/ work from any folder)."""
    candidate = Path(path)
    return candidate if candidate.exists() or candidate.is_absolute() else REPO / candidate


def save_resolved(cfg: Any, run_dir: str | os.PathLike, notes: Sequence[str] = ()) -> Path:
    """Write the fully resolved config next to a run's outputs (atomically); ``notes`` become
    comments at its end (what the run derived from it, such as how many records were left out)."""
    path = Path(run_dir) / "config.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, to_yaml(cfg) + "".join(f"# {note}\n" for note in notes))
    return path
