"""A resumable, locality-aware distributed batch sampler.

Each epoch's order is a pure function of (seed, epoch). Every shard is cut into blocks of
consecutive records (block starts shifted at random per epoch) and its blocks shuffled;
then the blocks of all shards are interleaved so that each shard's blocks are spread
evenly over the epoch, shards in a random order within each round (``spread``). Batches
are cut from that sequence: a batch is about batch_size / block_size contiguous reads, each
from a different shard while the corpus has that many, and since preprocessing places
records into shards at random, a batch is a sample of the whole corpus, not of one
shard. Over several corpora each corpus's blocks are spread the same way, in the numbers
its weight asks for (records drawn again, or left for a later epoch, when its share
differs from its size), so every batch holds each corpus in about its share.

Batch b goes to rank b % world_size: ranks see disjoint records and together cover the
epoch once. ``state_dict`` holds (epoch, batches already consumed); a restored sampler
continues with the very next batch.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
from torch.utils.data import Sampler


def spread(streams: list[list[np.ndarray]], rng: np.random.Generator) -> list[np.ndarray]:
    """Interleave several sequences so each is spread evenly over the result: item i of a
    stream of n items sits at (i + u) / n with u uniform per stream."""
    keys = [(np.arange(len(stream)) + rng.random()) / max(len(stream), 1) for stream in streams]
    flat = [item for stream in streams for item in stream]
    return [flat[i] for i in np.argsort(np.concatenate(keys) if keys else [], kind="stable")]


def quotas(sizes: np.ndarray, weights: Sequence[float] | None) -> np.ndarray:
    """Records each corpus gives an epoch of ``sizes.sum()`` records: its size by default, else
    its weight's share (largest remainders, so the quotas add up)."""
    if weights is None:
        return sizes
    share = np.asarray(weights, dtype=float) / np.sum(weights) * sizes.sum()
    whole = np.floor(share).astype(np.int64)
    whole[np.argsort(whole - share, kind="stable")[:int(sizes.sum() - whole.sum())]] += 1
    return whole


class BlockBatchSampler(Sampler[list[int]]):
    """Args:
        shard_of: shard id of each dataset position (``ShardDataset.shards_of()``).
        batch_size: records per batch on each rank.
        rank, world_size: this process's share.
        seed: with the epoch, fixes the order.
        shuffle: False gives positions in storage order (evaluation).
        drop_last: drop batches so every rank gets the same count (and only full batches).
        block_size: consecutive records kept together (default: a quarter batch).
        corpus_of: corpus of each position, when the dataset joins several (``ShardDataset.corpora_of()``).
        corpus_weights: each corpus's share of every epoch (default: its share of the records).
    """

    def __init__(self, shard_of: np.ndarray, batch_size: int, rank: int = 0, world_size: int = 1, seed: int = 0,
                 shuffle: bool = True, drop_last: bool = False, block_size: int | None = None,
                 corpus_of: np.ndarray | None = None, corpus_weights: Sequence[float] | None = None) -> None:
        self.shard_of = np.asarray(shard_of)
        self.batch_size, self.rank, self.world_size = batch_size, rank, world_size
        self.seed, self.shuffle, self.drop_last = seed, shuffle, drop_last
        self.block_size = block_size or max(1, batch_size // 4)
        corpus_of = np.zeros(len(self.shard_of), np.int64) if corpus_of is None else np.asarray(corpus_of)
        by_shard = np.argsort(self.shard_of, kind="stable")
        corpora = int(corpus_of.max()) + 1 if len(corpus_of) else 1
        self.corpus_positions = [by_shard[corpus_of[by_shard] == c] for c in range(corpora)]
        sizes = np.array([len(p) for p in self.corpus_positions])
        if corpus_weights is not None and len(corpus_weights) != corpora:
            raise ValueError(f"{len(corpus_weights)} corpus weights for {corpora} corpora")
        self.quotas = quotas(sizes, corpus_weights)
        if np.any((self.quotas > 0) & (sizes == 0)):
            raise ValueError(f"a corpus with a weight has no records here (records per corpus: {sizes.tolist()})")
        self.epoch, self.start_batch = 0, 0
        self._cached: tuple[int, list[np.ndarray]] | None = None

    def shard_blocks(self, positions: np.ndarray, rng: np.random.Generator) -> list[np.ndarray]:
        """One corpus's blocks for one pass over ``positions`` (sorted by shard), shards interleaved."""
        _, starts = np.unique(self.shard_of[positions], return_index=True)
        streams = []
        for group in np.split(positions, starts[1:]):
            shift = int(rng.integers(self.block_size)) if len(group) > self.block_size else 0
            blocks = [b for b in np.split(group, list(range(shift, len(group), self.block_size))) if len(b)]
            streams.append([blocks[i] for i in rng.permutation(len(blocks))])
        return spread(streams, rng)

    def corpus_blocks(self, corpus: int, rng: np.random.Generator) -> list[np.ndarray]:
        """The corpus's blocks for an epoch, ``quotas[corpus]`` records in all (passes repeat when it is
        weighted above its size; a share below its size takes the first blocks of a fresh pass)."""
        taken, count = [], 0
        while count < self.quotas[corpus]:
            for block in self.shard_blocks(self.corpus_positions[corpus], rng):
                block = block[:self.quotas[corpus] - count]
                taken.append(block)
                count += len(block)
                if count == self.quotas[corpus]:
                    break
        return taken

    def order(self, epoch: int) -> np.ndarray:
        """This epoch's positions in order (every position once, unless corpus weights say otherwise)."""
        if not self.shuffle:
            return np.concatenate(self.corpus_positions)
        rng = np.random.default_rng([self.seed, epoch])
        blocks = spread([self.corpus_blocks(c, rng) for c in range(len(self.corpus_positions))], rng)
        return np.concatenate(blocks) if blocks else np.empty(0, np.int64)

    def batches(self, epoch: int) -> list[np.ndarray]:
        """This rank's batches of ``epoch``."""
        if self._cached is not None and self._cached[0] == epoch:
            return self._cached[1]
        order = self.order(epoch)
        all_batches = [order[i:i + self.batch_size] for i in range(0, len(order), self.batch_size)]
        if self.drop_last:
            if all_batches and len(all_batches[-1]) < self.batch_size:
                all_batches.pop()
            all_batches = all_batches[:len(all_batches) - len(all_batches) % self.world_size]
        self._cached = (epoch, all_batches[self.rank::self.world_size])
        return self._cached[1]

    def set_epoch(self, epoch: int, start_batch: int = 0) -> None:
        self.epoch, self.start_batch = epoch, start_batch

    def __iter__(self):
        for batch in self.batches(self.epoch)[self.start_batch:]:
            yield batch.tolist()

    def __len__(self) -> int:
        return len(self.batches(self.epoch)) - self.start_batch

    def state_dict(self, consumed: int) -> dict:
        """State after the consumer took ``consumed`` batches of the current epoch."""
        return {"epoch": self.epoch, "start_batch": self.start_batch + consumed, "seed": self.seed,
                "world_size": self.world_size, "batch_size": self.batch_size}

    def load_state_dict(self, state: dict) -> None:
        """Continue where ``state`` stopped. Saved by a different number of ranks, the epoch
        continues at the same share of its records, rounded down: fewer than one batch per
        rank is seen twice, nothing is skipped. (A different micro batch also changes the
        block size, hence the order: the share is then only approximate.)"""
        if state["seed"] != self.seed:
            raise ValueError(f"sampler state was saved with seed {state['seed']}, this run uses {self.seed}")
        # A round is one batch on every rank; count the rounds the saved run's records fill.
        saved_round = state.get("world_size", self.world_size) * state.get("batch_size", self.batch_size)
        self.set_epoch(state["epoch"], state["start_batch"] * saved_round // (self.world_size * self.batch_size))


class EpochPermutationSampler(Sampler[list[int]]):
    """Batches cut from a fresh permutation of every position, drawn per epoch from (seed, epoch).

    Fine-tuning's sampler: a fine-tune corpus is small enough that batches need not be
    block reads, and its batches must be samples of the whole training set, not of a shard.

    Args:
        size: positions in the dataset.
        batch_size: records per batch (the last batch may be smaller).
        seed: with the epoch, fixes the order.
    """

    def __init__(self, size: int, batch_size: int, seed: int = 0) -> None:
        self.size, self.batch_size, self.seed, self.epoch = size, batch_size, seed, 0

    def batches(self, epoch: int) -> list[np.ndarray]:
        order = np.random.default_rng([self.seed, epoch]).permutation(self.size)
        return [order[i:i + self.batch_size] for i in range(0, self.size, self.batch_size)]

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self):
        for batch in self.batches(self.epoch):
            yield batch.tolist()

    def __len__(self) -> int:
        return -(-self.size // self.batch_size)
