"""The bundles take the contour thickness in millimetres (issue 12): one top-level key,
``contour_width_mm``, reaches both the loss (on-the-fly path) and ``ContourWeightMapd``, with the
bundle's ``pixdim`` as the spacing; the default (None) keeps the papers' voxel setting."""

from __future__ import annotations

import pytest
from monai.bundle import ConfigParser

from monai_cwcd.transforms import ContourWeightMapd
from monai_cwcd.transforms.functional import check_contour_width

from .conftest import REPO


def _parsed(name: str, **overrides):
    parser = ConfigParser()
    parser.read_config(str(REPO / "bundles" / name / "train.json"))
    parser.update(overrides)
    loss = parser.get_parsed_content("loss")
    contour = [t for t in parser.get_parsed_content("train#random_transforms") if isinstance(t, ContourWeightMapd)]
    assert len(contour) == 1, "the training pipeline computes the contour once, after the random transforms"
    return parser, loss, contour[0].transform


@pytest.mark.parametrize("name", ["amos", "brats", "pengwin"])
def test_default_is_the_voxel_setting(name):
    parser, loss, transform = _parsed(name)
    assert loss.contour_width_mm is None and transform.contour_width_mm is None
    assert loss.kernel_size == transform.kernel_size == parser["contour_kernel_size"]


@pytest.mark.parametrize("name", ["amos", "brats", "pengwin"])
def test_millimetres_reach_loss_and_transform(name):
    parser, loss, transform = _parsed(name, contour_width_mm=2.0)
    assert loss.contour_width_mm == transform.contour_width_mm == check_contour_width(2.0)
    pixdim = tuple(float(v) for v in parser.get_parsed_content("pixdim"))
    assert tuple(loss.spacing) == pixdim and tuple(transform.spacing) == pixdim


def test_per_structure_widths_from_the_adaptive_json(tmp_path):
    """``monai-cwcd contours --adaptive`` writes contour_widths.json; the documented override reads it."""
    from monai_cwcd.data import load_contour_widths, write_contour_widths

    write_contour_widths({"contour_width_mm": {"0": 1.0, "1": 1.5, "2": 3.0}}, tmp_path)
    _, loss, transform = _parsed(
        "amos", dataset_dir=str(tmp_path), contour_width_mm="$monai_cwcd.data.load_contour_widths(@dataset_dir)"
    )
    assert loss.contour_width_mm == transform.contour_width_mm == check_contour_width(load_contour_widths(tmp_path))
