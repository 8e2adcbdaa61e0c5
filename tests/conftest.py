"""Suite-wide test settings."""

from __future__ import annotations

import os

import pytest
import torch


@pytest.fixture(scope="session", autouse=True)
def _single_thread_torch():
    """The tests run tiny tensors, for which torch's intra-op threads cost more than they save on the
    2-core CI machine (about 3x for small 3D convolutions). Subprocesses are not affected."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="session", autouse=True)
def _demo_cache(tmp_path_factory):
    """Keep synthetic demo datasets made by tests out of the user's cache."""
    if "MONAI_CWCD_CACHE" not in os.environ:
        os.environ["MONAI_CWCD_CACHE"] = str(tmp_path_factory.mktemp("monai_cwcd_cache"))
    yield
