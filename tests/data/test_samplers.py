"""DistributedEvalSampler: every case exactly once over the ranks, any case count, padding only for
ranks that would otherwise have no case."""

from __future__ import annotations

import pytest

from monai_cwcd.data import DistributedEvalSampler


@pytest.mark.parametrize("num_cases", [1, 2, 3, 5, 8])
@pytest.mark.parametrize("num_ranks", [1, 2, 3, 4])
@pytest.mark.parametrize("shuffle", [False, True])
def test_each_case_once_any_count(num_cases, num_ranks, shuffle):
    data = list(range(num_cases))
    samplers = [DistributedEvalSampler(data, num_replicas=num_ranks, rank=r, shuffle=shuffle) for r in range(num_ranks)]
    for s in samplers:
        s.set_epoch(3)
    shards = [list(s) for s in samplers]
    real = [idx for s, shard in zip(samplers, shards) for idx in shard[: s.num_cases]]
    assert sorted(real) == data  # each case exactly once
    for s, shard in zip(samplers, shards):
        assert len(shard) == len(s) == s.num_cases + s.num_padding >= 1  # every rank runs the epoch
        assert s.num_padding == (1 if s.num_cases == 0 else 0)
        assert max(len(x) for x in shards) - min(len(x) for x in shards) <= 1
    assert sum(s.num_padding for s in samplers) == max(num_ranks - num_cases, 0)
    if not shuffle:  # MONAI's even_divisible=False split: rank r gets r, r + R, ...
        assert [shard[: s.num_cases] for s, shard in zip(samplers, shards)] == [
            data[r::num_ranks] for r in range(num_ranks)]


def test_shuffle_is_the_same_on_every_rank_and_changes_with_the_epoch():
    data = list(range(10))
    orders = []
    for epoch in (0, 1):
        shards = []
        for r in range(2):
            s = DistributedEvalSampler(data, num_replicas=2, rank=r, shuffle=True, seed=5)
            s.set_epoch(epoch)
            shards.append(list(s))
        assert sorted(shards[0] + shards[1]) == data
        orders.append(shards)
    assert orders[0] != orders[1]


def test_errors():
    with pytest.raises(ValueError, match="empty dataset .*validation datalist"):
        DistributedEvalSampler([], num_replicas=2, rank=0)
    with pytest.raises(ValueError, match="rank"):
        DistributedEvalSampler([1, 2], num_replicas=2, rank=2)
