"""The bundle's training workflow computes the contour map with ContourWeightMapd after the random
transforms (the contour of the augmented patch, exact for the bundles' even kernel_size=2, see
docs/transforms.md), hands it to the loss for every iteration via ContourHandoff, and the loss never
recomputes it; without the handler the loss computes the same map on the fly."""

from __future__ import annotations

import pytest
from ignite.engine import Events
from monai.bundle import ConfigParser

import monai_cwcd.losses._utils as loss_core

from .conftest import REPO, TINY


def _trainer(dataset_dir, tmp_path, drop_handoff=False):
    parser = ConfigParser()
    parser.read_config(str(REPO / "bundles" / "amos" / "train.json"))
    parser.update({
        "dataset_dir": dataset_dir, "epochs": 1, "num_workers": 0, "val_interval": 100,
        "patch_size": TINY["patch_size"], "network_def#features": TINY["features"],
        "output_dir": str(tmp_path / "out"), "ckpt_dir": str(tmp_path / "models"),
    })
    if drop_handoff:
        parser["train"]["handlers"] = [
            h for h in parser["train"]["handlers"]
            if not (isinstance(h, dict) and h.get("_target_") == "monai_cwcd.handlers.ContourHandoff")
        ]
    parser.parse()
    # the contour is the last random transform: computed on the augmented patch
    assert parser["train"]["random_transforms"][-1]["_target_"] == "monai_cwcd.transforms.ContourWeightMapd"
    parser.get_parsed_content("initialize")  # dataset check + determinism
    return parser.get_parsed_content("train#trainer"), parser.get_parsed_content("loss")


@pytest.mark.parametrize("drop_handoff", [False, True])
def test_precomputed_contour_is_used(tiny_datasets, tmp_path, monkeypatch, drop_handoff):
    calls = {"n": 0}
    for name in ("label_contour", "binary_contour"):
        original = getattr(loss_core, name)

        def counted(*args, _f=original, **kwargs):
            calls["n"] += 1
            return _f(*args, **kwargs)

        monkeypatch.setattr(loss_core, name, counted)
    trainer, loss = _trainer(tiny_datasets["amos"], tmp_path, drop_handoff)
    sources = []
    trainer.add_event_handler(Events.ITERATION_COMPLETED, lambda e: sources.append(loss.last_contour_source))
    trainer.run()
    assert len(sources) == 2  # 4 training cases, batch 2
    if drop_handoff:
        assert sources == ["on_the_fly"] * 2 and calls["n"] == 2
    else:
        assert sources == ["handed_over"] * 2 and calls["n"] == 0
