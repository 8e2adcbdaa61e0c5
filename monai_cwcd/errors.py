"""Errors a person reads: one plain line, printed last, for every error of a bundle run or a command.

MONAI's config parser wraps an error raised while a component is built or an expression is
evaluated in ``RuntimeError: Failed to instantiate ...`` / ``Failed to evaluate ...``, and MONAI's
transforms wrap it again in ``RuntimeError: applying transform ...``; a 60-120-line traceback then
ends with the outermost wrapper, and the message that names the file or key is somewhere in the
middle. This module finds that message and prints it last:

- :func:`format_error` walks ``__cause__`` (and ``__context__`` of a wrapper) through MONAI's
  wrappers to the first exception that is not one, and unpacks the text of an exception re-raised
  from a PyTorch ``DataLoader`` worker, giving ``"<ExceptionType>: <message>"`` on one line.
- :func:`install_excepthook` makes every uncaught exception end with that line (exit status 1); the
  full traceback is printed before it only in debug mode (environment variable
  ``MONAI_CWCD_DEBUG=1``). In normal mode the duplicate exception records that MONAI's
  ``StatsHandler`` and ignite's engines log are held back, so the message appears exactly once.
  At exit it also waits for ``multiprocessing.pool`` worker threads that are still inside a task
  (see :func:`wait_for_pool_workers`): a ``CacheDataset`` whose transform failed leaves its other
  workers running C++ code, and an interpreter that finalises under them aborts with
  ``terminate called without an active exception`` (exit 134).
- :func:`check_overrides` refuses a ``python -m monai.bundle run`` override whose key is not in the
  config (``--epoch 1`` for ``--epochs 1``), naming the closest existing key, before anything runs.
- :func:`check_tracking` refuses ``--tracking mlflow`` without MLflow, before anything runs, and
  removes the config MONAI saved for the tracker when a run fails before producing anything.

The bundles call :func:`setup_bundle_run` as the first item of ``initialize``; the ``monai-cwcd``
command reports its errors with :func:`report_error`. Documented in ``docs/reliability.md``.
"""

from __future__ import annotations

import atexit
import difflib
import logging
import os
import re
import sys
import threading
import time
import traceback
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO, Any

__all__ = [
    "DEBUG_ENV",
    "UnknownOverrideError",
    "debug_enabled",
    "root_error",
    "format_error",
    "report_error",
    "excepthook",
    "install_excepthook",
    "on_failure",
    "wait_for_pool_workers",
    "check_overrides",
    "check_tracking",
    "setup_bundle_run",
]

DEBUG_ENV = "MONAI_CWCD_DEBUG"
"""Environment variable: any value but empty, ``0``, ``false``, ``no``, ``off`` prints full tracebacks."""

_HINT = f"monai-cwcd: stopped by the error below (set {DEBUG_ENV}=1 for the full traceback)."

# RuntimeError messages of MONAI's wrappers around the real error (its ``__cause__``)
_WRAPPER = re.compile(r"^(Failed to (evaluate|instantiate|run)\b|applying transform\b)")
# PyTorch's re-raise of an exception from a DataLoader worker / pin-memory thread
_TORCH_RERAISE = re.compile(r"^Caught \w+ in [^\n]*\.\nOriginal Traceback \(most recent call last\):\n", re.S)
_CHAIN_SEP = re.compile(
    r"\n\s*(?:The above exception was the direct cause of the following exception:"
    r"|During handling of the above exception, another exception occurred:)\s*\n"
)


class UnknownOverrideError(ValueError):
    """A ``python -m monai.bundle run`` override names a key that is not in the config."""


def debug_enabled() -> bool:
    """Whether ``MONAI_CWCD_DEBUG`` asks for full tracebacks."""
    return os.environ.get(DEBUG_ENV, "").strip().lower() not in ("", "0", "false", "no", "off")


def _message(exc: BaseException) -> str:
    if isinstance(exc, KeyError) and len(exc.args) == 1 and isinstance(exc.args[0], str):
        return exc.args[0]  # str(KeyError) is the repr of its argument
    return str(exc)


def _is_wrapper(name: str, message: str) -> bool:
    return name == "RuntimeError" and bool(_WRAPPER.match(message.strip()))


def _from_traceback_text(text: str) -> tuple[str, str] | None:
    """``(type name, message)`` of the outermost non-wrapper exception in a formatted traceback
    (chains are printed innermost first)."""
    found: list[tuple[str, str]] = []
    for block in _CHAIN_SEP.split(text):
        lines = block.strip("\n").splitlines()
        if lines and lines[0].startswith("Traceback"):
            lines = lines[1:]
        # frames are indented; the exception line is the first one that is not (its message may be)
        start = next((i for i, line in enumerate(lines) if not line.startswith(" ")), len(lines))
        tail = "\n".join(lines[start:]).strip()
        m = re.match(r"^([A-Za-z_][\w.]*)(?::\s?(.*))?$", tail, re.S)
        if m:
            found.append((m.group(1).rsplit(".", 1)[-1], (m.group(2) or "").strip()))
    for name, message in reversed(found):
        if not _is_wrapper(name, message):
            return name, message
    return found[0] if found else None


def root_error(exc: BaseException) -> BaseException:
    """The exception a person should read: ``exc`` without MONAI's ``RuntimeError`` wrappers
    (``Failed to evaluate/instantiate ...``, ``applying transform ...``), found by following the
    wrappers' ``__cause__`` (or ``__context__``). An exception that is not a wrapper is returned as
    is: its own message is the one written for people, its cause is detail.

    Args:
        exc: the exception that ended the run.
    """
    seen: set[int] = set()
    while id(exc) not in seen and _is_wrapper(type(exc).__name__, _message(exc)):
        seen.add(id(exc))
        inner = exc.__cause__ or (None if exc.__suppress_context__ else exc.__context__)
        if inner is None:
            break
        exc = inner
    return exc


def format_error(exc: BaseException) -> str:
    """One line ``"<ExceptionType>: <message>"`` for :func:`root_error` of ``exc``.

    Line breaks and indentation of the message are folded into single spaces; an exception re-raised
    by PyTorch from a ``DataLoader`` worker is unpacked to the worker's own error; an empty message
    is replaced by the place the exception was raised.

    Example:
        >>> try:
        ...     try:
        ...         raise ValueError("alpha must be in [0, 1], got 1.5")
        ...     except ValueError as e:
        ...         raise RuntimeError("Failed to instantiate component 'CWCDLoss'") from e
        ... except RuntimeError as e:
        ...     format_error(e)
        'ValueError: alpha must be in [0, 1], got 1.5'

    Args:
        exc: the exception that ended the run.
    """
    root = root_error(exc)
    name, message = type(root).__name__, _message(root)
    if _TORCH_RERAISE.match(message):
        parsed = _from_traceback_text(_TORCH_RERAISE.sub("Traceback (most recent call last):\n", message, count=1))
        if parsed is not None:
            name, message = parsed
    message = " ".join(message.split())
    if not message:
        frames = traceback.extract_tb(root.__traceback__) if root.__traceback__ is not None else []
        message = f"(no message; raised at {frames[-1].filename}:{frames[-1].lineno})" if frames else "(no message)"
    return f"{name}: {message}"


def report_error(exc: BaseException, file: IO[str] | None = None, debug: bool | None = None) -> None:
    """Print ``exc`` for a person: the full traceback in debug mode, else a one-line hint; then,
    last, :func:`format_error`.

    Args:
        exc: the exception.
        file: where to print. Defaults to ``None`` (``sys.stderr``).
        debug: print the traceback. Defaults to ``None`` (:func:`debug_enabled`).
    """
    file = sys.stderr if file is None else file
    if debug_enabled() if debug is None else debug:
        traceback.print_exception(type(exc), exc, exc.__traceback__, file=file)
    else:
        print(_HINT, file=file)
    print(format_error(exc), file=file)
    file.flush()


def excepthook(exc_type: type[BaseException], exc: BaseException, tb: Any) -> None:
    """``sys.excepthook`` that ends with :func:`report_error`; ``KeyboardInterrupt`` keeps Python's
    default report."""
    if issubclass(exc_type, KeyboardInterrupt):
        sys.__excepthook__(exc_type, exc, tb)
        return
    if exc.__traceback__ is None:
        exc = exc.with_traceback(tb)
    _close_progress_bars()  # an open bar would be redrawn at exit, after the error line
    try:
        sys.stdout.flush()  # logs first, the error line last
    except Exception:  # a closed stdout must not hide the error
        pass
    _run_failure_callbacks()
    report_error(exc)


_failure_callbacks: list = []


def on_failure(callback) -> None:
    """Register ``callback()`` to run when an uncaught exception reaches :func:`excepthook` (not on
    ``KeyboardInterrupt``), before the error line is printed: e.g. removing the outputs of a run
    that failed before it produced anything (:func:`monai_cwcd.bundle.save_run_config`). A callback
    that raises is ignored (the error line still comes last)."""
    _failure_callbacks.append(callback)


def _run_failure_callbacks() -> None:
    while _failure_callbacks:
        callback = _failure_callbacks.pop()
        try:
            callback()
        except Exception:  # never hide the error being reported
            pass


def _close_progress_bars() -> None:
    tqdm_std = sys.modules.get("tqdm.std")
    if tqdm_std is None:
        return
    for bar in list(getattr(tqdm_std.tqdm, "_instances", ())):
        try:
            bar.close()
        except Exception:
            pass


def _pool_worker_in_task(thread: threading.Thread) -> bool:
    """A ``multiprocessing.pool`` worker thread that is running a task (not waiting for one)."""
    from multiprocessing import pool

    frame = sys._current_frames().get(thread.ident) if thread.ident is not None else None
    return frame is not None and frame.f_code is not pool.worker.__code__


def wait_for_pool_workers(timeout: float = 120.0) -> None:
    """Wait until no ``multiprocessing.pool.ThreadPool`` worker thread is inside a task.

    MONAI's ``CacheDataset`` fills its cache with a ``ThreadPool``; when one case fails, the
    exception leaves the pool, the pool is terminated, but its other worker threads (daemon
    threads) finish the case they are on. If the interpreter finalises meanwhile, a thread inside a
    PyTorch operator is unwound by ``pthread_exit`` through C++ frames and the process aborts with
    ``terminate called without an active exception`` (exit 134) after the error was printed. Called
    at exit by :func:`install_excepthook`; returns at once when no worker is busy.

    Args:
        timeout: longest wait in seconds. Defaults to 120.
    """
    from multiprocessing.dummy import DummyProcess

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        busy = [t for t in threading.enumerate() if isinstance(t, DummyProcess) and t.is_alive() and _pool_worker_in_task(t)]
        if not busy:
            return
        time.sleep(0.02)


class _DuplicateExceptionFilter(logging.Filter):
    """Hold back MONAI ``StatsHandler``'s ``Exception: ...`` traceback records and ignite's
    ``... terminating due to exception`` records: the excepthook reports the exception once."""

    def filter(self, record: logging.LogRecord) -> bool:
        if debug_enabled():
            return True
        return record.exc_info is None and "terminating due to exception" not in str(record.msg)


_DUPLICATE_FILTER = _DuplicateExceptionFilter()
_installed = False


def _filter_duplicate_logs() -> None:
    from ignite.engine import Engine
    from monai import engines
    from monai.apps.utils import get_logger

    # MONAI's StatsHandler logs through get_logger("monai.handlers.StatsHandler"); creating it the same
    # way here gives the same logger and handler, with the filter added
    get_logger("monai.handlers.StatsHandler").addFilter(_DUPLICATE_FILTER)
    names = ["Engine"] + [n for n, obj in vars(engines).items() if isinstance(obj, type) and issubclass(obj, Engine)]
    for name in names:  # ignite names an engine's logger after its class
        logging.getLogger(f"ignite.engine.engine.{name}").addFilter(_DUPLICATE_FILTER)


def install_excepthook() -> None:
    """Report uncaught exceptions with :func:`excepthook` (one plain line, printed last; the traceback
    in debug mode), hold back MONAI's and ignite's duplicate exception logs, and wait for busy
    ``ThreadPool`` workers at exit (:func:`wait_for_pool_workers`). Idempotent."""
    global _installed
    sys.excepthook = excepthook
    if _installed:
        return
    _installed = True
    _filter_duplicate_logs()
    atexit.register(wait_for_pool_workers)


# ------------------------------------------------------------------------------- override check


def _bundle_run_args(argv: Sequence[str]) -> list[str] | None:
    """Arguments after ``run`` when ``argv`` is ``python -m monai.bundle run ...``, else None."""
    if len(argv) < 2 or argv[1] != "run":
        return None
    parts = Path(argv[0]).parts
    return list(argv[2:]) if tuple(parts[-3:]) == ("monai", "bundle", "__main__.py") else None


def _run_flags(argv: Sequence[str] | None) -> dict[str, Any] | None:
    """The flags (:func:`_flags`) of a ``monai.bundle run`` command line (``None``: ``sys.argv``),
    with those of its ``--args_file`` under them; None when it is not such a command line."""
    args = _bundle_run_args(list(sys.argv if argv is None else argv))
    if args is None:
        return None
    flags = _flags(args)
    if "args_file" in flags:
        from monai.bundle import ConfigParser

        flags = {**ConfigParser.load_config_file(str(flags["args_file"])), **flags}
    return flags


def _flags(args: Sequence[str]) -> dict[str, Any]:
    """``{name: raw value}`` of the ``--name value`` / ``--name=value`` flags (python-fire's syntax;
    ``-`` in names read as ``_``); arguments after a lone ``--`` are fire's own."""
    from fire.parser import DefaultParseValue

    out: dict[str, Any] = {}
    i = 0
    while i < len(args):
        tok = args[i]
        if tok == "--":
            break
        if tok.startswith("--") and len(tok) > 2:
            name, eq, value = tok[2:].partition("=")
            if not eq:
                if i + 1 < len(args) and not args[i + 1].startswith("--"):
                    value, i = args[i + 1], i + 1
                else:
                    value = "True"
            out[name.replace("-", "_")] = DefaultParseValue(value)
        i += 1
    return out


def _run_arg_names() -> set[str]:
    """Names ``monai.bundle run`` takes for itself (not config overrides), from MONAI's signatures."""
    import inspect

    from monai.bundle import ConfigWorkflow, scripts

    names: set[str] = set()
    for fn in (scripts.run, scripts.create_workflow, ConfigWorkflow.__init__):
        for p in inspect.signature(fn).parameters.values():
            if p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL) and p.name != "self":
                names.add(p.name)
    return names


def _config_ids(config: Any, prefix: str = "") -> list[str]:
    """Every dict key of ``config`` as a MONAI id (``a#b#c``), list items not included."""
    ids: list[str] = []
    if isinstance(config, Mapping):
        for k, v in config.items():
            key = f"{prefix}{k}"
            ids.append(key)
            ids += _config_ids(v, f"{key}#")
    elif isinstance(config, list):
        for i, v in enumerate(config):
            ids += _config_ids(v, f"{prefix}{i}#")
    return ids


def check_overrides(argv: Sequence[str] | None = None) -> None:
    """Refuse a ``python -m monai.bundle run`` override whose key is not in the config.

    MONAI applies every ``--key value`` that is not an argument of ``run`` (``config_file``,
    ``meta_file``, ``logging_file``, ``args_file``, ``run_id``, ``init_id``, ``final_id``,
    ``tracking``, ..., read from MONAI's own signatures) as a config override, and silently adds a
    key that does not exist: ``--epoch 1`` for ``--epochs 1`` trains the full schedule. An override
    is accepted when its id (``a#b#c``, or ``a::b::c``) exists in the config files (merged as MONAI
    merges them, overrides in ``args_file`` included), when it adds an argument to a component (the
    parent is a dict with ``_target_``), when it is under ``_meta_``, or when it is one of the
    settings of ``--tracking``. Does nothing unless ``argv`` is a ``monai.bundle run`` command line.

    Args:
        argv: the command line. Defaults to ``None`` (``sys.argv``).

    Raises:
        UnknownOverrideError: (a ``ValueError``) naming each unknown key, the config files and the
            closest existing key (``difflib``).
    """
    flags = _run_flags(argv)
    if flags is None:
        return
    from monai.bundle import ConfigParser
    from monai.bundle.utils import DEFAULT_EXP_MGMT_SETTINGS
    from monai.utils import ensure_tuple

    if flags.get("config_file") is None:
        return
    files = [str(f) for f in ensure_tuple(flags["config_file"])]
    base = ConfigParser(ConfigParser.load_config_files(files))
    tracking = flags.get("tracking")
    if isinstance(tracking, str) and tracking in DEFAULT_EXP_MGMT_SETTINGS:
        tracking = DEFAULT_EXP_MGMT_SETTINGS[tracking]
    elif isinstance(tracking, str):
        tracking = ConfigParser.load_config_files(tracking)
    tracking_keys = set((tracking or {}).get("configs", {})) if isinstance(tracking, Mapping) else set()
    run_args = _run_arg_names()
    known = _config_ids(base.get())
    problems = []
    for name in flags:
        if name in run_args or name in tracking_keys or name.startswith("_meta_"):
            continue
        key = name.replace("::", "#")
        if key in base:
            continue
        parent = key.rpartition("#")[0]
        if parent and parent in base and isinstance(base[parent], Mapping) and "_target_" in base[parent]:
            continue  # a new argument of a component: the component's own signature checks it
        close = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
        hint = f"did you mean --{close[0]}?" if close else "no similar key exists"
        problems.append(f"--{name}: '{key}' is not a key of the config ({hint})")
    if problems:
        raise UnknownOverrideError(
            f"unknown override(s) on the command line: {'; '.join(problems)}. Config files: {', '.join(files)}. "
            "Overrides change keys that exist; add new keys in a config file."
        )


# ------------------------------------------------------------------------------- tracking check

_MLFLOW_INSTALL = "pip install -e '.[tracking]' (or pip install mlflow)"
_EXECUTED_NAME = re.compile(r"\+ '/(config_\d{8}_\d{6}\.json)'$")


def _executed_config(parser: Any) -> str | None:
    """Path of the config MONAI's ``--tracking`` saved (``save_execute_config``; by default
    ``<output_dir>/config_<date>.json``), or None."""
    raw = parser.get("save_execute_config", None)
    if not raw:
        return None
    try:
        match = _EXECUTED_NAME.search(raw) if isinstance(raw, str) else None
        if match:  # MONAI's default: "<output_dir> + '/config_<date>.json'", written to the resolved output_dir
            return os.path.join(os.fspath(parser.get_parsed_content("output_dir")), match.group(1))
        return os.fspath(parser.get_parsed_content("save_execute_config"))
    except Exception:  # an unresolvable output_dir: nothing of ours to clean up
        return None


def _remove_lone_executed_config(path: str) -> None:
    """After a failed run: remove MONAI's saved config ``path`` and its folder when the folder holds
    nothing else (the run produced nothing; a run that got further keeps it)."""
    folder = os.path.dirname(path) or "."
    if os.path.isfile(path) and os.listdir(folder) == [os.path.basename(path)]:
        os.remove(path)
        try:
            os.rmdir(folder)
        except OSError:
            pass


def check_tracking(argv: Sequence[str] | None = None) -> None:
    """Check ``--tracking`` of a ``python -m monai.bundle run`` command line before anything runs.

    With ``--tracking`` MONAI saves the executed config (``<output_dir>/config_<date>.json``) while it
    builds the workflow, before any config code runs; a run that fails before producing anything
    removes it again (and the folder, when that leaves it empty), so nothing half-written is left.
    ``--tracking mlflow`` (or a settings file using MONAI's ``MLFlowHandler``) needs MLflow: without
    it the run stops here instead of at the first handler (MONAI's ``OptionalImportError``).
    Does nothing unless ``argv`` is a ``monai.bundle run`` command line with ``--tracking``.

    Args:
        argv: the command line. Defaults to ``None`` (``sys.argv``).

    Raises:
        OptionalImportError: (an ``ImportError``) ``--tracking mlflow`` and ``import mlflow`` fails,
            naming the install command.
    """
    flags = _run_flags(argv)
    if flags is None:
        return
    import importlib
    import json

    from monai.bundle import ConfigParser
    from monai.bundle.utils import DEFAULT_EXP_MGMT_SETTINGS
    from monai.utils import OptionalImportError

    from monai_cwcd.bundle import _running_workflow

    tracking = flags.get("tracking")
    if tracking is None:
        return
    _, parser = _running_workflow()
    executed = _executed_config(parser) if parser is not None else None
    if executed is not None:
        on_failure(lambda: _remove_lone_executed_config(executed))
    if isinstance(tracking, str) and tracking in DEFAULT_EXP_MGMT_SETTINGS:
        settings = DEFAULT_EXP_MGMT_SETTINGS[tracking]
    elif isinstance(tracking, str):
        settings = ConfigParser.load_config_files(tracking)
    else:
        settings = tracking
    if "MLFlowHandler" not in json.dumps(settings, default=str):
        return
    try:
        importlib.import_module("mlflow")
    except ImportError as e:
        raise OptionalImportError(f"--tracking {tracking} needs MLflow: {_MLFLOW_INSTALL}") from e


def setup_bundle_run() -> None:
    """First item of the bundles' ``initialize``: :func:`install_excepthook`, then
    :func:`check_tracking` and :func:`check_overrides` of the command line.

    Example (a bundle config)::

        "initialize": ["$monai_cwcd.errors.setup_bundle_run()", ...]

    Raises:
        OptionalImportError: ``--tracking mlflow`` without MLflow installed.
        UnknownOverrideError: an override names a key that is not in the config.
    """
    install_excepthook()
    check_tracking()
    check_overrides()
