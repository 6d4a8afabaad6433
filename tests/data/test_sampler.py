import numpy as np
import pytest

from ecgdist.data.sampler import BlockBatchSampler

SHARDS = np.repeat(np.arange(5), [40, 7, 33, 20, 1])  # uneven shards, 101 records


def test_two_ranks_cover_every_record_exactly_once_per_epoch():
    seen = []
    for rank in (0, 1):
        sampler = BlockBatchSampler(SHARDS, batch_size=8, rank=rank, world_size=2, seed=5)
        sampler.set_epoch(2)
        seen.extend(i for batch in sampler for i in batch)
    assert sorted(seen) == list(range(len(SHARDS)))


def test_order_is_determined_by_seed_and_epoch():
    a, b = BlockBatchSampler(SHARDS, 8, seed=1), BlockBatchSampler(SHARDS, 8, seed=1)
    assert [list(x) for x in a.batches(3)] == [list(x) for x in b.batches(3)]
    assert [list(x) for x in a.batches(3)] != [list(x) for x in a.batches(4)]
    assert [list(x) for x in a.batches(3)] != [list(x) for x in BlockBatchSampler(SHARDS, 8, seed=2).batches(3)]


def test_batches_are_a_few_contiguous_spans():
    shards = np.repeat(np.arange(4), 500)
    sampler = BlockBatchSampler(shards, batch_size=64, block_size=16, seed=0)
    runs = [1 + np.count_nonzero(np.diff(b) != 1) for b in sampler.batches(0)]
    assert max(runs) <= 64 // 16 + 2  # partial blocks at shard ends add at most a couple
    assert np.mean(runs) < 5.5


def test_batch_composition_changes_between_epochs():
    sampler = BlockBatchSampler(np.zeros(256, int), batch_size=32, seed=0)
    first = {frozenset(b.tolist()) for b in sampler.batches(0)}
    assert first.isdisjoint({frozenset(b.tolist()) for b in sampler.batches(1)})


def test_restored_sampler_yields_exactly_the_remaining_batches():
    sampler = BlockBatchSampler(SHARDS, batch_size=6, rank=1, world_size=2, seed=9)
    sampler.set_epoch(4)
    full = list(sampler)
    state = sampler.state_dict(consumed=3)  # the consumer took three batches, then the job stopped
    restored = BlockBatchSampler(SHARDS, batch_size=6, rank=1, world_size=2, seed=9)
    restored.load_state_dict(state)
    assert list(restored) == full[3:]


@pytest.mark.parametrize("new_world_size", [1, 3, 4])
def test_resuming_on_another_rank_count_skips_nothing_and_repeats_under_a_batch_per_rank(new_world_size):
    shards = np.repeat(np.arange(6), 40)  # 240 records: 30 batches of 8
    consumed = 5  # each of 2 ranks took five batches, then the job stopped
    before = [i for rank in (0, 1) for b in BlockBatchSampler(shards, 8, rank, 2, seed=3).batches(0)[:consumed]
              for i in b]
    state = BlockBatchSampler(shards, 8, 0, 2, seed=3).state_dict(consumed)
    after = []
    for rank in range(new_world_size):
        sampler = BlockBatchSampler(shards, 8, rank, new_world_size, seed=3)
        sampler.load_state_dict(state)
        after.extend(i for b in sampler for i in b)
    assert set(before) | set(after) == set(range(len(shards)))  # every record of the epoch, once at least
    repeated = len(before) + len(after) - len(shards)
    assert 0 <= repeated < 8 * new_world_size and len(set(after)) == len(after)


def test_restoring_with_another_seed_is_refused():
    state = BlockBatchSampler(SHARDS, 6, seed=1).state_dict(0)
    with pytest.raises(ValueError, match="seed 1"):
        BlockBatchSampler(SHARDS, 6, seed=2).load_state_dict(state)


def test_drop_last_gives_every_rank_the_same_number_of_full_batches():
    counts = [len(BlockBatchSampler(SHARDS, 8, rank=r, world_size=3, drop_last=True).batches(0)) for r in range(3)]
    assert len(set(counts)) == 1
    assert all(len(b) == 8 for r in range(3) for b in BlockBatchSampler(SHARDS, 8, r, 3, drop_last=True).batches(0))


def test_fine_tune_epochs_are_fresh_global_permutations_that_mix_shards():
    from ecgdist.data.sampler import EpochPermutationSampler

    sampler = EpochPermutationSampler(len(SHARDS), batch_size=16, seed=3)
    epoch0, epoch1 = sampler.batches(0), sampler.batches(1)
    assert sorted(np.concatenate(epoch0).tolist()) == list(range(len(SHARDS)))  # every record once
    assert [len(b) for b in epoch0] == [16] * 6 + [5]
    assert not np.array_equal(np.concatenate(epoch0), np.concatenate(epoch1))
    # Every full batch draws from several shards (a shard-by-shard order would give one or two).
    assert min(len(np.unique(SHARDS[b])) for b in epoch0[:-1]) >= 3
    again = EpochPermutationSampler(len(SHARDS), batch_size=16, seed=3)
    again.set_epoch(1)
    assert [b for b in again] == [b.tolist() for b in epoch1]
