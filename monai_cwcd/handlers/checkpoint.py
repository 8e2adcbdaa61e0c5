"""Checkpoint saver that writes atomically and keeps the best-metric bookkeeping in the checkpoint."""

from __future__ import annotations

import importlib
import io
import logging
import math
import os
import re
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from ignite.engine import Engine, Events
from monai.utils import is_scalar

from monai_cwcd.handlers.utils import atomic_write, is_rank0

__all__ = ["AtomicCheckpointSaver", "load_checkpoint"]


_ZIP_MAGIC = b"PK\x03\x04"
_LEGACY_MAGIC = b"\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19"  # pickle of torch's legacy magic number
_NUMPY_SCALAR = {"numpy._core.multiarray.scalar", "numpy.core.multiarray.scalar"}
_NUMPY_ARRAY = {"numpy._core.multiarray._reconstruct", "numpy.core.multiarray._reconstruct", "numpy.ndarray"}
_TRUST_HINT = "torch.load(..., weights_only=False) would run the file's pickled code: use it only on files you trust"


def _numpy_dtype_global(name: str) -> bool:
    return name == "numpy.dtype" or name.startswith("numpy.dtypes.")


def _resolve(name: str) -> Any:
    module, _, attr = name.rpartition(".")
    return getattr(importlib.import_module(module), attr)


def _numpy_scalar_paths(path: str, unsafe: list[str], limit: int = 3) -> list[str]:
    """Where the numpy scalars sit in the checkpoint (``"checkpointer.best_metric"``), found by a load
    that allows numpy scalars and dtypes only (the objects ``torch.load`` documents as safe to allow)."""
    dtypes = getattr(np, "dtypes", None)  # a dtype unpickles through its class, e.g. numpy.dtypes.Float32DType
    dtype_classes = [getattr(dtypes, n) for n in dir(dtypes) if n.endswith("DType") and n != "ObjectDType"]
    try:
        with torch.serialization.safe_globals([_resolve(n) for n in unsafe] + dtype_classes):
            obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:
        return []
    found: list[str] = []

    def walk(o: Any, where: str) -> None:
        if len(found) >= limit:
            return
        if isinstance(o, np.generic):
            found.append(where or "<root>")
        elif isinstance(o, Mapping):
            for k, v in o.items():
                walk(v, f"{where}.{k}" if where else str(k))
        elif isinstance(o, (list, tuple)):
            for i, v in enumerate(o):
                walk(v, f"{where}[{i}]")

    walk(obj, "")
    return found


def _refused_globals(path: str, error: Exception) -> list[str]:
    """The globals ``weights_only`` loading refuses in ``path`` (all of them for a zip checkpoint)."""
    try:
        names = list(torch.serialization.get_unsafe_globals_in_checkpoint(path))
    except Exception:
        names = []
    return names or re.findall(r"GLOBAL (\S+) was not an allowed global", str(error))


def _first_sentence(error: Exception) -> str:
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(error)).strip()
    return re.split(r"(?<=\.)\s|\n", text, maxsplit=1)[0] if text else type(error).__name__


def _load_error(path: str, error: Exception) -> str:
    """One line naming the file and the real cause of a failed ``weights_only`` load, cause first."""
    size = os.path.getsize(path)
    with open(path, "rb") as f:
        head = f.read(16)
    if size == 0:
        return (f"checkpoint {path} is empty (0 bytes): the save or copy that wrote it was interrupted; "
                "use an earlier checkpoint or save it again.")
    refused = _refused_globals(path, error) if "global" in str(error).lower() else []
    if refused:
        scalars = [n for n in refused if n in _NUMPY_SCALAR]
        arrays = [n for n in refused if n in _NUMPY_ARRAY]
        others = [n for n in refused if n not in _NUMPY_SCALAR and n not in _NUMPY_ARRAY and not _numpy_dtype_global(n)]
        if scalars and not arrays and not others:
            where = _numpy_scalar_paths(path, refused)
            what = f"numpy scalars at {', '.join(where)}" if len(where) > 1 else "a numpy scalar" + (
                f" at {where[0]}" if where else "")
            return (f"checkpoint {path} holds {what}, which weights_only loading refuses; re-save it with "
                    f"tensors / plain Python numbers (e.g. float(value)) in place of numpy scalars ({_TRUST_HINT}).")
        if arrays and not others:
            return (f"checkpoint {path} holds numpy arrays{' and scalars' if scalars else ''}, which weights_only "
                    f"loading refuses; re-save it with torch.as_tensor(array) in place of arrays ({_TRUST_HINT}).")
        return (f"checkpoint {path} holds objects of {sorted(others or refused)}, which weights_only loading "
                "refuses; save state dicts of tensors, numbers, strings, lists and dicts only "
                f"({_TRUST_HINT}).")
    unreadable = isinstance(error, (OSError, EOFError)) or "PytorchStreamReader" in str(error)
    if head.startswith(_ZIP_MAGIC) and unreadable:
        return (f"checkpoint {path} is truncated or corrupt ({size} bytes; its zip archive cannot be read: "
                f"{_first_sentence(error)}); use an earlier checkpoint or save it again.")
    if head.startswith(_ZIP_MAGIC):  # a readable archive: the cause is elsewhere (e.g. map_location)
        return f"checkpoint {path} cannot be loaded: {type(error).__name__}: {_first_sentence(error)}"
    if not head.startswith(_LEGACY_MAGIC):
        return (f"{path} is not a PyTorch checkpoint (it starts with {head[:12]!r}; torch.save writes a zip "
                f"archive starting with {_ZIP_MAGIC!r}): {type(error).__name__}: {_first_sentence(error)}")
    return (f"checkpoint {path} (legacy torch.save format) cannot be loaded, truncated or corrupt: "
            f"{type(error).__name__}: {_first_sentence(error)}")


def load_checkpoint(path: str | os.PathLike, map_location: Any = None) -> Any:
    """``torch.load(path, map_location, weights_only=True)`` with errors that name the file and the
    real cause first, in one line: missing, empty, truncated or corrupt file, not a PyTorch
    checkpoint, or content that ``weights_only`` loading refuses (numpy scalars, located by key;
    numpy arrays; other pickled classes, named).

    Example:
        >>> ckpt = load_checkpoint("runs/amos/model.pt", map_location="cpu")
        >>> net.load_state_dict(ckpt["model"])

    Args:
        path: checkpoint file.
        map_location: passed to ``torch.load``. Defaults to None.

    Returns:
        the loaded object (for our checkpoints a dict of state dicts).

    Raises:
        FileNotFoundError: ``path`` is not a file.
        ValueError: the file cannot be loaded with ``weights_only=True``; the message says why.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"checkpoint {path} does not exist.")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:
        raise ValueError(_load_error(path, e)) from e


class AtomicCheckpointSaver:
    """Save checkpoints the way MONAI's ``CheckpointSaver`` does (same argument names), but:

    - every file is written to a temporary file and renamed over the destination
      (``os.replace``), so a run killed during a save never leaves a truncated checkpoint, and a
      fixed filename (``model.pt``) is overwritten in one step instead of deleted then rewritten;
    - the best key metric and its epoch are part of the saver's own state (``state_dict`` /
      ``load_state_dict``) and are written into every checkpoint under ``"checkpointer"``; loading
      that state (e.g. ``CheckpointLoader(load_dict={"checkpointer": saver, ...})``) restores them
      into the saver and into the attached engine's ``state.best_metric`` / ``best_metric_epoch``,
      so a resumed run never overwrites the best model with a worse one;
    - only rank 0 writes (``torch.distributed`` not initialised counts as rank 0).

    Every value of ``save_dict`` must have ``state_dict()``; files hold plain tensors and Python
    numbers only, so they load with ``torch.load(..., weights_only=True)``.

    Example:
        >>> saver = AtomicCheckpointSaver("runs/models", {"model": net}, save_key_metric=True)
        >>> # saver.attach(validator): writes runs/models/model.pt when the key metric improves

    Args:
        save_dir: folder of the checkpoints (created when missing).
        save_dict: ``{name: object with state_dict()}`` to save, e.g. network, optimizer,
            lr scheduler, trainer.
        name: logger name; None uses the engine's logger. Defaults to None.
        save_key_metric: save when the key metric improves (attach to the validator).
            Defaults to False.
        key_metric_name: metric in ``engine.state.metrics`` to compare; None uses
            ``engine.state.key_metric_name``. Defaults to None.
        key_metric_filename: file of the best model. Defaults to ``"model.pt"``.
        key_metric_negative_sign: smaller is better (an error-like metric). Defaults to False.
        key_metric_save_state: also save this saver's state (best metric and epoch) under
            ``"checkpointer"``. Defaults to True.
        save_final: save when the engine completes. Defaults to False.
        final_filename: file of the final checkpoint. Defaults to ``"model_final.pt"``.
        save_interval: save every N epochs (or iterations with ``epoch_level=False``); 0 disables.
            Defaults to 0.
        epoch_level: interval in epochs (True) or iterations (False). Defaults to True.
        interval_filename: file of the latest interval checkpoint (overwritten each time).
            Defaults to ``"model_last.pt"``.
        engine_key: also save the state of the engine this saver is attached to under this key
            (e.g. ``"trainer"``; a config cannot reference the trainer from one of its own
            handlers without a circular reference). Defaults to None.

    Raises:
        ValueError: when ``save_dict`` is empty or a value has no ``state_dict``, or nothing is
            configured to be saved.
    """

    def __init__(
        self,
        save_dir: str,
        save_dict: Mapping[str, Any],
        name: str | None = None,
        save_key_metric: bool = False,
        key_metric_name: str | None = None,
        key_metric_filename: str = "model.pt",
        key_metric_negative_sign: bool = False,
        key_metric_save_state: bool = True,
        save_final: bool = False,
        final_filename: str = "model_final.pt",
        save_interval: int = 0,
        epoch_level: bool = True,
        interval_filename: str = "model_last.pt",
        engine_key: str | None = None,
    ) -> None:
        if not save_dict and engine_key is None:
            raise ValueError("AtomicCheckpointSaver needs a non-empty save_dict.")
        for k, v in save_dict.items():
            if not callable(getattr(v, "state_dict", None)):
                raise ValueError(f"save_dict['{k}'] ({type(v).__name__}) has no state_dict() method.")
        if not (save_key_metric or save_final or save_interval > 0):
            raise ValueError("nothing to save: set save_key_metric, save_final or save_interval > 0.")
        self.save_dir = str(save_dir)
        self.save_dict = dict(save_dict)
        self._name = name
        self.logger = logging.getLogger(name)
        self.save_key_metric = save_key_metric
        self.key_metric_name = key_metric_name
        self.key_metric_filename = key_metric_filename
        self.key_metric_negative_sign = key_metric_negative_sign
        self.key_metric_save_state = key_metric_save_state
        self.save_final = save_final
        self.final_filename = final_filename
        self.save_interval = int(save_interval)
        self.epoch_level = epoch_level
        self.interval_filename = interval_filename
        self.engine_key = engine_key
        self.best_metric: float = -1.0
        self.best_metric_epoch: int = -1
        self._engine: Engine | None = None

    # -- state ------------------------------------------------------------------------------------
    def state_dict(self) -> dict:
        """The best-metric bookkeeping: ``{"best_metric": float, "best_metric_epoch": int}``."""
        return {"best_metric": float(self.best_metric), "best_metric_epoch": int(self.best_metric_epoch)}

    def load_state_dict(self, state_dict: Mapping[str, Any]) -> None:
        """Restore the best metric and its epoch (also into the attached engine's state).

        Raises:
            ValueError: when a key is missing.
        """
        missing = {"best_metric", "best_metric_epoch"} - set(state_dict)
        if missing:
            raise ValueError(f"checkpointer state misses {sorted(missing)}; got keys {sorted(state_dict)}.")
        self.best_metric = float(state_dict["best_metric"])
        self.best_metric_epoch = int(state_dict["best_metric_epoch"])
        if self._engine is not None:
            self._engine.state.best_metric = self.best_metric
            self._engine.state.best_metric_epoch = self.best_metric_epoch

    # -- ignite -----------------------------------------------------------------------------------
    def attach(self, engine: Engine) -> None:
        """Register the configured saves on ``engine``."""
        self._engine = engine
        if self.engine_key is not None:
            self.save_dict[self.engine_key] = engine
        if self._name is None:
            self.logger = engine.logger
        if self.save_key_metric:
            engine.add_event_handler(Events.EPOCH_COMPLETED, self.metrics_completed)
        if self.save_interval > 0:
            event = Events.EPOCH_COMPLETED if self.epoch_level else Events.ITERATION_COMPLETED
            engine.add_event_handler(event(every=self.save_interval), self.interval_completed)
        if self.save_final:
            engine.add_event_handler(Events.COMPLETED, self.completed)

    def metrics_completed(self, engine: Engine) -> None:
        """Save ``key_metric_filename`` when the key metric beats the best so far."""
        name = self.key_metric_name or getattr(engine.state, "key_metric_name", None)
        if name is None or name not in engine.state.metrics:
            raise ValueError(
                f"key metric '{name}' not in engine.state.metrics (available: {sorted(engine.state.metrics)})."
            )
        value = engine.state.metrics[name]
        if not is_scalar(value) or math.isnan(float(value)):
            self.logger.warning(f"key metric '{name}' is {value}: not comparable, no best-model checkpoint saved.")
            return
        score = -float(value) if self.key_metric_negative_sign else float(value)
        best = -self.best_metric if self.key_metric_negative_sign else self.best_metric
        if self.best_metric_epoch != -1 and score <= best:
            return
        self.best_metric, self.best_metric_epoch = float(value), int(engine.state.epoch)
        path = self.save(self.key_metric_filename)
        if is_rank0():  # every rank keeps the bookkeeping, rank 0 writes and tells
            self.logger.info(f"saved best {name}={float(value):.4f} (epoch {self.best_metric_epoch}) to {path}")

    def interval_completed(self, engine: Engine) -> None:
        """Save ``interval_filename`` (the latest state)."""
        self.save(self.interval_filename)

    def completed(self, engine: Engine) -> None:
        """Save ``final_filename``."""
        path = self.save(self.final_filename)
        if is_rank0():
            self.logger.info(f"train completed, saved final checkpoint: {path}")

    def save(self, filename: str) -> str:
        """Write ``{key: obj.state_dict()}`` (plus ``"checkpointer"``) to ``save_dir/filename``
        atomically, on rank 0 only. Returns the path."""
        path = os.path.join(self.save_dir, filename)
        if not is_rank0():
            return path
        checkpoint = {k: v.state_dict() for k, v in self.save_dict.items()}
        if self.key_metric_save_state and "checkpointer" not in checkpoint:
            checkpoint["checkpointer"] = self.state_dict()
        buffer = io.BytesIO()
        torch.save(checkpoint, buffer)
        atomic_write(path, lambda f: f.write(buffer.getbuffer()))
        return path
