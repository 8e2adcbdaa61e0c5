"""Contour and weight-map transforms (array and dictionary versions) and their shared kernels."""

from __future__ import annotations

from monai_cwcd.transforms.array import ContourWeightMap, DistanceWeightMap, RRWMap
from monai_cwcd.transforms.dictionary import (
    ContourWeightMapD,
    ContourWeightMapd,
    ContourWeightMapDict,
    DistanceWeightMapD,
    DistanceWeightMapd,
    DistanceWeightMapDict,
    RRWMapD,
    RRWMapd,
    RRWMapDict,
)
from monai_cwcd.transforms.functional import (
    binary_contour,
    distance_weight_map,
    label_contour,
    rrw_map,
)

__all__ = [
    "ContourWeightMap",
    "ContourWeightMapd",
    "ContourWeightMapD",
    "ContourWeightMapDict",
    "RRWMap",
    "RRWMapd",
    "RRWMapD",
    "RRWMapDict",
    "DistanceWeightMap",
    "DistanceWeightMapd",
    "DistanceWeightMapD",
    "DistanceWeightMapDict",
    "label_contour",
    "binary_contour",
    "rrw_map",
    "distance_weight_map",
]
