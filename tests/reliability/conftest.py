"""Fixtures of the reliability tests: a tiny AMOS-layout dataset written once per session."""

from __future__ import annotations

import pytest
from _bundle_run import TINY_SHAPE

from monai_cwcd.data import write_synthetic_dataset


@pytest.fixture(scope="session")
def amos_tiny(tmp_path_factory) -> str:
    """A 6-case AMOS-layout dataset of 24x24x16 voxels (split 4/1/1)."""
    return write_synthetic_dataset("amos", tmp_path_factory.mktemp("rel") / "amos", num_cases=6, shape=TINY_SHAPE)
