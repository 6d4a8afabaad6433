from collections import Counter

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


def test_a_batch_draws_from_as_many_shards_as_it_has_blocks():
    shards = np.repeat(np.arange(40), 256)  # 40 shards of 256: each block of 16 from another shard
    for epoch in (0, 1):
        batches = BlockBatchSampler(shards, batch_size=64, block_size=16, seed=3).batches(epoch)
        distinct = [len(np.unique(shards[b])) for b in batches]
        spans = [1 + np.count_nonzero((np.diff(b) != 1) | (np.diff(shards[b]) != 0)) for b in batches]
        assert distinct == spans, "no two spans of a batch come from one shard"
        assert min(distinct) >= 4 and np.mean(distinct) > 4.5  # 4 blocks, a shifted start adds a partial one
    # consecutive batches move on to other shards instead of draining one
    first = [set(shards[b].tolist()) for b in batches[:10]]
    assert len(set().union(*first)) >= 35


def test_with_fewer_shards_than_blocks_a_batch_spans_every_shard():
    shards = np.repeat(np.arange(2), 512)
    batches = BlockBatchSampler(shards, batch_size=64, block_size=16, seed=0).batches(0)
    assert np.mean([len(np.unique(shards[b])) for b in batches]) > 1.9


@pytest.mark.parametrize("weights", [None, [1, 1], [3, 1]])
def test_corpus_weights_set_each_corpus_share_of_every_batch(weights):
    corpus_of = np.repeat([0, 1], [3000, 1000])
    shards = np.repeat(np.arange(40), 100)  # corpus 0: shards 0-29, corpus 1: 30-39
    sampler = BlockBatchSampler(shards, 64, seed=1, corpus_of=corpus_of, corpus_weights=weights, drop_last=True)
    batches = sampler.batches(0)
    share = (weights[1] / sum(weights)) if weights else 0.25
    assert abs(np.concatenate(batches).size - 4000) < 64
    per_batch = np.array([np.mean(corpus_of[b] == 1) for b in batches])
    assert abs(per_batch.mean() - share) < 0.02  # the epoch holds the corpus's share
    assert np.percentile(np.abs(per_batch - share), 90) <= 0.25  # and so does nearly every batch (blocks of 16)
    drawn = np.concatenate(batches)
    if weights == [1, 1]:  # corpus 1 is drawn twice over, corpus 0 in part
        assert np.bincount(drawn[corpus_of[drawn] == 1]).max() == 2 and len(np.unique(drawn[corpus_of[drawn] == 0])) < 2100
    else:
        assert len(np.unique(drawn)) == len(drawn)


def test_weighted_order_resumes_exactly():
    corpus_of = np.repeat([0, 1], [300, 100])
    make = lambda: BlockBatchSampler(np.repeat(np.arange(8), 50), 16, seed=4, corpus_of=corpus_of,
                                     corpus_weights=[1, 1])
    full = [b.tolist() for b in make().batches(2)]
    restored = make()
    restored.set_epoch(2)
    restored.load_state_dict(restored.state_dict(consumed=5))
    assert list(restored) == full[5:]


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


def test_weighted_corpora_resume_on_another_rank_count_in_the_same_order():
    shards, corpus_of = np.repeat(np.arange(6), 40), np.repeat([0, 1], [200, 40])
    make = lambda rank, world: BlockBatchSampler(shards, 8, rank, world, seed=3, corpus_of=corpus_of,
                                                 corpus_weights=[1, 1])
    epoch = Counter(make(0, 1).order(0).tolist())  # corpus 1 drawn three times over, corpus 0 in part
    before = Counter(i for rank in (0, 1) for b in make(rank, 2).batches(0)[:5] for i in b)
    state = make(0, 2).state_dict(5)
    after = Counter()
    for rank in range(3):
        sampler = make(rank, 3)
        sampler.load_state_dict(state)
        after.update(i for b in sampler for i in b)
    assert not epoch - (before + after), "nothing of the epoch is skipped"
    assert sum((before + after - epoch).values()) < 8 * 3  # and under a batch per rank is seen twice


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
