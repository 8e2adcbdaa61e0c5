"""Training-curve PNG and per-epoch metrics file, rewritten atomically at the end of every epoch."""

from __future__ import annotations

import csv
import io
import json
import math
import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from ignite.engine import Engine, Events
from monai.handlers import from_engine
from monai.utils import is_scalar

from monai_cwcd.handlers.utils import atomic_write, is_rank0

__all__ = ["TrainingCurvePlotter"]


class TrainingCurvePlotter:
    """Record the mean training loss and the validation metrics of every epoch, and write, at the end
    of EVERY epoch (rank 0 only, each file atomically):

    - ``{output_dir}/{png_filename}``: the loss curve (left) and the validation Dice per structure
      (right; one colour and line style per structure, named without the metrics' common prefix,
      e.g. ``spleen`` for ``val_dice_spleen``; the key metric, e.g. the mean Dice, in thick black; a
      structure absent so far is listed as absent), integer epoch ticks;
    - ``{output_dir}/{metrics_filename}`` (JSON: a list of per-epoch records
      ``{"epoch", "loss", "lr", "<metric>": value, ...}``) and the same table as CSV
      (``csv_filename``).

    Attach it to the trainer AFTER the ``ValidationHandler`` so the epoch's validation metrics are
    available. The history is part of ``state_dict()``, so putting the plotter in the checkpoint's
    ``save_dict`` keeps the curves complete across a resume.

    Example:
        >>> plotter = TrainingCurvePlotter("runs/amos_demo", validator=evaluator)
        >>> # plotter.attach(trainer) -> runs/amos_demo/training_curves.png, metrics.json, metrics.csv

    Args:
        output_dir: folder of the outputs (created when missing).
        validator: the validation engine whose ``state.metrics`` are recorded; None records the
            loss only. Defaults to None.
        metric_names: validation metrics to record; None records every scalar metric.
            Defaults to None.
        output_transform: extracts the scalar loss from ``engine.state.output``.
            Defaults to ``from_engine(["loss"], first=True)``.
        png_filename: Defaults to ``"training_curves.png"``.
        metrics_filename: Defaults to ``"metrics.json"``.
        csv_filename: None writes no CSV. Defaults to ``"metrics.csv"``.
        title: figure title. Defaults to None.
    """

    def __init__(
        self,
        output_dir: str,
        validator: Engine | None = None,
        metric_names: Sequence[str] | None = None,
        output_transform: Callable = from_engine(["loss"], first=True),
        png_filename: str = "training_curves.png",
        metrics_filename: str = "metrics.json",
        csv_filename: str | None = "metrics.csv",
        title: str | None = None,
    ) -> None:
        self.output_dir = str(output_dir)
        self.validator = validator
        self.metric_names = None if metric_names is None else list(metric_names)
        self.output_transform = output_transform
        self.png_filename = png_filename
        self.metrics_filename = metrics_filename
        self.csv_filename = csv_filename
        self.title = title
        self.history: list[dict[str, Any]] = []
        self._loss_sum = 0.0
        self._loss_count = 0

    # -- state (for resume) -----------------------------------------------------------------------
    def state_dict(self) -> dict:
        """``{"history": [per-epoch records]}``."""
        return {"history": [dict(r) for r in self.history]}

    def load_state_dict(self, state_dict: Mapping[str, Any]) -> None:
        """Restore the per-epoch history."""
        if "history" not in state_dict:
            raise ValueError(f"TrainingCurvePlotter state needs 'history', got keys {sorted(state_dict)}.")
        self.history = [dict(r) for r in state_dict["history"]]

    # -- ignite -----------------------------------------------------------------------------------
    def attach(self, engine: Engine) -> None:
        """Register on ``EPOCH_STARTED``, ``ITERATION_COMPLETED`` and ``EPOCH_COMPLETED``."""
        engine.add_event_handler(Events.EPOCH_STARTED, self._reset)
        engine.add_event_handler(Events.ITERATION_COMPLETED, self._accumulate)
        engine.add_event_handler(Events.EPOCH_COMPLETED, self.epoch_completed)

    def _reset(self, engine: Engine) -> None:
        self._loss_sum, self._loss_count = 0.0, 0

    def _accumulate(self, engine: Engine) -> None:
        loss = self.output_transform(engine.state.output)
        if isinstance(loss, (tuple, list)) and len(loss) == 1:  # from_engine returns a 1-tuple
            loss = loss[0]
        if is_scalar(loss):
            self._loss_sum += float(loss)
            self._loss_count += 1

    def epoch_completed(self, engine: Engine) -> None:
        """Append this epoch's record and rewrite the PNG and metrics files."""
        epoch = int(engine.state.epoch)
        record: dict[str, Any] = {"epoch": epoch, "loss": self._loss_sum / max(self._loss_count, 1)}
        optimizer = getattr(engine, "optimizer", None)
        if optimizer is not None and optimizer.param_groups:
            record["lr"] = float(optimizer.param_groups[0]["lr"])
        if self.validator is not None and int(getattr(self.validator.state, "epoch", -1) or -1) == epoch:
            for name, value in self.validator.state.metrics.items():
                if (self.metric_names is None or name in self.metric_names) and is_scalar(value):
                    record[name] = float(value)
        self.history = [r for r in self.history if r["epoch"] < epoch] + [record]
        if is_rank0():
            self.write()

    # -- outputs ----------------------------------------------------------------------------------
    def _metric_columns(self) -> list[str]:
        cols: list[str] = []
        for r in self.history:
            cols += [k for k in r if k not in ("epoch", "loss", "lr") and k not in cols]
        return cols

    def write(self) -> None:
        """Write the metrics JSON, the CSV and the PNG (each atomically)."""
        os.makedirs(self.output_dir, exist_ok=True)
        text = json.dumps(self.history, indent=1, allow_nan=True)
        atomic_write(os.path.join(self.output_dir, self.metrics_filename), lambda f: f.write(text), mode="w")
        cols = ["epoch", "loss", "lr"] + self._metric_columns()
        if self.csv_filename:
            buf = io.StringIO()
            writer = csv.DictWriter(buf, fieldnames=cols, restval="")
            writer.writeheader()
            writer.writerows(self.history)
            atomic_write(os.path.join(self.output_dir, self.csv_filename), lambda f: f.write(buf.getvalue()), "w")
        png = self._render()
        atomic_write(os.path.join(self.output_dir, self.png_filename), lambda f: f.write(png))

    def _legend_label(self, name: str) -> str:
        """``val_dice_spleen`` -> ``spleen``: the structure name, when all per-structure metrics share a prefix."""
        key = getattr(getattr(self.validator, "state", None), "key_metric_name", None)
        others = [c for c in self._metric_columns() if c != key]
        prefix = os.path.commonprefix(others) if len(others) > 1 else ""
        prefix = prefix[: prefix.rfind("_") + 1] if "_" in prefix else ""
        return name[len(prefix) :] if prefix and name.startswith(prefix) and name != key else name

    def _render(self) -> bytes:
        out = io.BytesIO()
        self.figure().savefig(out, format="png")
        return out.getvalue()

    def figure(self):
        """The curves as a matplotlib ``Figure`` (what :meth:`write` saves as the PNG)."""
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
        from matplotlib.ticker import MaxNLocator

        fig = Figure(figsize=(13, 5), dpi=100)
        FigureCanvasAgg(fig)
        ax_loss, ax_dice = fig.subplots(1, 2, gridspec_kw={"width_ratios": [1, 1.4]})
        epochs = [r["epoch"] for r in self.history]
        ax_loss.plot(epochs, [r["loss"] for r in self.history], marker="o", color="tab:blue")
        ax_loss.set_xlabel("epoch")
        ax_loss.set_ylabel("mean training loss")
        ax_loss.set_title("training loss")
        ax_loss.grid(alpha=0.3)
        key = getattr(getattr(self.validator, "state", None), "key_metric_name", None)
        styles = _distinct_styles(len([c for c in self._metric_columns() if c != key]))
        for name in self._metric_columns():
            pts = [(r["epoch"], r[name]) for r in self.history if name in r and not math.isnan(r[name])]
            bold = name == key
            color, linestyle = ("black", "-") if bold else styles.pop(0)
            if not pts:  # absent from every validation image so far: still in the legend, as absent
                ax_dice.plot([], [], color=color, linestyle=linestyle, label=f"{self._legend_label(name)} (absent)")
                continue
            x, y = zip(*pts)
            ax_dice.plot(x, y, marker="o", markersize=5 if bold else 3, linewidth=2.5 if bold else 1.2,
                         color=color, linestyle=linestyle, label=self._legend_label(name), zorder=3 if bold else 2)
        for ax in (ax_loss, ax_dice):  # integer epoch ticks (MaxNLocator falls back to fractions below 2 epochs)
            if epochs and max(epochs) - min(epochs) <= 15:
                ax.set_xticks(range(min(epochs), max(epochs) + 1))
            else:
                ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            if epochs:
                ax.set_xlim(min(epochs) - 0.5, max(epochs) + 0.5)
        ax_dice.set_xlabel("epoch")
        ax_dice.set_ylabel("validation Dice")
        ax_dice.set_ylim(-0.02, 1.02)
        ax_dice.set_title("validation Dice per structure")
        ax_dice.grid(alpha=0.3)
        if ax_dice.lines:
            ax_dice.legend(fontsize=8, loc="center left", bbox_to_anchor=(1.01, 0.5), ncol=1 + len(ax_dice.lines) // 22,
                           handlelength=3)
        if self.title:
            fig.suptitle(self.title)
        fig.tight_layout()
        return fig


def _distinct_styles(n: int) -> list[tuple[Any, str]]:
    """``n`` (colour, linestyle) pairs: a distinct colour for each of the first 20 structures (the 10
    dark hues of matplotlib's ``tab20`` as solid lines, then its 10 light hues as dashed lines), then
    the same colours dotted and dash-dotted (40 structures before a pair repeats)."""
    from matplotlib import colormaps

    tab20 = colormaps["tab20"].colors
    colors = list(tab20[0::2]) + list(tab20[1::2])
    linestyles = ["-", "--", ":", "-."]
    return [(colors[i % 20], linestyles[(i // 10) % 4]) for i in range(n)]
