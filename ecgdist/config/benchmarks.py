"""What a labelled corpus is evaluated on: the folds every benchmark follows, the kinds of
benchmark and PTB-XL's tasks. Fine-tune sweeps and pre-training's probes both name benchmarks.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from ecgdist.config.loading import ConfigError, check_choice

# The PTB-XL benchmark's folds, which made folds follow too (ecgdist/tasks/folds.py): the test fold
# is read by nothing but a fine-tune's final evaluation.
SPLIT_FOLDS = {"train": tuple(range(1, 9)), "val": (9,), "test": (10,)}
PTBXL_TASKS = ("all", "diagnostic", "subdiagnostic", "superdiagnostic", "form", "rhythm")
BENCHMARK_KINDS = ("ptbxl", "physionet2021", "code15", "labels")  # ecgdist/tasks/benchmark.py defines each


@dataclass
class BenchmarkSection:
    """A labelled corpus a sweep evaluates on, besides PTB-XL's ``sweep.tasks``: its kind, its tasks
    (empty: every task of the kind) and, for kind ``labels``, the classes scored (empty: all the
    corpus's codes, or the mapping's classes) and a mapping table (CSV ``code,class``)."""

    KEY: ClassVar[str] = "sweep.benchmarks"  # where error messages say the section is
    name: str = ""
    kind: str = "labels"
    corpus: str = ""
    tasks: list[str] = field(default_factory=list)
    classes: list[str] = field(default_factory=list)
    mapping: str = ""

    def __post_init__(self) -> None:
        if not self.name or not self.name.replace("_", "").isalnum():
            raise ConfigError(f"config key '{self.KEY}' has a benchmark named {self.name!r}: a name is one word "
                              "(letters, digits, _); it labels jobs, table rows and probe scalars")
        check_choice(f"{self.KEY} ({self.name}) kind", self.kind, BENCHMARK_KINDS)
        if not self.corpus and self.KEY == BenchmarkSection.KEY:
            raise ConfigError(f"config key '{self.KEY} ({self.name}) corpus' is empty: name the benchmark's corpus")
        if self.kind != "labels" and (self.classes or self.mapping):
            raise ConfigError(f"config key '{self.KEY} ({self.name})': classes and mapping are for kind labels; "
                              f"a {self.kind} benchmark scores its own classes")
