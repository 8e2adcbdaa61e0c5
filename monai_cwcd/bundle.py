"""Python helpers shared by the three bundles' configs, the run folder, and the export to the
model-zoo layout.

The configs (``bundles/<name>/*.json``) stay in MONAI's key vocabulary and call these helpers for
logic that would otherwise be copied three times: the early dataset check, the paper's linear
learning-rate decay, BraTS region maps back to BraTS labels, the run folder and the export.

A training run's ``output_dir`` is its *run folder*, laid out like a MONAI bundle::

    runs/amos_demo/
      configs/train.json      the run's config, every override applied (written when training starts)
      configs/inference.json  evaluate.json metadata.json logging.conf ...  (the bundle's, for the export)
      docs/README.md  LICENSE
      models/model.pt         best validation mean Dice; model_last.pt, model_final.pt
      metrics.csv  metrics.json  training_curves.png  events.out.tfevents.*   (training)
      predictions/            inference.json (one segmentation per input image)
      evaluation/             evaluate.json (per-case metrics of the test split)

``inference.json`` and ``evaluate.json`` take ``--run_dir <run folder>`` and read the network, patch
size, spacing and class names from ``configs/train.json`` through :class:`RunConfig`, so nothing of
the training command is repeated; a checkpoint that does not fit that network fails with one line
(:func:`load_network_checkpoint`).
"""

from __future__ import annotations

import glob
import inspect
import json
import logging
import math
import os
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from copy import deepcopy
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
    "check_pixdim",
    "LinearDecayAfter",
    "linear_decay_after",
    "brats_regions_to_label",
    "brats_nest_regions",
    "RUN_CONFIG",
    "save_run_config",
    "RunConfig",
    "load_network_checkpoint",
    "dataset_test_images",
    "image_datalist",
    "prediction_name_formatter",
    "log_prediction",
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
        f"or run the CPU demo on synthetic data (written to {_demo_cache()}; MONAI_CWCD_CACHE chooses another folder):\n"
        f"  python -m monai.bundle run --config_file \"['bundles/{bundle}/train.json','bundles/{bundle}/demo.json']\""
    )


def _demo_cache() -> str:
    """Where the demo datasets are written (``$MONAI_CWCD_CACHE`` or ``~/.cache/monai_cwcd``)."""
    from monai_cwcd.data.synthetic import default_cache_root

    return default_cache_root()


def check_pixdim(pixdim: Any, spatial_dims: int = 3) -> Any:
    """Check the bundles' ``pixdim`` (the voxel spacing ``Spacingd`` resamples to, in mm, also the
    spacing of the contour width in mm): ``spatial_dims`` positive finite numbers, or one for every
    axis. :func:`save_run_config` calls it before a training run writes anything (``inference.json``
    and ``evaluate.json`` read the checked value from the run). MONAI's ``Spacingd`` alone would
    silently repeat the last value of a short list and read a value <= 0 as "keep the image's
    spacing".

    Example:
        >>> check_pixdim([1.0, 1.0, 1.0])
        [1.0, 1.0, 1.0]

    Args:
        pixdim: the config's ``pixdim``.
        spatial_dims: number of spatial axes. Defaults to 3.

    Returns:
        ``pixdim`` unchanged.

    Raises:
        ValueError: naming ``pixdim``, the value given and what is expected.
    """
    values = pixdim.tolist() if hasattr(pixdim, "tolist") else pixdim
    values = [values] if isinstance(values, (int, float)) else values
    ok = isinstance(values, Sequence) and not isinstance(values, (str, bytes)) and len(values) in (1, spatial_dims)
    ok = ok and all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and v > 0 for v in values)
    if not ok:
        raise ValueError(
            f"pixdim must be {spatial_dims} positive numbers (mm), the voxel spacing along each spatial axis "
            f"(or one number for all axes), e.g. --pixdim \"{json.dumps([1.0] * spatial_dims).replace(' ', '')}\"; got {pixdim!r}."
        )
    return pixdim


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


def _brats_masks(regions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The TC, WT and ET masks (each (1, *spatial), bool, threshold 0.5) of BraTS regions (3, *spatial).

    Raises:
        ValueError: when the first axis is not 3.
    """
    if regions.shape[0] != 3:
        raise ValueError(f"expected BraTS regions (TC, WT, ET) of shape (3, *spatial), got {tuple(regions.shape)}.")
    tc, wt, et = (regions[i : i + 1] > 0.5 for i in range(3))
    return tc, wt, et


def brats_regions_to_label(regions: torch.Tensor) -> torch.Tensor:
    """Binary BraTS regions (TC, WT, ET), shape (3, *spatial), back to one BraTS label map
    (1, *spatial) with 1 = necrotic core (TC without ET), 2 = oedema (WT without TC), 4 = ET.

    The inverse of MONAI's ``ConvertToMultiChannelBasedOnBratsClasses`` for nested regions; an ET
    voxel outside TC still becomes 4, a TC voxel outside WT still becomes 1, so the map's regions
    are :func:`brats_nest_regions` of the input (what the bundle's validation scores). A
    ``MetaTensor`` keeps its metadata.

    Example:
        >>> r = torch.zeros(3, 2, 2, 1); r[1] = 1; r[0, 0] = 1; r[2, 0, 0] = 1
        >>> brats_regions_to_label(r)[0, ..., 0]
        tensor([[4., 1.],
                [2., 2.]])

    Raises:
        ValueError: when the first axis is not 3.
    """
    tc, wt, et = _brats_masks(regions)
    out = torch.zeros_like(regions[:1])
    out[wt] = 2
    out[tc] = 1
    out[et] = 4
    return out


def brats_nest_regions(regions: torch.Tensor) -> torch.Tensor:
    """Binary BraTS regions (TC, WT, ET), shape (3, *spatial), made nested as the BraTS labels are:
    TC := TC or ET, WT := WT or TC or ET, ET unchanged. These are exactly the regions of the label
    map that :func:`brats_regions_to_label` writes, so Dice computed on them (the bundle's
    validation and ``evaluate.json``) equals Dice computed from the written prediction files. A
    trained model's regions are nearly nested already; an untrained one's ET channel may fire
    outside WT, and without this the two evaluations disagree. A ``MetaTensor`` keeps its metadata.

    Example:
        >>> r = torch.zeros(3, 1, 2, 1); r[2, 0, 0] = 1  # ET alone
        >>> brats_nest_regions(r)[:, 0, :, 0]
        tensor([[1., 0.],
                [1., 0.],
                [1., 0.]])

    Raises:
        ValueError: when the first axis is not 3.
    """
    tc, wt, et = _brats_masks(regions)
    tc = tc | et
    wt = wt | tc
    out = regions.clone() if regions.is_floating_point() else regions.clone().float()
    out[0:1], out[1:2], out[2:3] = tc.to(out.dtype), wt.to(out.dtype), et.to(out.dtype)
    return out


RUN_CONFIG = "configs/train.json"
"""Path, inside a run folder (a training run's ``output_dir``), of the run's saved config."""

_IMAGE_SUFFIXES = (".nii.gz", ".nii", ".mha", ".mhd", ".nrrd")
_MODALITY_SUFFIXES = ("_flair", "_t1ce", "_t1", "_t2", "_0000")
_logger = logging.getLogger("monai_cwcd.bundle")


def _running_workflow() -> tuple[Any, Any]:
    """``(ConfigWorkflow or None, ConfigParser or None)`` evaluating the current config expression.

    ``monai.bundle run`` evaluates ``initialize`` in ``ConfigWorkflow.initialize`` through its
    ``ConfigParser``; both are found on the call stack (MONAI passes neither to expressions).
    """
    from monai.bundle import ConfigParser, ConfigWorkflow

    workflow, parser = None, None
    frame = inspect.currentframe()
    try:
        while frame is not None and workflow is None:
            obj = frame.f_locals.get("self")
            if isinstance(obj, ConfigWorkflow):
                workflow = obj
            elif parser is None and isinstance(obj, ConfigParser):
                parser = obj
            frame = frame.f_back
    finally:
        del frame
    if workflow is not None:
        parser = workflow.parser
    return workflow, parser


def _bundle_layout(src: Path) -> tuple[Path, Path]:
    """``(folder of the config files, bundle root)`` of a bundle folder in the repository layout
    (``train.json`` at the root), the model-zoo / run-folder layout (``configs/train.json``) or of
    a ``configs/`` folder itself."""
    if (src / RUN_CONFIG).is_file():
        return src / "configs", src
    if src.name == "configs":
        return src, src.parent
    return src, src


def _copy_bundle_files(src: Path, out: Path, overrides: Mapping[str, Mapping[str, Any]], skip: Sequence[str] = ()) -> None:
    """Copy the bundle files of ``src`` (see :func:`_bundle_layout`) to ``out`` in the model-zoo
    layout (``configs/``, ``docs/``, ``LICENSE``); ``overrides[file]`` (``"*"``: every JSON file)
    sets top-level keys of that file (``"*"``: of every JSON config that has the key)."""
    configs, root = _bundle_layout(src)
    (out / "configs").mkdir(parents=True, exist_ok=True)
    for fname in CONFIG_FILES:
        path = configs / fname
        if fname in skip or not path.is_file():
            continue
        if path.suffix == ".json":
            content = _load_json(path)
            if isinstance(content, dict):
                content.update({k: v for k, v in overrides.get("*", {}).items() if k in content})
                content.update(overrides.get(fname, {}))
            _write_json(out / "configs" / fname, content)
        else:
            _copy_file(path, out / "configs" / fname)
    if (root / "docs").is_dir() and (root / "docs").resolve() != (out / "docs").resolve():
        shutil.copytree(root / "docs", out / "docs", dirs_exist_ok=True)
    if (root / "LICENSE").is_file() and (root / "LICENSE").resolve() != (out / "LICENSE").resolve():
        _copy_file(root / "LICENSE", out / "LICENSE")


def save_run_config(output_dir: str | os.PathLike, ckpt_dir: str | os.PathLike | None = None) -> str:
    """Save the config of the running training into its run folder ``output_dir``.

    Called from ``train.json``'s ``initialize`` (before any dataset is built), it writes atomically
    ``<output_dir>/configs/train.json``: the merged config of every ``--config_file`` with every
    command-line override applied (as MONAI's ``save_execute_config`` does for MLflow runs), with
    ``output_dir`` and ``ckpt_dir`` as resolved for this run (``ckpt_dir`` relative to
    ``output_dir`` when inside it, so the run folder can be moved). Beside it go the bundle's other
    files (``inference.json``, ``evaluate.json``, ``metadata.json``, ``logging.conf``, ``docs/``,
    ``LICENSE``), so the run folder is a complete bundle that :func:`export_bundle` can publish.

    Example (``train.json``)::

        "initialize": ["$monai_cwcd.bundle.save_run_config(@output_dir, @ckpt_dir)", ...]

    Args:
        output_dir: the run folder (the config's resolved ``output_dir``).
        ckpt_dir: the config's resolved ``ckpt_dir``. Defaults to None (the config's own value).

    Returns:
        the path of the saved config.

    A run folder holds one run: when it already holds a saved config whose network, classes,
    spacing or dataset differ from this one (e.g. the demo re-run with ``--network_def
    %demo_unet``), the run stops before anything is written, since the two runs' checkpoints and
    outputs would be mixed; ``--resume true`` continues the saved run instead.

    Raises:
        RuntimeError: when not called from a config evaluated by ``monai.bundle`` (no
            ``ConfigParser`` on the call stack).
        ValueError: ``output_dir`` already holds another run (the message names the first
            differing key and both values); a bad ``pixdim`` (:func:`check_pixdim`).
    """
    workflow, parser = _running_workflow()
    if parser is None:
        raise RuntimeError(
            "save_run_config must be called from a config expression evaluated by `python -m monai.bundle run` "
            "(e.g. train.json's initialize)."
        )
    run = Path(output_dir)
    if "pixdim" in parser:
        dims = parser.get("network_def#spatial_dims", 3)
        check_pixdim(parser.get_parsed_content("pixdim"), dims if isinstance(dims, int) else 3)
    _check_same_run(run / RUN_CONFIG, parser.get())
    before = set(os.listdir(run)) if run.is_dir() else None
    config = deepcopy(parser.get())
    config.pop("_meta_", None)  # metadata.json is saved beside it
    config["output_dir"] = os.fspath(output_dir)
    if ckpt_dir is not None:
        rel = os.path.relpath(os.path.abspath(ckpt_dir), os.path.abspath(output_dir))
        if rel == ".":
            config["ckpt_dir"] = "@output_dir"
        elif rel != ".." and not rel.startswith(".." + os.sep):
            config["ckpt_dir"] = f"$@output_dir + '/{Path(rel).as_posix()}'"
        else:
            config["ckpt_dir"] = os.path.abspath(ckpt_dir)
    if workflow is not None and getattr(workflow, "config_root_path", None) is not None:
        src = Path(workflow.config_root_path)
        if (_bundle_layout(src)[0] / "train.json").is_file():
            # the copies of inference.json / evaluate.json read this run by default
            _copy_bundle_files(
                src, run, {"*": {"bundle_root": run.as_posix(), "run_dir": run.as_posix()}}, skip=("train.json",)
            )
    _warn_if_retraining(run, Path(ckpt_dir) if ckpt_dir is not None else run, config)
    path = run / RUN_CONFIG
    _write_json(path, config)
    from monai_cwcd.errors import on_failure

    on_failure(lambda: _remove_unstarted_run(run, before))
    return str(path)


#: outputs derived from a run's model by the later steps (inference, evaluation, export)
_DERIVED = ("predictions", "predictions_evaluation", "evaluation", "export", "model.ts")


def _warn_if_retraining(run: Path, ckpt_dir: Path, config: Mapping[str, Any]) -> None:
    """Training from scratch (no ``--resume``) into a run folder that already holds this run's
    checkpoints replaces them, as ``monai.bundle run`` always does; say so in one warning line,
    naming the outputs of the previous model that stay behind."""
    if config.get("resume") in (True, "true", "True"):
        return
    old = [ckpt_dir / f for f in ("model.pt", "model_last.pt") if (ckpt_dir / f).is_file()]
    if not old:
        return
    stale = [name for name in _DERIVED if (run / name).exists()]
    logging.getLogger("monai_cwcd.bundle").warning(
        "run folder '%s' already holds a trained run (%s): training again from scratch replaces its checkpoints and "
        "metrics%s; --resume true continues it instead, --output_dir <new folder> keeps it.",
        run, old[0].name, f"; {', '.join(stale)} stay behind, made with the previous model" if stale else "",
    )


#: what :func:`save_run_config` writes into a run folder (plus TensorBoard's ``events.*`` files)
_STARTED_NAMES = ("configs", "docs", "LICENSE")


def _remove_unstarted_run(run: Path, before: set[str] | None) -> None:
    """After a failed run: remove what this run wrote into ``run`` (its saved config, ``docs/``,
    ``LICENSE``, TensorBoard event files, empty folders such as a checkpoint folder; the folder
    itself if this run created it) when the run wrote nothing else (no checkpoint, no metrics), so a
    run that fails at the start (a bad dataset, a bad setting) leaves no half-written run folder
    behind. ``before``: the folder's entries before the run (None: it did not exist). A run that got
    further keeps everything (``--resume``)."""
    if not run.is_dir():
        return
    new = set(os.listdir(run)) - (before or set())

    def produced(name: str) -> bool:  # a checkpoint, metrics, a curve... (an empty folder, e.g. models/, is not)
        path = run / name
        if name in _STARTED_NAMES or name.startswith("events."):
            return False
        return not path.is_dir() or path.is_symlink() or any(p.is_file() for p in path.rglob("*"))

    if any(produced(name) for name in new):
        return
    for name in new:
        target = run / name
        if target.is_dir() and not target.is_symlink():
            shutil.rmtree(target, ignore_errors=True)
        else:
            target.unlink(missing_ok=True)
    if before is None:
        try:
            run.rmdir()
        except OSError:  # not empty: something else wrote into it meanwhile
            pass


#: keys of a saved run config that make another run's checkpoints and outputs incompatible
_RUN_IDENTITY = ("network_def", "num_classes", "pixdim", "dataset_dir")


def _check_same_run(path: Path, config: Mapping[str, Any]) -> None:
    """Refuse to save ``config`` over the saved config of a different run (see :func:`save_run_config`)."""
    if not path.is_file():
        return
    try:
        saved = _load_json(path)
    except (OSError, ValueError):
        return  # not a readable run config: nothing to protect
    for key in _RUN_IDENTITY:
        if key in saved and saved.get(key) != config.get(key):
            run = path.parent.parent
            raise ValueError(
                f"run folder '{run}' already holds another run: its {key} is {json.dumps(saved.get(key))[:120]}, "
                f"this run's is {json.dumps(config.get(key))[:120]}; train into a new folder (--output_dir "
                f"{run}_2) or remove '{run}' (its checkpoints and outputs would be mixed with this run's)."
            )


def _state_dict_of(ckpt: Any, key_in_ckpt: str, ckpt_path: str | os.PathLike) -> dict:
    if isinstance(ckpt, Mapping) and key_in_ckpt and key_in_ckpt in ckpt:
        return ckpt[key_in_ckpt]
    if isinstance(ckpt, Mapping) and ckpt and all(isinstance(v, torch.Tensor) for v in ckpt.values()):
        return dict(ckpt)
    keys = sorted(ckpt) if isinstance(ckpt, Mapping) else type(ckpt).__name__
    raise ValueError(f"checkpoint '{ckpt_path}' has no '{key_in_ckpt}' entry and is not a state dict: {keys}.")


def _first_mismatch(network: torch.nn.Module, weights: Mapping[str, Any]) -> tuple[str, str] | None:
    """``(description of the first tensor that differs, counts of the differences)`` or None."""
    own = network.state_dict()
    problems = []
    for name, tensor in own.items():
        if name not in weights:
            problems.append(f"tensor '{name}' {tuple(tensor.shape)} of the network is missing from the checkpoint")
        elif tuple(weights[name].shape) != tuple(tensor.shape):
            problems.append(
                f"tensor '{name}' has shape {tuple(weights[name].shape)} in the checkpoint and {tuple(tensor.shape)} in the network"
            )
    unfit = len(problems)
    problems += [f"checkpoint tensor '{name}' {tuple(weights[name].shape)} has no counterpart in the network" for name in weights if name not in own]
    counts = f"{unfit} of the network's {len(own)} tensors missing or of another shape, {len(problems) - unfit} checkpoint tensors unused"
    return (problems[0], counts) if problems else None


def load_network_checkpoint(
    network: torch.nn.Module,
    ckpt_path: str | os.PathLike,
    config: str | os.PathLike = "",
    key_in_ckpt: str = "model",
) -> torch.nn.Module:
    """Load the weights of a checkpoint saved by the bundles into ``network`` (in place), checking
    first that they fit: a checkpoint of another network or other sizes fails with one line naming
    the checkpoint, the config and the first differing tensor, instead of PyTorch's list of
    ``size mismatch`` lines.

    Example:
        >>> net = load_network_checkpoint(RunConfig("runs/amos_demo")["network_def"], "runs/amos_demo/models/model.pt")  # doctest: +SKIP

    Args:
        network: the network built from ``config``.
        ckpt_path: a checkpoint ``{key_in_ckpt: state_dict, ...}`` or a bare ``state_dict``.
        config: the config the network was built from, named in the error. Defaults to ``""``.
        key_in_ckpt: key of the network weights in the checkpoint. Defaults to ``"model"``.

    Returns:
        ``network`` with the weights loaded.

    Raises:
        FileNotFoundError: ``ckpt_path`` does not exist.
        ValueError: the checkpoint holds no state dict, or one that does not fit ``network``.
    """
    from monai_cwcd.handlers.checkpoint import load_checkpoint  # names the real cause of an unreadable file

    if not os.path.isfile(ckpt_path):
        raise FileNotFoundError(f"checkpoint '{ckpt_path}' does not exist.")
    weights = _state_dict_of(load_checkpoint(ckpt_path, map_location="cpu"), key_in_ckpt, ckpt_path)
    mismatch = _first_mismatch(network, weights)
    if mismatch is not None:
        what, counts = mismatch
        built = f"the network of config '{config}'" if config else f"network {type(network).__name__}"
        raise ValueError(f"checkpoint '{ckpt_path}' does not fit {built}: {what} ({counts}).")
    network.load_state_dict(weights)
    return network


class RunConfig:
    """The saved config of a training run, read from its run folder: ``<run_dir>/configs/train.json``
    (written by :func:`save_run_config` when the run starts; an exported bundle has the same layout).

    ``inference.json`` and ``evaluate.json`` take ``--run_dir`` and read from it the run's
    ``network_def``, ``patch_size``, ``pixdim``, ``num_classes``, ``class_names`` and
    ``dataset_dir``, so none of the training overrides is repeated.

    Example (``inference.json``)::

        "run_config": "$monai_cwcd.bundle.RunConfig(@run_dir)",
        "patch_size": "$@run_config['patch_size']",
        "network_def": "$@run_config['network_def']",
        "network": "$monai_cwcd.bundle.load_network_checkpoint(@network_def, @ckpt_path, @run_config.config_file).to(@device)"

    Args:
        run_dir: the run folder (the ``output_dir`` of the training run, or an exported bundle).

    Raises:
        FileNotFoundError: ``run_dir`` holds no ``configs/train.json``.
    """

    def __init__(self, run_dir: str | os.PathLike) -> None:
        from monai.bundle import ConfigParser

        self.run_dir = Path(run_dir)
        self.config_file = str(self.run_dir / RUN_CONFIG)
        if not os.path.isfile(self.config_file):
            raise FileNotFoundError(
                f"run_dir '{run_dir}' holds no {RUN_CONFIG}: pass the output_dir of a training run (it saves "
                f"{RUN_CONFIG} when it starts), e.g. --run_dir runs/amos_demo (the demos' run folders: runs/amos_demo, "
                "runs/brats_demo, runs/pengwin_demo)."
            )
        self.parser = ConfigParser()
        self.parser.read_config(f=self.config_file)
        self.parser["output_dir"] = os.fspath(run_dir)  # paths inside the run follow the folder

    def __contains__(self, id: str) -> bool:
        return id in self.parser

    def __getitem__(self, id: str) -> Any:
        """The run's value of ``id`` (``"#"``-separated), resolved: references and expressions
        evaluated, components (e.g. ``network_def``) instantiated once.

        Raises:
            KeyError: ``id`` is not in the run's config.
        """
        if id not in self.parser:
            raise KeyError(f"'{id}' is not in the run config {self.config_file}.")
        return self.parser.get_parsed_content(id)

    def get(self, id: str, default: Any = None) -> Any:
        """``self[id]``, or ``default`` when the run's config has no ``id``."""
        return self[id] if id in self else default

    def checkpoint(self, name: str = "model.pt") -> str:
        """Path of checkpoint ``name`` of the run (in its ``ckpt_dir``, by default ``<run_dir>/models``)."""
        ckpt_dir = self.get("ckpt_dir", None) or os.path.join(self.run_dir, "models")
        return os.path.join(os.fspath(ckpt_dir), name)

    def __repr__(self) -> str:
        return f"RunConfig({os.fspath(self.run_dir)!r})"


def _strip_suffix(name: str) -> str | None:
    low = name.lower()
    for ext in _IMAGE_SUFFIXES:
        if low.endswith(ext):
            return name[: -len(ext)]
    return None


def _amos_test_images(root: str) -> list[str]:
    from monai_cwcd.data import AMOS_MAX_CT_ID
    from monai_cwcd.data._utils import resolve_inside

    meta_path = os.path.join(root, "dataset.json")
    if not os.path.isfile(meta_path):
        raise FileNotFoundError(f"AMOS: no dataset.json in '{root}' (expected the AMOS22 folder as dataset_dir).")
    with open(meta_path) as f:
        entries = json.load(f).get("test", []) or []
    images = []
    for entry in entries:
        rel = entry.get("image") if isinstance(entry, Mapping) else entry
        if not isinstance(rel, str):
            raise ValueError(f"AMOS: malformed 'test' entry {entry!r} in {meta_path}.")
        case_id = _strip_suffix(os.path.basename(rel)) or os.path.basename(rel)
        digits = "".join(ch for ch in case_id.rsplit("_", 1)[-1] if ch.isdigit())
        if digits and int(digits) > AMOS_MAX_CT_ID:
            continue  # MRI: the bundle is trained on CT
        images.append(resolve_inside(root, rel, case_id, "dataset.json 'test'"))
    return images


def dataset_test_images(dataset: str, dataset_dir: str | os.PathLike) -> list:
    """The images ``inference.json`` predicts by default: the dataset's unlabelled test images.

    - AMOS: the CT entries (id <= 500) of ``dataset.json``'s ``"test"`` list (``imagesTs/``).
    - BraTS and PENGWIN: their public releases hold no unlabelled test images in the training
      layout (BraTS validation data and the PENGWIN test set are separate), so the images of the
      held-out ``"test"`` split (labels not read); pass other images with ``--images``.

    Args:
        dataset: ``"amos"``, ``"brats"`` or ``"pengwin"``.
        dataset_dir: the dataset folder.

    Returns:
        image paths (BraTS: one list of the 4 modality paths per case).

    Raises:
        ValueError: no test image, with a hint to pass ``--images``.
    """
    from monai_cwcd.data import load_datalist

    root = os.fspath(dataset_dir)
    if dataset == "amos":
        images = _amos_test_images(root)
        where = f"the 'test' list of {os.path.join(root, 'dataset.json')}"
    else:
        images = [c["image"] for c in load_datalist(dataset, root, "test", validate=False)]
        where = f"the test split of '{root}'"
    if not images:
        raise ValueError(f"no image to predict in {where}; pass --images <folder, file or list of images>.")
    return images


def _brats_case_files(folder: str) -> list[str] | None:
    """The 4 modality files of a BraTS case folder, or None for a folder that holds none of the case's
    files (``<name>_{flair,t1,t1ce,t2,seg}.nii[.gz]``); a case folder missing a modality is an error."""
    from monai_cwcd.data import BRATS_MODALITIES
    from monai_cwcd.data.brats import brats_case_files

    name = os.path.basename(os.path.normpath(folder))
    if not any(os.path.isfile(os.path.join(folder, f"{name}_{m}{ext}")) for m in BRATS_MODALITIES + ("seg",) for ext in (".nii.gz", ".nii")):
        return None
    return list(brats_case_files(folder, label=False).values())


def _is_image_file(path: str) -> bool:
    name = os.path.basename(path)
    stem = _strip_suffix(name)
    return os.path.isfile(path) and stem is not None and not name.startswith(".") and not stem.endswith("_contour")


def _case_name(path: str) -> str:
    """Case id of an input image: its file name without extension and modality suffix (``_flair``, ...)."""
    stem = _strip_suffix(os.path.basename(path)) or os.path.basename(path)
    for m in _MODALITY_SUFFIXES:
        if stem.endswith(m) and len(stem) > len(m):
            return stem[: -len(m)]
    return stem


_BRATS_INPUT = "a BraTS case folder (BraTS2021_XXXXX/ with the flair, t1, t1ce and t2 .nii.gz files), a folder of case folders or a list of the 4 files"
_IMAGE_INPUT = "an image file (.nii.gz, .nii, .mha, .mhd, .nrrd), a folder or a glob pattern"


def image_datalist(images: str | os.PathLike | Sequence, dataset: str = "amos", validate: bool = True) -> list[dict]:
    """``[{"image": ...}, ...]`` for inference on any images: a folder, one file, a glob pattern or
    a list of them. Hidden files and contour maps (``*_contour.*``) are skipped.

    For BraTS an image is one case of 4 co-registered modalities: a case folder
    ``BraTS2021_XXXXX/`` holding ``BraTS2021_XXXXX_{flair,t1,t1ce,t2}.nii.gz`` (its ``_seg`` file, if
    any, is not read), a folder of such case folders (the BraTS validation release), or a list of
    the 4 files. A case folder that misses a modality is an error, not skipped.

    With ``validate``, every case's headers are checked before anything is predicted
    (:func:`monai_cwcd.data.datalist.check_case_images`): readable, complete, single-channel 3D
    volumes, a BraTS case's 4 modalities on one grid.

    Args:
        images: folder(s), file(s) or glob pattern(s).
        dataset: ``"amos"``, ``"brats"`` or ``"pengwin"``. Defaults to ``"amos"``.
        validate: check the headers of every case. Defaults to True.

    Raises:
        FileNotFoundError: an entry does not exist or matches no image, or nothing at all is found.
        DatasetError: a BraTS case folder misses a modality; with ``validate``, a bad file (naming the
            case, the file and, for a 4D or multi-channel image, its shape and what was expected).
    """
    from monai_cwcd.data.datalist import check_case_images

    entries = [images] if isinstance(images, (str, os.PathLike)) else list(images)
    out: list[dict] = []
    for entry in entries:
        if dataset == "brats" and isinstance(entry, (list, tuple)):
            out.append({"image": [os.fspath(p) for p in entry]})
            continue
        path = os.fspath(entry)
        if not os.path.exists(path) and glob.escape(path) == path:  # neither a file, a folder nor a pattern
            if dataset == "brats":
                raise FileNotFoundError(f"'{path}' does not exist; expected {_BRATS_INPUT}.")
            raise FileNotFoundError(f"'{path}' is not an image file: it does not exist; expected {_IMAGE_INPUT}.")
        if dataset == "brats":
            if os.path.isdir(path) and _brats_case_files(path):
                cases = [path]  # one case folder
            elif os.path.isdir(path):
                cases = sorted(p for p in glob.glob(os.path.join(glob.escape(path), "*")) if os.path.isdir(p))
            else:
                cases = sorted(p for p in glob.glob(path) if os.path.isdir(p))  # a pattern of case folders
            found = [f for f in (_brats_case_files(c) for c in cases) if f]
            if not found:
                raise FileNotFoundError(
                    f"'{path}' holds no BraTS case folder (BraTS2021_XXXXX/ with the flair, t1, t1ce and t2 .nii.gz files)."
                )
            out.extend({"image": f} for f in found)
            continue
        if os.path.isdir(path):
            found = sorted(p for p in glob.glob(os.path.join(glob.escape(path), "*")) if _is_image_file(p))
        else:
            found = sorted(p for p in glob.glob(path) if _is_image_file(p)) or ([path] if _is_image_file(path) else [])
        if not found:
            raise FileNotFoundError(f"'{path}' is not an image file (.nii.gz, .nii, .mha, .mhd, .nrrd) nor a folder or pattern holding one.")
        out.extend({"image": p} for p in found)
    if not out:
        raise FileNotFoundError("no image to predict: --images is empty.")
    if validate:
        for item in out:
            first = item["image"][0] if isinstance(item["image"], list) else item["image"]
            check_case_images(dataset, item["image"], _case_name(first))
    return out


def prediction_name_formatter(metadict: Mapping | None, saver: Any) -> dict:
    """``output_name_formatter`` of MONAI ``SaveImaged`` naming a prediction after its case: the
    input file name without extension and without a modality suffix (``_flair``, ``_t1``,
    ``_t1ce``, ``_t2``, ``_0000``), so ``BraTS2021_00000_flair.nii.gz`` gives
    ``BraTS2021_00000_seg.nii.gz`` like the BraTS labels. Otherwise as MONAI's default formatter."""
    from monai.data.folder_layout import default_name_formatter

    kwargs = default_name_formatter(metadict, saver)
    source = (metadict or {}).get("filename_or_obj", "")
    if isinstance(source, (list, tuple)):
        source = source[0] if source else ""
    stem = _strip_suffix(os.path.basename(os.fspath(source))) if source else None
    if stem:
        for m in _MODALITY_SUFFIXES:
            if stem.endswith(m) and len(stem) > len(m):
                stem = stem[: -len(m)]
                break
        kwargs["subject"] = os.path.join(os.path.dirname(os.fspath(source)), stem)
    return kwargs


def log_prediction(engine: Any) -> None:
    """``iteration_print_logger`` of MONAI ``StatsHandler`` in ``inference.json``: one log line per
    predicted case, ``case <id>: <input> -> <prediction> (<shape>)``."""
    for item in engine.state.output or []:
        pred = item.get("pred") if isinstance(item, Mapping) else None
        meta = getattr(pred, "meta", {}) or {}
        source = meta.get("filename_or_obj", "")
        if isinstance(source, (list, tuple)):
            source = source[0] if source else ""
        saved = meta.get("saved_to", "?")
        case = _strip_suffix(os.path.basename(os.fspath(saved))) or "?"
        shape = "x".join(str(int(s)) for s in tuple(pred.shape)[1:]) if pred is not None else "?"
        _logger.info("case %s: %s -> %s (%s)", case.removesuffix("_seg"), source, saved, shape)


def _copy_file(src: Path, dst: Path) -> None:
    tmp = dst.with_name(f".{dst.name}.tmp")
    shutil.copyfile(src, tmp)
    os.replace(tmp, dst)


def _load_json(path: Path) -> Any:
    with open(path) as f:
        return json.load(f)


def _write_json(path: Path, content: Any) -> None:
    from monai_cwcd.utils import atomic_output

    with atomic_output(path) as tmp:
        Path(tmp).write_text(json.dumps(content, indent=4) + "\n")


def export_bundle(
    source: str | os.PathLike,
    output_dir: str | os.PathLike,
    checkpoint: str | os.PathLike | None = None,
    key_in_ckpt: str = "model",
    overwrite: bool = False,
) -> str:
    """Write a bundle in the MONAI model-zoo layout::

        output_dir/
          configs/  train.json inference.json evaluate.json multi_gpu_train.json demo.json
                    metadata.json logging.conf      ("bundle_root" set to ".")
          models/   model.pt                         (a run's best checkpoint, or ``checkpoint``)
          docs/     README.md
          LICENSE

    ``source`` is a run folder (the ``output_dir`` of a training run): ``configs/train.json`` is then
    the run's config (every override applied) and ``models/model.pt`` its best checkpoint, so the
    exported ``inference.json`` rebuilds the trained network with no override. Or ``source`` is a
    bundle (``"amos"``, ``"brats"``, ``"pengwin"`` or a bundle folder) with its default config. Before
    anything is written, the checkpoint is loaded into the network built from the exported
    ``train.json`` (:func:`load_network_checkpoint`): one that does not fit fails with one line.

    The exported bundle is a run folder itself (``output_dir``, ``run_dir`` = ``"$@bundle_root"``);
    run it from ``output_dir`` as in the model zoo, e.g. ``python -m monai.bundle run --config_file
    configs/inference.json`` or ``python -m monai.bundle ckpt_export network_def --filepath
    models/model.ts --ckpt_file models/model.pt --key_in_ckpt model --meta_file
    configs/metadata.json --config_file configs/inference.json``.

    Example:
        >>> export_bundle("runs/amos_demo", "zoo/amos")  # doctest: +SKIP

    Args:
        source: a run folder, or a bundle name / folder.
        output_dir: destination folder; it must not exist or be empty, unless ``overwrite``.
        checkpoint: weights to export instead of the run's ``model.pt``: a checkpoint saved by the
            bundle (``{"model": state_dict, ...}``) or a bare ``state_dict``; written to
            ``models/model.pt`` as ``{key_in_ckpt: state_dict}``. Defaults to None (the run's best
            checkpoint; none for a bundle).
        key_in_ckpt: key of the network weights in the checkpoint. Defaults to ``"model"``.
        overwrite: replace a non-empty ``output_dir`` as a whole (no file of an earlier export, e.g.
            a TorchScript ``models/model.ts`` of another model, is left beside the new one).
            Defaults to False.

    Returns:
        ``output_dir`` as a string.

    Raises:
        FileNotFoundError: unknown bundle or run folder, missing checkpoint file.
        FileExistsError: ``output_dir`` exists and is not empty, without ``overwrite``.
        ValueError: a checkpoint that holds no state dict or does not fit the exported network.
    """
    from monai.bundle import ConfigParser

    src = Path(source)
    is_run = (src / RUN_CONFIG).is_file()
    if not is_run:
        if str(source) not in BUNDLE_NAMES and not (src / "train.json").is_file():
            raise FileNotFoundError(
                f"'{source}' is neither a run folder (no {src / RUN_CONFIG}) nor a bundle folder (no {src / 'train.json'}): "
                f"pass the output_dir of a training run (e.g. runs/amos_demo) or a bundle name ({', '.join(BUNDLE_NAMES)})."
            )
        src = bundle_dir(source)
    configs, _ = _bundle_layout(src)
    train_config = configs / "train.json"
    if checkpoint is None and is_run:
        checkpoint = RunConfig(src).checkpoint("model.pt")
    weights = None
    if checkpoint is not None:
        parser = ConfigParser()
        parser.read_config(f=str(train_config))
        network = load_network_checkpoint(parser.get_parsed_content("network_def"), checkpoint, str(train_config), key_in_ckpt)
        weights = network.state_dict()
    out = Path(output_dir)
    if out.exists() and (not out.is_dir() or any(out.iterdir())) and not overwrite:
        raise FileExistsError(
            f"export folder '{out}' already exists and is not empty; choose a new folder or pass --overwrite "
            "(replaces it as a whole, so no file of an earlier export is left beside this one)."
        )
    zoo = {
        "*": {"bundle_root": ".", "run_dir": "$@bundle_root"},
        "train.json": {"bundle_root": ".", "output_dir": "$@bundle_root", "ckpt_dir": "$@output_dir + '/models'"},
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp_dir = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:  # written beside the destination, then moved into place: no half-written export
        _copy_bundle_files(src, tmp_dir, zoo)
        (tmp_dir / "models").mkdir(parents=True, exist_ok=True)
        if weights is not None:
            torch.save({key_in_ckpt: weights}, tmp_dir / "models" / "model.pt")
        if out.exists():
            old = out.with_name(f".{out.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            os.replace(out, old)
            os.replace(tmp_dir, out)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp_dir, out)
    finally:
        shutil.rmtree(tmp_dir, ignore_errors=True)
    return str(out)
