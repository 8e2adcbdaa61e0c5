"""The error contract (monai_cwcd.errors): the root message through MONAI's real wrappers, the
excepthook in real subprocesses (no abort, the plain line last), and the override-key check."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import monai.bundle
import pytest
import torch
from monai.bundle import ConfigParser
from monai.transforms import Compose, Lambdad

from monai_cwcd.data import DatasetError
from monai_cwcd.errors import UnknownOverrideError, check_overrides, format_error, root_error

REPO = Path(__file__).resolve().parents[1]
MONAI_MAIN = str(Path(monai.bundle.__file__).parent / "__main__.py")


def _fail(exc):
    def fn(_):
        raise exc

    return fn


def _caught(fn) -> BaseException:
    with pytest.raises(BaseException) as info:
        fn()
    return info.value


def test_root_through_config_parser_wrappers():
    """MONAI's ``Failed to instantiate`` and ``Failed to evaluate`` wrappers are skipped."""
    parser = ConfigParser({"loss": {"_target_": "monai_cwcd.losses.CWCDLoss", "alpha": 1.5}, "run": "$@loss(1, 2)"})
    exc = _caught(lambda: parser.get_parsed_content("run"))
    assert type(exc) is RuntimeError and "Failed to" in str(exc)
    assert isinstance(root_error(exc), ValueError)
    assert format_error(exc) == "ValueError: alpha must be in [0, 1], got 1.5."


def test_root_through_transform_wrapper_keeps_own_cause():
    """``applying transform`` is skipped; an error with its own (lower-level) cause is kept."""
    try:
        raise OSError("gzip trailer missing")
    except OSError as low:
        err = DatasetError("case amos_0001: file /d/amos_0001.nii.gz is truncated or corrupt")
        err.__cause__ = low
    exc = _caught(lambda: Compose([Lambdad("image", _fail(err))])({"image": 1}))
    assert "applying transform" in str(exc)
    assert format_error(exc) == "DatasetError: case amos_0001: file /d/amos_0001.nii.gz is truncated or corrupt"


class _BadCase(torch.utils.data.Dataset):
    def __len__(self):
        return 2

    def __getitem__(self, i):
        return Compose([Lambdad("label", _fail(DatasetError(f"case {i}: label file x.nii.gz holds values [99]")))])(
            {"label": i}
        )


def test_root_from_dataloader_worker_process():
    """PyTorch re-raises a worker's error with its traceback as text; the worker's own error is read back."""
    loader = torch.utils.data.DataLoader(_BadCase(), num_workers=1)
    exc = _caught(lambda: next(iter(loader)))
    assert "DataLoader worker process 0" in str(exc)
    assert format_error(exc) == "DatasetError: case 0: label file x.nii.gz holds values [99]"


def test_message_forms():
    assert format_error(KeyError("id='x' is not found")) == "KeyError: id='x' is not found"
    multi = FileNotFoundError("dataset_dir 'x' does not exist. Pass it:\n  python -m monai.bundle run --dataset_dir d")
    assert format_error(multi) == "FileNotFoundError: dataset_dir 'x' does not exist. Pass it: python -m monai.bundle run --dataset_dir d"
    empty = _caught(lambda: (_ for _ in ()).throw(ValueError()))
    assert format_error(empty).startswith("ValueError: (no message; raised at ") and "test_errors.py" in format_error(empty)


def _script(tmp_path: Path, body: str, debug: bool = False) -> subprocess.CompletedProcess:
    path = tmp_path / "script.py"
    path.write_text(textwrap.dedent(body))
    env = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS="1")
    env.pop("MONAI_CWCD_DEBUG", None)
    if debug:
        env["MONAI_CWCD_DEBUG"] = "1"
    return subprocess.run([sys.executable, str(path)], env=env, capture_output=True, text=True, timeout=300)


def test_excepthook_plain_line_last_and_debug_traceback(tmp_path):
    body = """
        from monai.bundle import ConfigParser
        from monai_cwcd.errors import install_excepthook
        install_excepthook()
        ConfigParser({"loss": {"_target_": "monai_cwcd.losses.CWCDLoss", "alpha": 1.5}}).get_parsed_content("loss")
    """
    plain = _script(tmp_path, body)
    assert plain.returncode == 1
    assert plain.stderr.splitlines()[-1] == "ValueError: alpha must be in [0, 1], got 1.5."
    assert "Traceback" not in plain.stderr and "MONAI_CWCD_DEBUG=1" in plain.stderr
    debug = _script(tmp_path, body, debug=True)
    assert debug.returncode == 1 and "Traceback (most recent call last)" in debug.stderr
    assert "Failed to instantiate" in debug.stderr
    assert debug.stderr.splitlines()[-1] == "ValueError: alpha must be in [0, 1], got 1.5."


def test_no_abort_when_a_pool_task_fails_while_others_run_cpp(tmp_path):
    """The cause of the bundles' exit 134: a ThreadPool task fails (as a CacheDataset transform can)
    while another worker is inside a PyTorch operator; without waiting for it at exit the
    interpreter finalises under it and aborts (`terminate called without an active exception`)."""
    body = """
        import torch
        from multiprocessing.pool import ThreadPool
        from monai_cwcd.errors import install_excepthook
        install_excepthook()
        def work(i):
            if i == 0:
                raise ValueError("case 0: bad label")
            x = torch.randn(300, 300)
            for _ in range(40):
                x = torch.linalg.inv(x @ x.T + torch.eye(300))
            return i
        with ThreadPool(2) as p:
            list(p.imap(work, range(4)))
    """
    proc = _script(tmp_path, body)
    assert proc.returncode == 1, proc.stderr
    assert "terminate called" not in proc.stderr
    assert proc.stderr.splitlines()[-1] == "ValueError: case 0: bad label"


# ------------------------------------------------------------------------------ override check


@pytest.fixture
def configs(tmp_path):
    base = {
        "epochs": 3,
        "network_def": {"_target_": "monai.networks.nets.UNet", "spatial_dims": 3},
        "train": {"trainer": {"max_epochs": "@epochs", "amp": False}, "handlers": [{"_target_": "StatsHandler"}]},
    }
    overlay = {"network_def#spatial_dims": 2}
    (tmp_path / "train.json").write_text(json.dumps(base))
    (tmp_path / "demo.json").write_text(json.dumps(overlay))
    return json.dumps([str(tmp_path / "train.json"), str(tmp_path / "demo.json")])


def _argv(files: str, *extra: str) -> list[str]:
    return [MONAI_MAIN, "run", "--config_file", files, *extra]


@pytest.mark.parametrize(
    "extra",
    [
        ("--epochs", "1"),
        ("--train#trainer#amp", "true"),
        ("--train::trainer::max_epochs", "2"),
        ("--network_def#channels", "[4,8]"),  # a new argument of a component
        ("--run_id", "run", "--logging_file", "x.conf", "--meta_file", "m.json", "--init_id", "initialize"),
        ("--tracking", "mlflow", "--experiment_name", "e"),
        ("--_meta_#version", "1"),
        ("--epochs=2",),
        ("--", "--help"),
    ],
)
def test_overrides_that_exist_are_accepted(configs, extra):
    check_overrides(_argv(configs, *extra))


@pytest.mark.parametrize(
    "extra, closest",
    [
        (("--epoch", "1"), "--epochs"),
        (("--train#trainer#max_epoch", "1"), "--train#trainer#max_epochs"),
        (("--train#handler", "[]"), "--train#handlers"),
    ],
)
def test_unknown_override_names_the_closest_key(configs, extra, closest):
    with pytest.raises(UnknownOverrideError, match=rf"--{extra[0][2:]}: .* is not a key of the config \(did you mean {closest}\?\)"):
        check_overrides(_argv(configs, *extra))


def test_unknown_override_in_args_file_and_other_programs(configs, tmp_path):
    args = tmp_path / "args.json"
    args.write_text(json.dumps({"config_file": json.loads(configs), "epoch": 2}))
    with pytest.raises(UnknownOverrideError, match="did you mean --epochs"):
        check_overrides([MONAI_MAIN, "run", "--args_file", str(args)])
    check_overrides(["pytest", "run", "--config_file", configs, "--epoch", "1"])  # not monai.bundle: not checked
    check_overrides([MONAI_MAIN, "ckpt_export", "--config_file", configs, "--epoch", "1"])  # not `run`
