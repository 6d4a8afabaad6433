"""Benchmarks: task definitions, the folds they are scored on, and their metrics.

Below both stages: fine-tuning sweeps and pre-training's downstream probes read the same
tasks and the same folds, so a benchmark's test split can be left out of pre-training in
advance and scored the same way afterwards.
"""
