"""Python helpers shared by the three bundles' configs, and the export to the model-zoo layout.

The configs (``bundles/<name>/*.json``) stay in MONAI's key vocabulary and call these helpers for
logic that would otherwise be copied three times: the early dataset check, the paper's linear
learning-rate decay, BraTS region maps back to BraTS labels, and the export.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch.optim.lr_scheduler import LambdaLR

__all__ = [
    "BUNDLE_NAMES",
    "BUNDLES_DIR",
    "CONFIG_FILES",
    "bundle_dir",
    "check_dataset_dir",
    "LinearDecayAfter",
    "linear_decay_after",
    "brats_regions_to_label",
    "export_bundle",
]

BUNDLE_NAMES: tuple[str, ...] = ("amos", "brats", "pengwin")
BUNDLES_DIR = Path(__file__).resolve().parent.parent / "bundles"
"""The repository's ``bundles/`` folder (present in a source checkout / editable install)."""

CONFIG_FILES: tuple[str, ...] = (
    "train.json",
    "inference.json",
    "evaluate.json",
    "multi_gpu_train.json",
    "demo.json",
    "metadata.json",
    "logging.conf",
)
"""Files of ``bundles/<name>/`` that go to ``configs/`` in the model-zoo layout."""

_DATASET_HINTS = {
    "amos": "the AMOS22 folder holding dataset.json, imagesTr/ and labelsTr/",
    "brats": "the BraTS 2021 training folder with one BraTS2021_XXXXX/ folder per case",
    "pengwin": "the PENGWIN task-1 folder with the CT and label .mha files",
}


def bundle_dir(name: str | os.PathLike) -> Path:
    """Folder of a bundle: one of :data:`BUNDLE_NAMES` (in the repository's ``bundles/``) or a path.

    Raises:
        FileNotFoundError: when the folder does not exist.
    """
    path = BUNDLES_DIR / str(name) if str(name) in BUNDLE_NAMES else Path(name)
    if not (path / "train.json").is_file():
        raise FileNotFoundError(
            f"bundle '{name}' not found: expected {path / 'train.json'} (names: {', '.join(BUNDLE_NAMES)} "
            "from a source checkout of monai-cwcd, or a bundle folder path)."
        )
    return path


def check_dataset_dir(dataset_dir: str | os.PathLike | None, bundle: str = "amos") -> str:
    """Fail at once, with instructions, when the bundle's ``dataset_dir`` is missing.

    The bundles call it first in ``initialize``, before any dataset, network or cache is built.

    Example:
        >>> check_dataset_dir("/no/such/dir", "amos")   # doctest: +SKIP
        FileNotFoundError: dataset_dir '/no/such/dir' does not exist. ...

    Args:
        dataset_dir: the config's ``dataset_dir``.
        bundle: bundle name used in the message. Defaults to ``"amos"``.

    Returns:
        ``dataset_dir`` as a string.

    Raises:
        FileNotFoundError: when ``dataset_dir`` is empty or not an existing folder.
    """
    if dataset_dir and os.path.isdir(dataset_dir):
        return os.fspath(dataset_dir)
    hint = _DATASET_HINTS.get(bundle, "the dataset folder")
    raise FileNotFoundError(
        f"dataset_dir '{dataset_dir}' does not exist. Pass {hint} on the command line:\n"
        f"  python -m monai.bundle run --config_file bundles/{bundle}/train.json --dataset_dir /path/to/data\n"
        f"or run the CPU demo on synthetic data (written to ~/.cache/monai_cwcd, override with MONAI_CWCD_CACHE):\n"
        f"  python -m monai.bundle run --config_file \"['bundles/{bundle}/train.json','bundles/{bundle}/demo.json']\""
    )


class LinearDecayAfter:
    """Learning-rate factor for ``LambdaLR``: 1 for the first ``start_epoch`` epochs, then linear
    decay so that the rate reaches ``end_lr`` after ``epochs`` epochs (journal paper ``000``
    Sec. II-E: "the learning rate linearly decaying to 1e-6 after 20 epochs").

    ``factor(e) = 1`` for ``e < start_epoch``, else
    ``1 - (1 - end_lr / base_lr) * min(1, (e - start_epoch) / (epochs - start_epoch))``,
    with ``e`` the number of completed epochs (``LrScheduleHandler`` steps once per epoch).

    A plain object with numbers only, so ``LambdaLR.state_dict()`` saves and restores it.

    Args:
        epochs: total epochs of the schedule.
        base_lr: the optimizer's initial learning rate.
        start_epoch: epochs at the initial rate. Defaults to 20.
        end_lr: final learning rate. Defaults to 1e-6.

    Raises:
        ValueError: for a non-positive ``base_lr`` or ``epochs``, a negative ``start_epoch`` or
            ``end_lr`` above ``base_lr``.
    """

    def __init__(self, epochs: int, base_lr: float, start_epoch: int = 20, end_lr: float = 1e-6) -> None:
        if epochs < 1 or base_lr <= 0 or start_epoch < 0 or not 0 <= end_lr <= base_lr:
            raise ValueError(
                f"LinearDecayAfter needs epochs >= 1, base_lr > 0, start_epoch >= 0 and 0 <= end_lr <= base_lr; "
                f"got epochs={epochs}, base_lr={base_lr}, start_epoch={start_epoch}, end_lr={end_lr}."
            )
        self.epochs = int(epochs)
        self.base_lr = float(base_lr)
        self.start_epoch = int(start_epoch)
        self.end_lr = float(end_lr)

    def __call__(self, epoch: int) -> float:
        if epoch < self.start_epoch or self.epochs <= self.start_epoch:
            return 1.0
        progress = min(1.0, (epoch - self.start_epoch) / (self.epochs - self.start_epoch))
        return 1.0 - (1.0 - self.end_lr / self.base_lr) * progress


def linear_decay_after(
    optimizer: torch.optim.Optimizer, epochs: int, start_epoch: int = 20, end_lr: float = 1e-6
) -> LambdaLR:
    """``LambdaLR`` with :class:`LinearDecayAfter` (the BraTS and PENGWIN schedule of paper ``000``).

    Example:
        >>> opt = torch.optim.Adam([torch.nn.Parameter(torch.zeros(1))], lr=3e-4)
        >>> sched = linear_decay_after(opt, epochs=100)

    Args:
        optimizer: the optimizer; its first parameter group's ``lr`` is the base rate.
        epochs: total epochs.
        start_epoch: epochs at the initial rate. Defaults to 20.
        end_lr: final learning rate. Defaults to 1e-6.
    """
    base_lr = optimizer.param_groups[0].get("initial_lr", optimizer.param_groups[0]["lr"])
    return LambdaLR(optimizer, LinearDecayAfter(epochs, base_lr, start_epoch, end_lr))


def brats_regions_to_label(regions: torch.Tensor) -> torch.Tensor:
    """Binary BraTS regions (TC, WT, ET), shape (3, *spatial), back to one BraTS label map
    (1, *spatial) with 1 = necrotic core (TC without ET), 2 = oedema (WT without TC), 4 = ET.

    The inverse of MONAI's ``ConvertToMultiChannelBasedOnBratsClasses`` for nested regions; an ET
    voxel outside TC still becomes 4, a TC voxel outside WT still becomes 1. A ``MetaTensor`` keeps
    its metadata.

    Example:
        >>> r = torch.zeros(3, 2, 2, 1); r[1] = 1; r[0, 0] = 1; r[2, 0, 0] = 1
        >>> brats_regions_to_label(r)[0, ..., 0]
        tensor([[4., 1.],
                [2., 2.]])

    Raises:
        ValueError: when the first axis is not 3.
    """
    if regions.shape[0] != 3:
        raise ValueError(f"expected BraTS regions (TC, WT, ET) of shape (3, *spatial), got {tuple(regions.shape)}.")
    tc, wt, et = (regions[i : i + 1] > 0.5 for i in range(3))
    out = torch.zeros_like(regions[:1])
    out[wt] = 2
    out[tc] = 1
    out[et] = 4
    return out


def _load_json(path: Path) -> Any:
    with open(path) as f:
        return json.load(f)


def _write_json(path: Path, content: Any) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(content, indent=4) + "\n")
    os.replace(tmp, path)


def export_bundle(
    name: str | os.PathLike,
    output_dir: str | os.PathLike,
    checkpoint: str | os.PathLike | None = None,
    key_in_ckpt: str = "model",
) -> str:
    """Write a bundle in the MONAI model-zoo layout::

        output_dir/
          configs/  train.json inference.json evaluate.json multi_gpu_train.json demo.json
                    metadata.json logging.conf      ("bundle_root" set to ".")
          models/   model.pt                         (only when ``checkpoint`` is given)
          docs/     README.md
          LICENSE

    Run the exported bundle from ``output_dir`` as in the model zoo, e.g.
    ``python -m monai.bundle run --config_file configs/train.json`` or
    ``python -m monai.bundle verify_metadata --meta_file configs/metadata.json --filepath
    <schema.json>`` (offline schema: ``monai_cwcd/schemas/meta_schema.json``).

    Example:
        >>> export_bundle("amos", "/tmp/amos_bundle", checkpoint="runs/amos_demo/model.pt")  # doctest: +SKIP

    Args:
        name: ``"amos"``, ``"brats"``, ``"pengwin"`` or the path of a bundle folder.
        output_dir: destination folder (created; existing files with the same names are replaced).
        checkpoint: a checkpoint saved by the bundle (``{"model": state_dict, ...}``) or a bare
            network ``state_dict``; written to ``models/model.pt`` as ``{key_in_ckpt: state_dict}``.
            Defaults to None (no ``models/`` content).
        key_in_ckpt: key of the network weights in the checkpoint. Defaults to ``"model"``.

    Returns:
        ``output_dir`` as a string.

    Raises:
        FileNotFoundError: unknown bundle or missing checkpoint file.
        ValueError: a checkpoint that cannot be loaded with ``weights_only=True`` (the message names
            the cause) or holds neither ``key_in_ckpt`` nor a plain state dict.
    """
    src = bundle_dir(name)
    out = Path(output_dir)
    if checkpoint is not None and not os.path.isfile(checkpoint):
        raise FileNotFoundError(f"checkpoint '{checkpoint}' does not exist.")
    if checkpoint is not None:  # read before anything is written: a bad checkpoint leaves no partial bundle
        from monai_cwcd.handlers.checkpoint import load_checkpoint

        ckpt = load_checkpoint(checkpoint, map_location="cpu")
        if isinstance(ckpt, dict) and key_in_ckpt in ckpt:
            weights = ckpt[key_in_ckpt]
        elif isinstance(ckpt, dict) and ckpt and all(isinstance(v, torch.Tensor) for v in ckpt.values()):
            weights = ckpt
        else:
            keys = sorted(ckpt) if isinstance(ckpt, dict) else type(ckpt).__name__
            raise ValueError(f"checkpoint '{checkpoint}' has no '{key_in_ckpt}' entry and is not a state dict: {keys}.")
    for sub in ("configs", "models", "docs"):
        (out / sub).mkdir(parents=True, exist_ok=True)
    for fname in CONFIG_FILES:
        path = src / fname
        if not path.is_file():
            continue
        if path.suffix == ".json":
            content = _load_json(path)
            if isinstance(content, dict) and "bundle_root" in content:
                content["bundle_root"] = "."
            _write_json(out / "configs" / fname, content)
        else:
            shutil.copyfile(path, out / "configs" / fname)
    if (src / "docs").is_dir():
        shutil.copytree(src / "docs", out / "docs", dirs_exist_ok=True)
    shutil.copyfile(src / "LICENSE", out / "LICENSE")
    if checkpoint is not None:
        tmp = out / "models" / ".model.pt.tmp"
        torch.save({key_in_ckpt: weights}, tmp)
        os.replace(tmp, out / "models" / "model.pt")
    return str(out)
