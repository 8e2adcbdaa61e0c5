"""Resume a killed training run: the state MONAI's checkpoints miss (RNG, AMP GradScaler) and a loader
that restores everything with ``weights_only=True``."""

from __future__ import annotations

import logging
import os
import random
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from ignite.engine import Engine, Events

from monai_cwcd.handlers.checkpoint import load_checkpoint

__all__ = ["ResumeState", "ResumeCheckpointLoader", "random_transforms"]


def random_transforms(obj: Any) -> list[Any]:
    """Every object reachable from ``obj`` (attributes, lists, tuples, dicts) that owns a numpy
    ``RandomState`` as ``R`` (MONAI's ``Randomizable``), depth first, in a fixed order.

    A dataset's cached items (``data``, ``_cache``) are not walked.
    """
    found: list[Any] = []
    seen: set[int] = set()

    def walk(o: Any) -> None:
        if id(o) in seen or isinstance(o, (str, bytes, int, float, torch.Tensor, np.ndarray)) or o is None:
            return
        seen.add(id(o))
        if isinstance(o, (list, tuple)):
            for item in o:
                walk(item)
            return
        if isinstance(o, dict):
            for item in o.values():
                walk(item)
            return
        attrs = getattr(o, "__dict__", None)
        if attrs is None:
            return
        if isinstance(attrs.get("R"), np.random.RandomState):
            found.append(o)
        for k, v in attrs.items():
            if k in ("data", "_cache", "R") or k.startswith("__"):
                continue
            walk(v)

    walk(obj)
    return found


def _np_state(rs: np.random.RandomState) -> dict:
    name, key, pos, has_gauss, gauss = rs.get_state()
    return {"key": torch.as_tensor(key.astype(np.int64)), "pos": int(pos), "has_gauss": int(has_gauss), "gauss": float(gauss)}


def _set_np_state(rs: np.random.RandomState, s: Mapping) -> None:
    rs.set_state(("MT19937", s["key"].numpy().astype(np.uint32), int(s["pos"]), int(s["has_gauss"]), float(s["gauss"])))


def _py_state() -> dict:
    version, internal, gauss = random.getstate()
    return {"version": int(version), "state": torch.tensor(internal, dtype=torch.int64), "gauss": gauss}


def _set_py_state(s: Mapping) -> None:
    random.setstate((int(s["version"]), tuple(int(v) for v in s["state"].tolist()), s["gauss"]))


class ResumeState:
    """The training state that MONAI 1.6.1 does not checkpoint, as one ``state_dict`` /
    ``load_state_dict`` object to put in the checkpoint saver's ``save_dict``:

    - the random number generators: torch (CPU and every CUDA device), numpy's global one,
      Python's ``random``, and the ``RandomState`` of every random transform of the trainer's
      dataset (MONAI's ``DataLoader`` seeds them once at construction, so without this a resumed
      run would repeat the augmentations of the first epochs);
    - the AMP ``GradScaler`` of the trainer (``Trainer.run`` creates a new one at every call, so its
      scale and growth tracker are lost on resume). Load this state at ``Events.STARTED`` (what
      :class:`ResumeCheckpointLoader` does): that is after ``run`` created the scaler.

    With this restored, a run killed and resumed from an epoch-end checkpoint continues with
    exactly the batches, augmentations and loss values of an uninterrupted run (CPU; on CUDA up to
    the non-determinism of cuDNN kernels).

    The state holds tensors and Python numbers only (``torch.load(..., weights_only=True)`` works).
    Under DDP only rank 0 writes checkpoints, so every rank restores rank 0's generators; the
    bundles seed all ranks identically (``set_determinism(seed=0)``), so this is what an
    uninterrupted run does too (the ``DistributedSampler`` gives each rank its own cases).

    Example:
        >>> state = ResumeState()  # state.attach(trainer); save_dict={"resume_state": state, ...}

    Args:
        data_loader: the loader whose dataset's random transforms are saved; None uses the attached
            engine's ``data_loader``. Defaults to None.
    """

    def __init__(self, data_loader: Any = None) -> None:
        self.data_loader = data_loader
        self.engine: Engine | None = None

    def attach(self, engine: Engine) -> None:
        """Remember the trainer (for its ``scaler`` and ``data_loader``); registers no event."""
        self.engine = engine

    def _transforms(self) -> list[Any]:
        loader = self.data_loader if self.data_loader is not None else getattr(self.engine, "data_loader", None)
        dataset = getattr(loader, "dataset", None)
        if dataset is None:
            return []
        return random_transforms(getattr(dataset, "transform", dataset))

    def state_dict(self) -> dict:
        """``{"torch", "cuda", "numpy", "python", "transforms", "scaler"}``."""
        scaler = getattr(self.engine, "scaler", None)
        return {
            "torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
            "numpy": _np_state(np.random.mtrand._rand),
            "python": _py_state(),
            "transforms": [_np_state(t.R) for t in self._transforms()],
            "scaler": scaler.state_dict() if scaler is not None else {},
        }

    def load_state_dict(self, state_dict: Mapping[str, Any]) -> None:
        """Restore the generators, the random transforms' states and the GradScaler.

        Raises:
            ValueError: a key is missing, or the number of random transforms differs from the
                checkpoint's (the pipeline changed since it was written).
        """
        missing = {"torch", "numpy", "python", "transforms", "scaler"} - set(state_dict)
        if missing:
            raise ValueError(f"resume state misses {sorted(missing)}; got keys {sorted(state_dict)}.")
        transforms = self._transforms()
        if len(transforms) != len(state_dict["transforms"]):
            raise ValueError(
                f"the checkpoint holds the random state of {len(state_dict['transforms'])} random transforms, the "
                f"training pipeline has {len(transforms)} ({[type(t).__name__ for t in transforms]}): the transforms "
                "changed since the checkpoint was written; an exact resume is impossible."
            )
        torch.set_rng_state(state_dict["torch"].cpu())
        cuda = state_dict.get("cuda") or []
        if cuda and torch.cuda.is_available() and len(cuda) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all([s.cpu() for s in cuda])
        _set_np_state(np.random.mtrand._rand, state_dict["numpy"])
        _set_py_state(state_dict["python"])
        for t, s in zip(transforms, state_dict["transforms"]):
            _set_np_state(t.R, s)
        scaler = getattr(self.engine, "scaler", None)
        if scaler is not None and state_dict["scaler"]:
            scaler.load_state_dict(state_dict["scaler"])


class ResumeCheckpointLoader:
    """Restore a training run from a checkpoint written by the bundle's ``AtomicCheckpointSaver``
    at ``Events.STARTED``: network, optimizer, LR scheduler, trainer counters (epoch, iteration),
    best-metric bookkeeping, curves history and :class:`ResumeState` — whatever ``load_dict`` names.

    Differences from MONAI's ``CheckpointLoader`` (which it replaces for resuming):

    - an ``enabled`` switch (the bundles' ``--resume true``), so the same config starts or resumes;
      a missing checkpoint with ``enabled=True`` is an error that says so, not a fresh start;
    - ``map_location`` defaults to the engine's device (``engine.state.device``), so under DDP each
      rank loads onto its own GPU, never all onto ``cuda:0``;
    - always ``torch.load(..., weights_only=True)`` (through :func:`load_checkpoint
      <monai_cwcd.handlers.load_checkpoint>`);
    - clear errors naming the file and the real cause first: an empty, truncated or corrupt file, a
      file that is not a checkpoint, content ``weights_only`` refuses (e.g. a numpy scalar, with its
      key), a missing key, or a checkpoint of another network (missing / unexpected parameter
      names, shape mismatches) raise ``ValueError``;
    - the configured ``max_epochs`` is kept (so a schedule can be extended); a checkpoint already at
      or past it logs that there is nothing left to train.

    Example:
        >>> loader = ResumeCheckpointLoader("runs/amos/model_last.pt", {"model": net, "optimizer": opt},
        ...                                 engine_key="trainer")  # loader.attach(trainer)

    Args:
        load_path: checkpoint file.
        load_dict: ``{key in checkpoint: object with load_state_dict}``.
        enabled: False makes the handler a no-op (a fresh run). Defaults to True.
        engine_key: also restore the attached engine's state from this key (a config cannot name the
            trainer inside its own handler list). Defaults to None.
        map_location: passed to ``torch.load``; None uses ``engine.state.device`` (or CPU).
            Defaults to None.
        strict: every key of ``load_dict`` must be in the checkpoint, and network parameters must
            match exactly. Defaults to True.
        name: logger name. Defaults to ``"monai_cwcd.resume"``.

    Raises:
        ValueError: ``load_dict`` empty or a value without ``load_state_dict``.
    """

    def __init__(
        self,
        load_path: str | os.PathLike,
        load_dict: Mapping[str, Any],
        enabled: bool = True,
        engine_key: str | None = None,
        map_location: Any = None,
        strict: bool = True,
        name: str = "monai_cwcd.resume",
    ) -> None:
        if not load_dict and engine_key is None:
            raise ValueError("ResumeCheckpointLoader needs a non-empty load_dict.")
        for k, v in load_dict.items():
            if not callable(getattr(v, "load_state_dict", None)):
                raise ValueError(f"load_dict['{k}'] ({type(v).__name__}) has no load_state_dict() method.")
        self.load_path = os.fspath(load_path)
        self.load_dict = dict(load_dict)
        self.enabled = bool(enabled)
        self.engine_key = engine_key
        self.map_location = map_location
        self.strict = strict
        self.logger = logging.getLogger(name)
        self.resumed_from: dict[str, int] | None = None

    def attach(self, engine: Engine) -> None:
        """Register on ``Events.STARTED`` (when enabled)."""
        if self.engine_key is not None:
            self.load_dict[self.engine_key] = engine
        if self.enabled:
            engine.add_event_handler(Events.STARTED, self)

    def _load_file(self, map_location: Any) -> dict:
        if not os.path.isfile(self.load_path):
            raise FileNotFoundError(
                f"resume requested but the checkpoint {self.load_path} does not exist (nothing to resume; "
                "run without --resume to start a new run, or point ckpt_dir at the run to resume)."
            )
        checkpoint = load_checkpoint(self.load_path, map_location=map_location)
        if not isinstance(checkpoint, dict):
            raise ValueError(f"checkpoint {self.load_path} holds a {type(checkpoint).__name__}, expected a dict of states.")
        return checkpoint

    def _check_module(self, key: str, module: torch.nn.Module, state: Mapping[str, Any]) -> None:
        if isinstance(module, torch.nn.parallel.DistributedDataParallel | torch.nn.DataParallel):
            module = module.module
        own = module.state_dict()
        missing = [k for k in own if k not in state]
        unexpected = [k for k in state if k not in own]
        shapes = [
            f"{k}: checkpoint {tuple(state[k].shape)} vs network {tuple(own[k].shape)}"
            for k in own
            if k in state and hasattr(state[k], "shape") and tuple(state[k].shape) != tuple(own[k].shape)
        ]
        if missing or unexpected or shapes:
            raise ValueError(
                f"checkpoint {self.load_path} key '{key}' was saved from another network than {type(module).__name__}: "
                f"{len(missing)} missing parameter(s) {missing[:5]}, {len(unexpected)} unexpected {unexpected[:5]}, "
                f"{len(shapes)} shape mismatch(es) {shapes[:5]}. Check network_def (features, out_channels) "
                "against the run that wrote the checkpoint."
            )

    def __call__(self, engine: Engine) -> None:
        """Load the checkpoint into ``load_dict`` and the engine."""
        map_location = self.map_location
        if map_location is None:
            map_location = getattr(engine.state, "device", None) or "cpu"
        checkpoint = self._load_file(map_location)
        if self.strict:  # a network mismatch is the most specific diagnosis: report it first
            for key, obj in self.load_dict.items():
                if isinstance(obj, torch.nn.Module) and key in checkpoint:
                    self._check_module(key, obj, checkpoint[key])
        absent = [k for k in self.load_dict if k not in checkpoint]
        if absent and self.strict:
            raise ValueError(
                f"checkpoint {self.load_path} has no {absent} entr{'y' if len(absent) == 1 else 'ies'} "
                f"(it holds {sorted(checkpoint)}); it was not written by this bundle's checkpoint saver."
            )
        prior_max_epochs = engine.state.max_epochs
        for key, obj in self.load_dict.items():
            if key not in checkpoint:
                self.logger.warning(f"resume: '{key}' not in {self.load_path}, left as initialised.")
                continue
            obj.load_state_dict(checkpoint[key])
        if prior_max_epochs is not None:
            engine.state.max_epochs = prior_max_epochs
        self.resumed_from = {"epoch": int(engine.state.epoch), "iteration": int(engine.state.iteration)}
        left = (engine.state.max_epochs or 0) - engine.state.epoch
        self.logger.info(
            f"resumed from {self.load_path}: epoch {engine.state.epoch}, iteration {engine.state.iteration}; "
            + (f"{left} epoch(s) left." if left > 0 else "nothing left to train (max_epochs reached).")
        )
