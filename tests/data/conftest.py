"""Fixtures: tiny synthetic datasets in each real layout, written for real into tmp dirs."""

from __future__ import annotations

import shutil

import pytest

from monai_cwcd.data import write_synthetic_dataset

TINY = (24, 24, 16)


@pytest.fixture(scope="session")
def _pristine(tmp_path_factory):
    """One tiny dataset per name (5 cases), written once per session; tests copy it before breaking it."""
    root = tmp_path_factory.mktemp("pristine")
    return {ds: write_synthetic_dataset(ds, root / ds, num_cases=5, seed=0, shape=TINY) for ds in ("amos", "brats", "pengwin")}


@pytest.fixture
def dataset_copy(_pristine, tmp_path):
    """``dataset_copy(name) -> path`` of a private copy of the tiny dataset ``name``."""

    def make(name: str):
        dst = tmp_path / name
        shutil.copytree(_pristine[name], dst)
        return dst

    return make


@pytest.fixture
def pristine(_pristine):
    """Read-only tiny datasets (do not modify)."""
    return _pristine
