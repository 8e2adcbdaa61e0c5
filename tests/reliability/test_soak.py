"""Soak test (slow): 300 training iterations of the AMOS demo with CacheDataset; resident memory after
warm-up must grow by less than 5%. Run with ``pytest -m slow tests/reliability/test_soak.py -s``."""

from __future__ import annotations

import json
import os

import pytest
from _bundle_run import FAST_NET, REPO
from ignite.engine import Events
from monai.bundle import ConfigParser

ITERATIONS = 300
WARMUP = 100  # includes the first validation runs (one-time buffers of the evaluator)


def _rss_mib(trim: bool = False) -> float:
    """VmRSS in MiB; with ``trim``, after ``gc.collect()`` and glibc's ``malloc_trim(0)``, so memory
    that is free but kept by the allocator does not count (what a leak would not give back)."""
    if trim:
        import ctypes
        import gc

        gc.collect()
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    raise RuntimeError("VmRSS not found")


@pytest.mark.slow
@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="needs /proc (Linux)")
def test_soak_memory_flat(tmp_path):
    overlay = tmp_path / "soak.json"
    # the demo data and pipeline (CacheDataset, cache_rate 1.0, random crops/rotations/flips, CWCD, handlers,
    # checkpoints and curves every epoch); the fast network keeps 300 iterations within minutes on CPU
    overlay.write_text(json.dumps({**FAST_NET, "patch_size": [32, 32, 32], "batch_size": 1, "epochs": 1000,
                                   "val_interval": 5}))
    parser = ConfigParser()
    parser.read_config([f"{REPO}/bundles/amos/train.json", f"{REPO}/bundles/amos/demo.json", str(overlay)])
    parser.update({"output_dir": str(tmp_path / "out")})
    parser.get_parsed_content("initialize")
    trainer = parser.get_parsed_content("train#trainer")
    assert type(trainer.data_loader.dataset).__name__ == "CacheDataset"
    rss: list[float] = []
    trimmed: dict[int, float] = {}

    @trainer.on(Events.ITERATION_COMPLETED)
    def _record(engine):
        rss.append(_rss_mib())
        if engine.state.iteration % 10 == 0:
            trimmed[engine.state.iteration] = _rss_mib(trim=True)
        if engine.state.iteration >= ITERATIONS:
            engine.terminate()

    trainer.run()
    assert len(rss) == ITERATIONS
    base = rss[WARMUP - 1]
    end = sum(rss[-20:]) / 20
    raw_growth = (end - base) / base
    t_base, t_end = trimmed[WARMUP], sum(trimmed[i] for i in range(ITERATIONS - 40, ITERATIONS + 1, 10)) / 5
    growth = (t_end - t_base) / t_base
    print(f"\nSOAK: {ITERATIONS} iterations; raw RSS after warm-up ({WARMUP} it) {base:.1f} MiB, mean of the last 20 "
          f"{end:.1f} MiB ({100 * raw_growth:+.2f}%); trimmed RSS {t_base:.1f} -> {t_end:.1f} MiB ({100 * growth:+.2f}%)")
    assert growth < 0.05
