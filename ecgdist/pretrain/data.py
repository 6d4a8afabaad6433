"""Pre-training's data, assembled from the config: corpora opened (and staged), evaluation
records left out, records several corpora share kept once, labels and targets joined, the
training stream, the held-out validation set and the probe sets.

Its own module so that the rank's entry point (``main``) and the submission checks
(``submission``, which builds it once before anything is queued) both import it downward.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ecgdist.config import ConfigError, PretrainConfig, corpus_list, resolve_path
from ecgdist.data.dataset import ShardCorpus, ShardDataset, verified_cache
from ecgdist.data.index import CorpusIndex, joined_groups, joined_targets, read_index
from ecgdist.data.labels import annotated, union_vocabulary
from ecgdist.data.leakage import TrainingSet, evaluation_sets, first_copies, manifest_sha256, members
from ecgdist.data.loader import EpochStream
from ecgdist.data.sampler import BlockBatchSampler
from ecgdist.data.shards import MANIFEST_NAME
from ecgdist.data.splits import holdout_mask
from ecgdist.data.staging import stage_corpus
from ecgdist.data.transforms import Transform, check_crop
from ecgdist.dist import DistEnv
from ecgdist.models import CLASSIFIERS
from ecgdist.pretrain.deepspeed_config import BatchLayout, build_ds_config
from ecgdist.pretrain.probe import ProbeSet, open_probe_sets, probe_corpus

log = logging.getLogger("ecgdist.pretrain")


@dataclass
class PretrainData:
    stream: EpochStream
    val: ShardDataset
    labels: list[str]
    recipe: dict
    provenance: dict  # what the export records about the training data
    probes: list[ProbeSet]  # probe.benchmarks, opened


def open_corpora(cfg: PretrainConfig) -> tuple[ShardCorpus, list[Path]]:
    """``data.corpus`` opened (one corpus, or several joined end to end: recipes must agree), read
    from the node-local copies when ``data.stage_dir`` is set; and the corpora's own paths."""
    paths = [resolve_path(p) for p in corpus_list(cfg.data.corpus)]
    if not paths:
        raise ConfigError("config key 'data.corpus' is empty: give a shard corpus directory (or a list of them)")
    same = [(a, b) for i, a in enumerate(paths) for b in paths[i + 1:] if a.resolve() == b.resolve()
            or (a / MANIFEST_NAME).is_file() and (b / MANIFEST_NAME).is_file() and manifest_sha256(a) == manifest_sha256(b)]
    if same:
        raise ConfigError(f"config key 'data.corpus' lists one corpus twice ({same[0][0]} and {same[0][1]}): its "
                          "records would count double and its validation patients would reach training")
    try:
        corpus = ShardCorpus(paths)  # sizes and recipes checked before anything is copied
        if cfg.data.stage_dir:
            corpus = ShardCorpus([stage_corpus(p, Path(cfg.data.stage_dir), verified_cache()) for p in paths])
    except (FileNotFoundError, ValueError) as error:
        raise ConfigError(f"config key 'data.corpus': {error}") from None
    check_crop(cfg.data.crop_samples, corpus.manifests[0].recipe.samples, paths[0])
    missing = [lead for lead in cfg.data.leads if lead not in corpus.manifests[0].recipe.leads]
    if missing:
        raise ConfigError(f"config key 'data.leads': corpus {paths[0]} lacks {', '.join(missing)}")
    return corpus, paths


def build_data(cfg: PretrainConfig, env: DistEnv) -> PretrainData:
    corpus, sources = open_corpora(cfg)
    indexes = [read_index(path, manifest) for path, manifest in zip(corpus.paths, corpus.manifests)]
    held_out = holdout_mask(joined_groups(indexes), cfg.data.val_fraction, cfg.run.seed)
    keep, provenance = leave_out_evaluation_records(cfg, sources, indexes)
    if len(indexes) > 1:
        keep &= once_each(sources, indexes, provenance)
    labels = union_vocabulary(corpus.manifests, cfg.data.min_label_count) if cfg.model.name in CLASSIFIERS else []
    if cfg.model.name in CLASSIFIERS and not labels:
        raise ConfigError(f"model.name={cfg.model.name} learns labels, but data.corpus has none with at "
                          f"least data.min_label_count={cfg.data.min_label_count} positives")
    targets = joined_targets(indexes, labels) if labels else None
    # Several corpora annotate different labels: each record is scored on its own corpus's only.
    mask = annotated(corpus.manifests, labels) if labels and len(corpus.paths) > 1 else None
    d = cfg.data
    train_transform = Transform(d.crop_samples, d.random_crop, d.normalize, tuple(d.leads), d.noise_std, d.scale_jitter)
    val_transform = Transform(d.crop_samples, False, d.normalize, tuple(d.leads))

    def subset(rows_mask: np.ndarray, transform: Transform) -> ShardDataset:
        rows = np.flatnonzero(rows_mask)
        return ShardDataset(corpus, rows, targets[rows] if targets is not None else None, transform, cfg.run.seed,
                            mask, device_transform=True)  # float16 out of the loader, finished on the device

    train = subset(~held_out & keep, train_transform)
    probes = open_probe_sets(cfg)
    check_probe_leakage(cfg, sources, indexes, ~held_out & keep)
    try:
        sampler = BlockBatchSampler(train.shards_of(), cfg.train.micro_batch, env.rank, env.world_size, cfg.run.seed,
                                    drop_last=True,  # equal batch counts keep ranks in lockstep
                                    corpus_of=train.corpora_of(), corpus_weights=d.corpus_weights or None)
    except ValueError as error:
        raise ConfigError(f"config key 'data.corpus_weights': {error}") from None
    if not sampler.batches(0):
        raise ConfigError(f"{len(train)} training records cannot fill one batch of train.micro_batch="
                          f"{cfg.train.micro_batch} on each of {env.world_size} ranks")
    return PretrainData(EpochStream(train, sampler, d.workers), subset(held_out & keep, val_transform), labels,
                        corpus.manifests[0].recipe.to_dict(), provenance, probes)


def check_probe_leakage(cfg: PretrainConfig, corpora: list[Path], indexes: list[CorpusIndex],
                        training: np.ndarray) -> None:
    """No record of a probe's score folds is a training record (by content or identity, as
    ``data.exclude_from`` matches them): a probe scored on records the model learnt from would
    overstate what pre-training buys."""
    if not cfg.probe.active:
        return
    try:
        fingerprints = np.concatenate([index.fingerprints(c) for c, index in zip(corpora, indexes)])[training]
    except ValueError as error:  # a corpus without fingerprints: the check cannot be made
        raise ConfigError(f"config key 'probe.benchmarks': {error}") from None
    identities = np.concatenate([index.identity for index in indexes])[training]
    folds = list(cfg.probe.score_folds)
    for benchmark in cfg.probe.benchmarks:
        corpus = probe_corpus(cfg, benchmark.corpus)
        try:
            contents, ids = evaluation_sets(corpus, folds)
        except (FileNotFoundError, ValueError) as error:
            raise ConfigError(f"config key 'probe.benchmarks ({benchmark.name}) corpus': {error}") from None
        seen = members(fingerprints, contents) | (members(identities, ids) & (identities != 0))
        if seen.any():
            raise ConfigError(
                f"config key 'probe.benchmarks ({benchmark.name})': {int(seen.sum())} pre-training records are records "
                f"of fold {', '.join(map(str, folds))} of {corpus}, which the probe scores on (matched by content): "
                f"leave them out with data.exclude_from={corpus} (data.exclude_folds must hold {folds[0]}; its "
                "default [9, 10] does)")


def once_each(corpora: list[Path], indexes: list[CorpusIndex], provenance: dict) -> np.ndarray:
    """Rows to keep so that a record several corpora hold (by content) trains once, from the first
    corpus listed; the count goes to the log and the provenance."""
    try:
        first = first_copies([index.fingerprints(c) for c, index in zip(corpora, indexes)])
    except ValueError as error:  # a corpus without fingerprints: shared records cannot be found
        raise ConfigError(f"config key 'data.corpus': {error}") from None
    provenance["shared_records_dropped"] = int((~first).sum())
    log.info("data.corpus: %d records of later corpora are records an earlier one holds (by content): each is "
             "trained on once, from the first corpus listed", provenance["shared_records_dropped"])
    return first


def leave_out_evaluation_records(cfg: PretrainConfig, corpora: list[Path],
                                 indexes: list[CorpusIndex]) -> tuple[np.ndarray, dict]:
    """Rows pre-training may use (all but those matching ``data.exclude_from``'s folds by content or
    by identity), and the provenance an export carries: the corpora, what was left out and why."""
    d = cfg.data
    provenance = {"corpora": [{"path": str(c.resolve()), "manifest_sha256": manifest_sha256(c)} for c in corpora],
                  "exclude_from": None, "excluded": 0}
    if not d.exclude_from:
        return np.ones(sum(len(index.group) for index in indexes), dtype=bool), provenance
    evaluation = resolve_path(d.exclude_from)
    identities = np.concatenate([index.identity for index in indexes])
    try:
        fingerprints = np.concatenate([index.fingerprints(c) for c, index in zip(corpora, indexes)])
        training = TrainingSet.leaving_out(fingerprints, identities, evaluation, d.exclude_folds)
    except (FileNotFoundError, ValueError) as error:  # no such corpus, no such folds, or no fingerprints
        raise ConfigError(f"config key 'data.exclude_from': {error}") from None
    known = int((identities != 0).sum())
    if training.excluded == 0 and known and not d.allow_none_excluded:
        raise ConfigError(f"config key 'data.exclude_from': no record of {evaluation} was left out, yet data.corpus "
                          f"holds {known} records of PTB-XL by identity (PTB-XL itself, or the PhysioNet/CinC HR "
                          "copies): is exclude_from the corpus they would be evaluated on? data.allow_none_excluded="
                          "true runs anyway")
    provenance.update(excluded=training.excluded, exclude_from={
        "path": str(evaluation.resolve()), "manifest_sha256": manifest_sha256(evaluation), "folds": list(d.exclude_folds)})
    return training.keep, provenance


def check_inputs(cfg: PretrainConfig, env: DistEnv) -> tuple[dict, BatchLayout, PretrainData]:
    """What can refuse a run, read before any rank joins the process group (and by the submission
    check, before anything is queued): the DeepSpeed JSON, the corpora (staged when asked),
    exclusions, labels and batches."""
    ds_config, layout = build_ds_config(resolve_path(cfg.deepspeed), cfg.train, env.world_size)
    return ds_config, layout, build_data(cfg, env)
