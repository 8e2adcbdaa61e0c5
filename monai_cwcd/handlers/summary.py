"""End-of-training summary: best validation score and its epoch, a per-structure table with names,
and where the run's outputs are."""

from __future__ import annotations

import json
import math
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
from ignite.engine import Engine, Events
from monai.utils import is_scalar

from monai_cwcd.handlers.utils import atomic_write, is_rank0

__all__ = ["RunSummary"]


def _number(value: Any) -> float | None:
    """A finite-or-None float (NaN, e.g. a structure absent from every case, becomes None)."""
    if not is_scalar(value):
        return None
    value = float(value)
    return None if math.isnan(value) else value


class RunSummary:
    """Print a short summary when training completes (rank 0 only) and write it as JSON:

    - the best value of the validator's key metric (e.g. ``val_mean_dice``, MONAI's mean over the
      structures present in each case) and the epoch it was reached, out of the epochs run;
    - one row per structure with its validation score at that best epoch (metrics
      ``{metric_prefix}{class_name}`` of ``validator.state.metrics``, as published by
      :class:`~monai_cwcd.handlers.PerClassMeanDice`); NaN (structure absent from every
      validation case) is shown as ``absent`` (``null`` in the JSON);
    - the training time measured by the engine;
    - every entry of ``outputs`` (``label: path``), marked ``(missing)`` when the file does not exist.

    Attach it to the trainer (it registers itself on the validator too, to keep the scores of the
    best epoch). Its state (the best epoch's scores) is ``state_dict()``, so adding it to a
    checkpoint's ``save_dict`` keeps the table across a resume.

    Example:
        >>> summary = RunSummary(evaluator, ["spleen", "liver"], outputs={"best checkpoint": "runs/x/model.pt"})
        >>> # summary.attach(trainer): the table is printed when trainer.run() completes

    Args:
        validator: the validation engine (MONAI ``SupervisedEvaluator``) with a key metric.
        class_names: structure names, in the order of the per-class metrics.
        outputs: ``{label: path}`` of the run's outputs to list. Defaults to None.
        metric_prefix: prefix of the per-class metric names. Defaults to ``"val_dice_"``.
        output_dir: folder of the JSON summary; None writes no file. Defaults to None.
        filename: JSON file name. Defaults to ``"summary.json"``.
        title: first line of the printed summary. Defaults to None (``"Run summary"``).
        network: the trained network; its class name and parameter count are reported.
            Defaults to None.
        printer: receives the summary text. Defaults to None (print to ``sys.stdout``).

    Raises:
        ValueError: empty ``class_names``.
    """

    def __init__(
        self,
        validator: Engine,
        class_names: Sequence[str],
        outputs: Mapping[str, str] | None = None,
        metric_prefix: str = "val_dice_",
        output_dir: str | None = None,
        filename: str = "summary.json",
        title: str | None = None,
        network: torch.nn.Module | None = None,
        printer: Callable[[str], Any] | None = None,
    ) -> None:
        if len(class_names) == 0:
            raise ValueError("RunSummary needs at least one class name.")
        self.validator = validator
        self.class_names = [str(n) for n in class_names]
        self.outputs = {str(k): str(v) for k, v in (outputs or {}).items()}
        self.metric_prefix = metric_prefix
        self.output_dir = output_dir
        self.filename = filename
        self.title = title
        self.network = network
        self.printer = printer
        self.best: dict[str, Any] = {}

    # -- state (for resume) -----------------------------------------------------------------------
    def state_dict(self) -> dict:
        """``{"best": {"epoch", "metric", "value", "per_class"}}`` (empty before a validation)."""
        return {"best": json.loads(json.dumps(self.best))}

    def load_state_dict(self, state_dict: Mapping[str, Any]) -> None:
        """Restore the best epoch's scores."""
        if "best" not in state_dict:
            raise ValueError(f"RunSummary state needs 'best', got keys {sorted(state_dict)}.")
        self.best = dict(state_dict["best"])

    # -- ignite -----------------------------------------------------------------------------------
    def attach(self, engine: Engine) -> None:
        """Register ``validation_completed`` on the validator and ``completed`` on ``engine``."""
        self.validator.add_event_handler(Events.EPOCH_COMPLETED, self.validation_completed)
        engine.add_event_handler(Events.COMPLETED, self.completed)

    def validation_completed(self, validator: Engine) -> None:
        """Keep the per-class scores when the key metric reached a new best this validation."""
        state = validator.state
        key = getattr(state, "key_metric_name", None)
        if key is None or int(getattr(state, "best_metric_epoch", -1)) != int(state.epoch):
            return
        per_class = {n: _number(state.metrics.get(f"{self.metric_prefix}{n}")) for n in self.class_names}
        self.best = {"epoch": int(state.epoch), "metric": key, "value": _number(state.metrics.get(key)), "per_class": per_class}

    def summary(self, engine: Engine | None = None) -> dict[str, Any]:
        """The summary as a dict (what the JSON file holds)."""
        out: dict[str, Any] = dict(self.best)
        state = getattr(self.validator, "state", None)
        if not out and int(getattr(state, "best_metric_epoch", -1)) > 0:  # resumed without this handler's state
            out = {"epoch": int(state.best_metric_epoch), "metric": state.key_metric_name,
                   "value": _number(state.best_metric), "per_class": {}}
        if self.network is not None:
            net = getattr(self.network, "module", self.network)  # DistributedDataParallel
            out["network"] = type(net).__name__
            out["parameters"] = int(sum(p.numel() for p in net.parameters()))
        if engine is not None:
            out["epochs"] = int(engine.state.epoch)
            seconds = (getattr(engine.state, "times", None) or {}).get(Events.COMPLETED.name)
            if seconds is not None:
                out["training_seconds"] = float(seconds)
        out["outputs"] = dict(self.outputs)
        return out

    def format(self, summary: Mapping[str, Any]) -> str:
        """The printed text of ``summary`` (see :meth:`summary`)."""
        lines = [f"==== {self.title or 'Run summary'} ===="]
        value = summary.get("value")
        if value is None:
            lines.append("no validation score was recorded.")
        else:
            of = f" of {summary['epochs']}" if "epochs" in summary else ""
            lines.append(f"best {summary['metric']}: {value:.3f} at epoch {summary['epoch']}{of}")
        if "network" in summary:
            lines.append(f"network: {summary['network']} ({summary['parameters'] / 1e6:.2f}M parameters)")
        if "training_seconds" in summary:
            m, s = divmod(int(round(summary["training_seconds"])), 60)
            lines.append(f"training time (engine): {m} min {s:02d} s")
        per_class = summary.get("per_class") or {}
        if per_class:
            width = max(len(n) for n in [*per_class, "structure"]) + 2
            lines.append(f"  {'structure':<{width}}Dice at epoch {summary['epoch']}")
            for n, v in per_class.items():
                lines.append(f"  {n:<{width}}{'absent' if v is None else f'{v:.3f}'}")
        if self.outputs:
            width = max(len(k) for k in self.outputs) + 2
            lines.append("outputs:")
            for k, path in self.outputs.items():
                lines.append(f"  {k:<{width}}{path}{'' if os.path.exists(path) else '  (missing)'}")
        return "\n".join(lines)

    def completed(self, engine: Engine) -> None:
        """Print the summary and write the JSON (rank 0 only)."""
        if not is_rank0():
            return
        summary = self.summary(engine)
        if self.output_dir is not None:
            path = os.path.join(self.output_dir, self.filename)
            text = json.dumps(summary, indent=2)
            atomic_write(path, lambda f: f.write(text + "\n"), mode="w")
        rendered = self.format(summary)
        if self.printer is not None:
            self.printer(rendered)
        else:
            print(rendered, file=sys.stdout, flush=True)
