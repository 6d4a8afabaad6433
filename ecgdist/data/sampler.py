"""A resumable, locality-aware distributed batch sampler.

Each epoch's order is a pure function of (seed, epoch): shards are shuffled, then blocks
of consecutive records within each shard (block starts shifted at random per epoch).
Batches are cut from that sequence, so a batch is a few contiguous spans (about
batch_size / block_size, plus partial blocks at shard ends): a few large reads. Blocks
smaller than a batch make batch composition change from epoch to epoch. Batch b goes to
rank b % world_size: ranks see disjoint records and together cover every record once
per epoch. ``state_dict`` holds (epoch, batches already consumed); a restored sampler
continues with the very next batch.
"""

from __future__ import annotations

import numpy as np
from torch.utils.data import Sampler


class BlockBatchSampler(Sampler[list[int]]):
    """Args:
        shard_of: shard id of each dataset position (``ShardDataset.shards_of()``).
        batch_size: records per batch on each rank.
        rank, world_size: this process's share.
        seed: with the epoch, fixes the order.
        shuffle: False gives positions in storage order (evaluation).
        drop_last: drop batches so every rank gets the same count (and only full batches).
        block_size: consecutive records kept together (default: a quarter batch).
    """

    def __init__(self, shard_of: np.ndarray, batch_size: int, rank: int = 0, world_size: int = 1, seed: int = 0,
                 shuffle: bool = True, drop_last: bool = False, block_size: int | None = None) -> None:
        self.shard_of = np.asarray(shard_of)
        self.batch_size, self.rank, self.world_size = batch_size, rank, world_size
        self.seed, self.shuffle, self.drop_last = seed, shuffle, drop_last
        self.block_size = block_size or max(1, batch_size // 4)
        self.epoch, self.start_batch = 0, 0

    def order(self, epoch: int) -> np.ndarray:
        """Every dataset position once, in this epoch's order."""
        positions = np.argsort(self.shard_of, kind="stable")
        if not self.shuffle:
            return positions
        rng = np.random.default_rng([self.seed, epoch])
        shards, starts = np.unique(self.shard_of[positions], return_index=True)
        groups = np.split(positions, starts[1:])
        pieces = []
        for g in rng.permutation(len(groups)):
            group = groups[g]
            shift = int(rng.integers(self.block_size)) if len(group) > self.block_size else 0
            cuts = list(range(shift, len(group), self.block_size))
            blocks = [b for b in np.split(group, cuts) if len(b)]
            pieces.extend(blocks[i] for i in rng.permutation(len(blocks)))
        return np.concatenate(pieces) if pieces else positions

    def batches(self, epoch: int) -> list[np.ndarray]:
        """This rank's batches of ``epoch``."""
        order = self.order(epoch)
        all_batches = [order[i:i + self.batch_size] for i in range(0, len(order), self.batch_size)]
        if self.drop_last:
            if all_batches and len(all_batches[-1]) < self.batch_size:
                all_batches.pop()
            all_batches = all_batches[:len(all_batches) - len(all_batches) % self.world_size]
        return all_batches[self.rank::self.world_size]

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
