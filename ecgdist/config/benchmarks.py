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
    corpus's codes, or the mapping's classes) and a mapping table (CSV ``code,class``). ``external``:
    test sets from elsewhere (CODE-test for CODE-15 %), each a corpus every record of which each job
    scores after fold 10, with the weights fold 9 selected; its rows join the table."""

    KEY: ClassVar[str] = "sweep.benchmarks"  # where error messages say the section is
    name: str = ""
    kind: str = "labels"
    corpus: str = ""
    tasks: list[str] = field(default_factory=list)
    classes: list[str] = field(default_factory=list)
    mapping: str = ""
    external: dict[str, str] = field(default_factory=dict)  # test set name: its corpus (every record scored)

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
        for name in self.external:
            if not name.replace("_", "").isalnum():
                raise ConfigError(f"config key '{self.KEY} ({self.name}) external' has a test set named {name!r}: "
                                  "a name is one word (letters, digits, _); it labels table rows")
        if self.external and self.KEY != BenchmarkSection.KEY:
            raise ConfigError(f"config key '{self.KEY} ({self.name}) external': a probe never reads a test set")

    def external_key(self, name: str) -> str:
        """The config key of one of its external test sets, as error messages name it."""
        return f"{self.KEY} ({self.name}) external ({name})"
