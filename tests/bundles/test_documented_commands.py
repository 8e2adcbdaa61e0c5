"""Documented commands are code: every fenced shell command of README.md, docs/*.md and
bundles/*/docs/README.md that runs a bundle or the ``monai-cwcd`` CLI is run here, in document order,
on the tiny test datasets, in a scratch copy of the repository.

What is changed before a command runs (and nothing else):
- ``python`` / ``monai-cwcd`` / ``torchrun`` become this interpreter (``sys.executable``, ``-m
  monai_cwcd``, ``-m torch.distributed.run`` with 2 processes);
- placeholders (``/path/to/data``, ``/path/to/images``, ...) become the tiny dataset of the bundle the
  command names (:data:`PLACEHOLDERS`);
- size-reducing overrides are appended (:func:`_size_overrides`): 1 epoch, a tiny network, 32^3
  patches, no loader workers.
A block's ``cd`` applies to the rest of that block. A command that matches no rule fails the test, so a
new kind of documented command needs a rule here. Commands that cannot run here are listed in
:data:`SKIPPED` with the reason.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import REPO, TINY

DOC_FILES = sorted(
    {REPO / "README.md", *REPO.glob("docs/*.md"), *REPO.glob("bundles/*/docs/README.md")}, key=lambda p: str(p)
)
RUNNERS = ("python ", "monai-cwcd ", "torchrun ", "bash scripts/")
#: documented commands that cannot run in a test, with the reason
SKIPPED = {
    "bash scripts/demo.sh": "creates a virtual environment; the command it runs (train.json + demo.json) is run from "
    "docs/bundles.md and the bundle READMEs, and the fresh-clone check runs it as is",
    "bash scripts/test.sh": "is this test suite (CI runs it through .ci/run)",
    "--rdzv_endpoint=HOST": "multi-node: needs a second machine (the single-node torchrun command is run)",
}
#: run in the default suite: the AMOS path a new user follows (its commands include every command of
#: docs/bundles.md but one). The others are marked ``slow`` and ``docs``: ``.ci/run`` runs them after
#: the default suite (``bash scripts/test.sh -m docs``), which keeps the default run under 10 minutes.
DEFAULT_FILES = {"bundles/amos/docs/README.md"}
#: slow only (``pytest -m slow``), not in CI: the comparison commands (downloads from PyPI with
#: ``--fetch``, several ``--quick`` suites: tens of minutes on 2 cores)
SLOW_ONLY_FILES = {"docs/evaluation.md"}


def _blocks(path: Path) -> list[list[str]]:
    """Commands of each fenced bash/sh block: continuation lines joined, comments and blanks dropped."""
    out = []
    for m in re.finditer(r"^```(?:bash|sh|shell|console)\n(.*?)^```", path.read_text(), re.S | re.M):
        lines = []
        for line in m.group(1).replace("\\\n", " ").splitlines():
            line = line.strip()
            if line.startswith("$ "):
                line = line[2:]
            if line and not line.startswith("#"):
                lines.append(line)
        if lines:
            out.append(lines)
    return out


def _bundle_of(cmd: str) -> str | None:
    m = re.search(r"\b(amos|brats|pengwin)\b", cmd)
    return m.group(1) if m else None


def _placeholders(bundle: str, data: dict[str, str], cwd: Path) -> dict[str, str]:
    """Placeholder -> tiny-data path for ``bundle``."""
    d = Path(data[bundle])
    common = {"/path/to/AMOS22": d, "/path/to/data": d, "/data/BraTS2021": d}
    if bundle == "amos":
        tests = sorted((d / "imagesTs").glob("*.nii.gz"))
        common.update({"/path/to/images": d / "imagesTs", "/path/to/a.nii.gz": tests[0], "/path/to/b.nii.gz": tests[1]})
    elif bundle == "brats":
        cases = sorted(p for p in d.iterdir() if p.is_dir())
        common.update(
            {"/path/to/BraTS2021_ValidationData": d, "/path/to/BraTS2021_01001": cases[0], "/path/to/BraTS2021_01002": cases[1]}
        )
    else:
        folder = next(d.glob("PENGWIN_CT_train_images*"))
        common.update({"/path/to/images": folder, "/path/to/001.mha": folder / "001.mha", "/path/to/002.mha": folder / "002.mha"})
    return {k: str(v) for k, v in common.items()}


def _labels_for(pred_dir: Path, dest: Path) -> Path:
    """A label folder for ``monai-cwcd evaluate <pred_dir> /path/to/labels``: the predictions themselves
    (the command's exit code and pairing are what is checked, not the scores)."""
    if not dest.exists():
        shutil.copytree(pred_dir, dest)
    return dest


def _size_overrides(cmd: str, sandbox: Path) -> list[str]:
    """Overrides that make a documented ``monai.bundle run`` fit a test: 1 epoch (2 to resume) with
    validation, a tiny network, 32^3 patches, no loader workers."""
    if " run " not in f"{cmd} ":
        return []
    extra = ["--num_workers", "0"]
    m = re.search(r"--config_file\s+(\"[^\"]+\"|'[^']+'|\S+)", cmd)
    files = m.group(1).strip("\"'") if m else ""
    if "train.json" in files and "evaluate.json" not in files:
        extra += ["--epochs", "2" if "--resume true" in cmd else "1", "--val_interval", "1",
                  "--patch_size", json.dumps(TINY["patch_size"])]
        key, net = _network_def(files, sandbox)
        if net.endswith("PDANet"):
            extra += [f"--{key}#features", json.dumps(TINY["features"])]
    return extra


def _network_def(files: str, sandbox: Path) -> tuple[str, str]:
    """(config key, ``_target_``) of the network after layering the config files of a command; a
    ``network_def`` that is a ``%key`` reference (e.g. the demo's ``%demo_pdanet``) names that key."""
    key, target = "network_def", ""
    for f in re.findall(r"[\w./-]+\.json", files):
        path = sandbox / f
        if not path.is_file():
            continue
        cfg = json.loads(path.read_text())
        net = cfg.get("network_def")
        if isinstance(net, str) and net.startswith("%") and isinstance(cfg.get(net[1:]), dict):
            key, net = net[1:], cfg[net[1:]]
        elif isinstance(net, dict):
            key = "network_def"
        if isinstance(net, dict) and "_target_" in net:
            target = net["_target_"]
    return key, target


def _command(line: str, bundle: str | None, data: dict[str, str], sandbox: Path, cwd: Path) -> list[str]:
    """The argv that runs documented ``line`` here."""
    line = re.sub(r"(?<![\w.])/tmp/([\w.-]+)", lambda m: str(sandbox / m.group(1)), line)  # documented scratch outputs (before the placeholders, which may live in /tmp)
    if bundle:
        for key, value in sorted(_placeholders(bundle, data, cwd).items(), key=lambda kv: -len(kv[0])):
            line = line.replace(key, value)
    if "/path/to/labels" in line:
        pred = re.search(r"evaluate\s+(\S+)", line).group(1)
        line = line.replace("/path/to/labels", str(_labels_for(cwd / pred, sandbox / "labels_for_evaluate")))
    argv = shlex.split(line, comments=True)  # a trailing `# comment` is not an argument
    extra = _size_overrides(line, sandbox)
    if argv[0] == "python":
        argv[0] = sys.executable
    elif argv[0] == "monai-cwcd":
        argv[:1] = [sys.executable, "-m", "monai_cwcd"]
    elif argv[0] == "torchrun":
        argv[:1] = [sys.executable, "-m", "torch.distributed.run"]
        argv = [re.sub(r"^--nproc_per_node=\d+$", "--nproc_per_node=2", a) for a in argv]
    runs_comparison = "compare" in argv or any(a.endswith("compare_losses.py") for a in argv)
    if runs_comparison and "--quick" not in argv:
        argv.append("--quick")
    return argv + extra


def _sandbox(tmp_path: Path) -> Path:
    """A scratch copy of the repository's tracked files (outputs of the commands land here)."""
    files = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, capture_output=True, check=True).stdout.decode().split("\0")
    box = tmp_path / "repo"
    for rel in filter(None, files):
        src = REPO / rel
        if src.is_file():
            (box / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, box / rel)
    return box


def _doc_ids() -> list:
    params = []
    for path in DOC_FILES:
        rel = str(path.relative_to(REPO))
        lines = [line for block in _blocks(path) for line in block]
        if not any(line.startswith(RUNNERS) and not any(k in line for k in SKIPPED) for line in lines):
            continue
        if rel in DEFAULT_FILES:
            marks = []
        elif rel in SLOW_ONLY_FILES:
            marks = [pytest.mark.slow]
        else:
            marks = [pytest.mark.slow, pytest.mark.docs]
        params.append(pytest.param(rel, id=rel, marks=marks))
    return params


def test_every_documented_command_has_a_rule():
    """Each documented command is run, skipped for a stated reason, or a ``cd``; nothing unclassified."""
    unknown = []
    for path in DOC_FILES:
        for block in _blocks(path):
            for line in block:
                if line.startswith(("cd ",) + RUNNERS) or any(k in line for k in SKIPPED):
                    continue
                if re.match(r"^[\w./-]+(\s|$)", line) and not line.startswith(("pip", "git")):
                    unknown.append(f"{path.relative_to(REPO)}: {line}")
    assert not unknown, "documented commands with no rule in this test:\n" + "\n".join(unknown)


def _shell_expanded_config(text: str) -> list[str]:
    """Double-quoted shell words holding a MONAI config expression (``$monai...``, ``$torch...``,
    ``$[...]``): bash expands ``$name`` inside double quotes, so the bundle gets a mangled value."""
    return [m.group(0) for m in re.finditer(r'"[^"\n]*"', text) if re.search(r"\$(\[|[a-z_][a-z_0-9]*\.)", m.group(0))]


def test_config_expressions_are_single_quoted_for_the_shell():
    """A documented override such as ``--contour_width_mm '$monai_cwcd.data.load_contour_widths(@dataset_dir)'``
    must be in single quotes: in double quotes bash replaces ``$monai_cwcd`` by nothing (a newcomer hit
    this). Checked in every fenced shell command and every inline code span that is an option or a command."""
    bad = []
    for path in DOC_FILES:
        text = path.read_text()
        spans = [line for block in _blocks(path) for line in block]
        spans += [s for s in re.findall(r"`([^`\n]+)`", text) if s.startswith(("--", *RUNNERS))]
        bad += [f"{path.relative_to(REPO)}: {word}" for span in spans for word in _shell_expanded_config(span)]
    assert not bad, "config expressions in double quotes (the shell expands their $):\n" + "\n".join(bad)
    # the check itself: the form that broke, and the forms that are fine
    assert _shell_expanded_config('--contour_width_mm "$monai_cwcd.data.load_contour_widths(@dataset_dir)"')
    assert _shell_expanded_config('--x "$[1, 2]"') and not _shell_expanded_config('"$MONAI_CWCD_VENV/bin/python"')
    assert not _shell_expanded_config("--loss '$monai.losses.DiceLoss()'")


@pytest.mark.parametrize("doc", _doc_ids())
def test_documented_commands_run(doc, tiny_datasets, tmp_path):
    sandbox = _sandbox(tmp_path)
    env = dict(
        os.environ,
        PYTHONPATH=f"{REPO}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
        OMP_NUM_THREADS="1",
        PYTHONUNBUFFERED="1",
    )
    ran = []
    for block in _blocks(REPO / doc):
        cwd = sandbox
        for line in block:
            if any(k in line for k in SKIPPED):
                continue
            if line.startswith("cd "):
                cwd = (cwd / line[3:].strip()).resolve()
                continue
            if not line.startswith(RUNNERS):
                continue
            argv = _command(line, _bundle_of(line), tiny_datasets, sandbox, cwd)
            proc = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=900)
            assert proc.returncode == 0, (
                f"{doc}: documented command failed (exit {proc.returncode}):\n  {line}\nran as:\n  {shlex.join(argv)}\n"
                f"--- stdout\n{proc.stdout[-3000:]}\n--- stderr\n{proc.stderr[-4000:]}"
            )
            ran.append(line)
    assert ran, f"{doc}: no command ran"
