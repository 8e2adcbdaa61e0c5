"""Evaluation tools: per-case segmentation metrics from prediction/label folders
(:func:`evaluate_folders`, behind ``monai-cwcd evaluate``) and the loss comparison
(:func:`compare_losses`, behind ``monai-cwcd compare`` and ``benchmarks/compare_losses.py``) and
its portable run records (:func:`pack_records`, :func:`unpack_records`)."""

from __future__ import annotations

from monai_cwcd.evaluation.compare import AUGMENTATIONS, build_augmentation, compare_losses
from monai_cwcd.evaluation.configs import BASELINE_LOSSES, NETWORKS, RunConfig, default_configs
from monai_cwcd.evaluation.records import pack_records, unpack_records
from monai_cwcd.evaluation.report import write_results_doc
from monai_cwcd.evaluation.metrics import (
    METRICS,
    dataset_label_names,
    evaluate_folders,
    find_cases,
    pair_cases,
    load_label_map,
    plot_per_class_bars,
    segmentation_metrics,
    summarize_cases,
)

__all__ = [
    "AUGMENTATIONS",
    "BASELINE_LOSSES",
    "build_augmentation",
    "NETWORKS",
    "RunConfig",
    "compare_losses",
    "default_configs",
    "METRICS",
    "dataset_label_names",
    "evaluate_folders",
    "find_cases",
    "pair_cases",
    "load_label_map",
    "plot_per_class_bars",
    "segmentation_metrics",
    "summarize_cases",
    "pack_records",
    "unpack_records",
    "write_results_doc",
]
