"""Typed run configuration: dataclass schema < YAML file < ``key.sub=value`` overrides.

Each concern has its own section dataclass; a job's config nests them. loading.py reads and
checks a config, sections.py holds what both stages share, benchmarks.py what a labelled
corpus is evaluated on, pretrain.py and finetune.py each stage's whole config. Importers take
these names from ``ecgdist.config``.
"""

from ecgdist.config.benchmarks import BENCHMARK_KINDS, PTBXL_TASKS, SPLIT_FOLDS, BenchmarkSection
from ecgdist.config.finetune import STRATEGIES, BackboneSection, FinetuneConfig, FinetuneSection, SweepSection
from ecgdist.config.loading import (
    REPO,
    ConfigError,
    check_choice,
    check_range,
    from_dict,
    load_config,
    read_yaml_mapping,
    resolve_path,
    save_resolved,
    to_dict,
    to_yaml,
)
from ecgdist.config.pretrain import PretrainConfig, ProbeBenchmarkSection, ProbeSection
from ecgdist.config.sections import (
    CheckpointSection,
    DataSection,
    FinetuneSlurmSection,
    LoggingSection,
    ModelSection,
    PretrainDataSection,
    PretrainSlurmSection,
    RunSection,
    SlurmResources,
    SweepRunSection,
    TrainSection,
    corpus_list,
)

__all__ = [
    "BENCHMARK_KINDS", "PTBXL_TASKS", "SPLIT_FOLDS", "STRATEGIES", "REPO",
    "BackboneSection", "BenchmarkSection", "CheckpointSection", "DataSection", "FinetuneConfig", "FinetuneSection",
    "FinetuneSlurmSection", "LoggingSection", "ModelSection", "PretrainConfig", "PretrainDataSection",
    "PretrainSlurmSection", "ProbeBenchmarkSection", "ProbeSection", "RunSection", "SlurmResources", "SweepRunSection",
    "SweepSection", "TrainSection",
    "ConfigError", "check_choice", "check_range", "corpus_list", "from_dict", "load_config", "read_yaml_mapping",
    "resolve_path", "save_resolved", "to_dict", "to_yaml",
]
