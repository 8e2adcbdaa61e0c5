"""The split rule: paper counts, proportional scaling, explicit counts, determinism."""

from __future__ import annotations

import logging

import pytest

from monai_cwcd.data import (
    AMOS_SPLIT,
    BRATS_SPLIT,
    PENGWIN_SPLIT,
    DatasetError,
    load_datalist,
    scaled_split_counts,
    split_cases,
)


@pytest.mark.parametrize("counts", [AMOS_SPLIT, BRATS_SPLIT, PENGWIN_SPLIT])
def test_paper_counts_at_paper_size(counts):
    assert scaled_split_counts(sum(counts), counts) == tuple(counts)
    ids = [f"case{i:04d}" for i in range(sum(counts))]
    parts = [split_cases(ids, s, counts) for s in ("train", "val", "test")]
    assert tuple(len(p) for p in parts) == tuple(counts)
    assert sorted(sum(parts, [])) == ids  # disjoint and complete


@pytest.mark.parametrize("n,expected", [(3, (1, 1, 1)), (5, (3, 1, 1)), (12, (10, 1, 1)), (40, (32, 4, 4)), (300, (244, 27, 29))])
def test_scaled_counts(n, expected, caplog):
    with caplog.at_level(logging.INFO, logger="monai_cwcd.data"):
        assert scaled_split_counts(n, AMOS_SPLIT, "AMOS") == expected
    assert sum(expected) == n
    assert f"found {n} cases instead of the paper's 221" in caplog.text


def test_scaled_counts_at_least_one_each():
    for n in range(3, 60):
        for paper in (AMOS_SPLIT, BRATS_SPLIT, PENGWIN_SPLIT):
            counts = scaled_split_counts(n, paper)
            assert min(counts) >= 1 and sum(counts) == n


def test_split_is_deterministic_and_order_independent():
    ids = [f"c{i}" for i in range(30)]
    a = split_cases(ids, "val", PENGWIN_SPLIT)
    assert a == split_cases(list(reversed(ids)), "val", PENGWIN_SPLIT)
    assert a != split_cases(ids, "val", PENGWIN_SPLIT, seed=1)
    assert a == sorted(a)
    assert a != ids[21:24]  # shuffled, not the sorted tail


def test_explicit_split_counts(pristine):
    lists = [load_datalist("pengwin", pristine["pengwin"], s, split_counts=(2, 2, 1)) for s in ("train", "val", "test")]
    assert [len(x) for x in lists] == [2, 2, 1]
    assert len(load_datalist("amos", pristine["amos"], "test", split_counts=(1, 1, 0))) == 0
    with pytest.raises(DatasetError, match=r"found 5 usable case\(s\), but split_counts \(3, 2, 1\) need 6"):
        load_datalist("brats", pristine["brats"], "train", split_counts=(3, 2, 1))
    with pytest.raises(ValueError, match="split_counts must be 3"):
        load_datalist("brats", pristine["brats"], "train", split_counts=(3, 2))


def test_bad_names(pristine):
    with pytest.raises(ValueError, match="split must be one of"):
        load_datalist("amos", pristine["amos"], "validation")
    with pytest.raises(ValueError, match="dataset must be one of"):
        load_datalist("lits", pristine["amos"], "train")
