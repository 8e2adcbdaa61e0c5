"""Fixtures of the reliability tests: a tiny AMOS-layout dataset written once per session."""

from __future__ import annotations

import pytest
from _bundle_run import TINY_SHAPE

from monai_cwcd.data import write_synthetic_dataset


@pytest.fixture(scope="session")
def amos_tiny(tmp_path_factory) -> str:
    """A 6-case AMOS-layout dataset of 24x24x16 voxels (split 4/1/1)."""
    return write_synthetic_dataset("amos", tmp_path_factory.mktemp("rel") / "amos", num_cases=6, shape=TINY_SHAPE)


@pytest.fixture(scope="session")
def tiny_sets(tmp_path_factory, amos_tiny) -> dict[str, str]:
    """6-case tiny datasets of every layout (AMOS shared with ``amos_tiny``)."""
    root = tmp_path_factory.mktemp("sets")
    out = {"amos": amos_tiny}
    for name in ("brats", "pengwin"):
        out[name] = write_synthetic_dataset(name, root / name, num_cases=6, shape=TINY_SHAPE)
    return out


@pytest.fixture
def copy_set(tiny_sets, tmp_path):
    """``copy_set(name) -> Path`` of a private copy of a tiny dataset, free to break."""
    import shutil
    from pathlib import Path

    def make(name: str) -> Path:
        dst = tmp_path / f"data_{name}"
        shutil.copytree(tiny_sets[name], dst)
        return dst

    return make
