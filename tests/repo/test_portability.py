"""Nothing tracked may depend on the machine that wrote it: no absolute path outside the repository."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
# a quote, space, '=' or line start, then an absolute path under a machine-specific top-level folder
MACHINE_PATH = re.compile(r"""(?:^|['"\s=(])/(?:work|root|home|opt|srv|mnt|Users)/""")


def _tracked_files() -> list[Path]:
    try:
        out = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, capture_output=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout")
    return [REPO / p for p in out.decode().split("\0") if p]


def test_no_machine_paths_in_tracked_files():
    offenders = []
    for path in _tracked_files():
        if path.suffix in {".png", ".jpg", ".gz", ".pt"} or not path.is_file():
            continue
        text = path.read_text(errors="ignore")
        for lineno, line in enumerate(text.splitlines(), 1):
            for m in MACHINE_PATH.finditer(line):
                if "://" in line[max(0, m.start() - 8) : m.end()]:
                    continue
                offenders.append(f"{path.relative_to(REPO)}:{lineno}: {line.strip()[:120]}")
    assert not offenders, "tracked files name machine-specific absolute paths:\n" + "\n".join(offenders)
