"""scripts/setup.sh: which extras it installs and when it reinstalls (the stamp logic).

The script runs for real on a copy of the repository's pyproject.toml and constraints.txt; the
virtual environment is a folder whose ``bin/python`` records its command lines (standing in for
pip, so no package is downloaded)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture()
def checkout(tmp_path):
    """A copy of the files setup.sh reads, and a venv whose python logs every call."""
    root = tmp_path / "repo"
    (root / "scripts").mkdir(parents=True)
    for rel in ("scripts/setup.sh", "pyproject.toml", "constraints.txt"):
        shutil.copy(REPO / rel, root / rel)
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    log = tmp_path / "calls.log"
    python = venv / "bin" / "python"
    python.write_text(f'#!/usr/bin/env bash\necho "$*" >> "{log}"\nexit 0\n')
    python.chmod(0o755)
    return root, venv, log


def _setup(root: Path, venv: Path, *extras: str) -> str:
    env = dict(os.environ, MONAI_CWCD_VENV=str(venv))
    proc = subprocess.run(["bash", str(root / "scripts" / "setup.sh"), *extras], env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def _installs(log: Path) -> list[str]:
    """The ``pip install -e`` targets called so far (relative to the checkout)."""
    if not log.exists():
        return []
    return [line.split(" -e ")[1].rsplit("/", 1)[-1] for line in log.read_text().splitlines() if " -e " in line]


def test_demo_then_test_then_demo(checkout):
    root, venv, log = checkout
    _setup(root, venv)  # demo: runtime only
    assert _installs(log) == ["repo"]
    assert "torch==2.13.0" in log.read_text() and f"-c {root}/constraints.txt" in log.read_text()
    _setup(root, venv)  # nothing changed: no install
    assert _installs(log) == ["repo"]
    _setup(root, venv, "test")  # test after demo: adds the test extra
    assert _installs(log) == ["repo", "repo[test]"]
    _setup(root, venv)  # demo after test: already there
    _setup(root, venv, "test")
    assert _installs(log) == ["repo", "repo[test]"]


def test_test_first_and_dependency_change(checkout):
    root, venv, log = checkout
    _setup(root, venv, "test")
    _setup(root, venv)
    assert _installs(log) == ["repo[test]"]
    with open(root / "pyproject.toml", "a") as f:  # a dependency change reinstalls, keeping the extras installed
        f.write("\n# changed\n")
    out = _setup(root, venv)
    assert _installs(log) == ["repo[test]", "repo[test]"] and "installing monai-cwcd[test]" in out
    _setup(root, venv, "bench", "test")
    assert _installs(log)[-1] == "repo[bench,test]"
