"""The ``monai-cwcd`` command end to end, as real subprocesses on real files."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from monai_cwcd.transforms.functional import label_contour


def _cli(*args: str, cwd: Path, check: bool = True) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1]))
    proc = subprocess.run(
        [sys.executable, "-m", "monai_cwcd", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"monai-cwcd {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}")
    return proc


@pytest.fixture(scope="module")
def amos_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("cli") / "amos"
    proc = _cli("demo-data", "amos", "--output_dir", str(out), "--num_cases", "4", "--shape", "[24,24,16]", cwd=out.parent)
    assert Path(proc.stdout.strip().splitlines()[-1]) == out
    return out


def test_demo_data_writes_real_layout(amos_dir: Path):
    meta = json.loads((amos_dir / "dataset.json").read_text())
    labels = sorted(amos_dir.glob("labels*/*.nii.gz"))
    assert len(labels) == 4 and "labels" in meta
    assert nib.load(str(labels[0])).shape == (24, 24, 16)


def test_contours_command_writes_maps_then_skips(amos_dir: Path):
    proc = _cli("contours", "amos", str(amos_dir), "--kernel_size", "3", "--num_workers", "1", cwd=amos_dir)
    assert "written 4" in proc.stdout, proc.stdout
    label = sorted(p for p in amos_dir.glob("labels*/*.nii.gz") if "_contour" not in p.name)[0]
    contour = Path(str(label).replace(".nii.gz", "_contour.nii.gz"))
    lab = np.asarray(nib.load(str(label)).dataobj)
    import torch

    expected = label_contour(torch.from_numpy(lab.astype(np.int64))[None], 3, 3, 1)[0].numpy()
    np.testing.assert_array_equal(np.asarray(nib.load(str(contour)).dataobj).astype(bool), expected)
    again = _cli("contours", "amos", str(amos_dir), "--num_workers", "1", cwd=amos_dir)
    assert "written 0, skipped 4" in again.stdout, again.stdout


def test_evaluate_command_perfect_prediction(amos_dir: Path, tmp_path: Path):
    preds = tmp_path / "preds"
    preds.mkdir()
    labels = sorted(p for p in amos_dir.glob("labelsTr/*.nii.gz") if "_contour" not in p.name)[:2]
    label_dir = tmp_path / "labels"
    label_dir.mkdir()
    for p in labels:
        shutil.copy(p, label_dir / p.name)
        shutil.copy(p, preds / p.name)
    out = tmp_path / "eval"
    proc = _cli("evaluate", str(preds), str(label_dir), str(out), "--num_classes", "16", cwd=tmp_path)
    summary = json.loads((out / "summary.json").read_text())
    assert (out / "per_case.csv").exists()
    assert any(p.suffix == ".png" for p in out.iterdir())
    assert summary["num_cases"] == 2
    assert summary["overall"]["dice"] == pytest.approx(1.0)
    assert summary["overall"]["hd95"] == pytest.approx(0.0)
    assert json.loads(proc.stdout)["overall"] == summary["overall"]


def test_evaluate_pairs_by_case_id_without_pattern(amos_dir: Path, tmp_path: Path):
    """``monai-cwcd evaluate <pred dir> <labels dir>``: predictions as inference writes them (``<case>_seg``),
    paired with the labels of the dataset folder by case id; contour maps on both sides and files that are
    not predictions are ignored; the output goes beside the predictions."""
    labels = amos_dir / "labelsTr"
    first = sorted(p for p in labels.glob("*.nii.gz") if "_contour" not in p.name)[0]
    shutil.copy(first, labels / first.name.replace(".nii.gz", "_contour.nii.gz"))  # as `monai-cwcd contours` writes
    preds = tmp_path / "run" / "predictions"
    preds.mkdir(parents=True)
    case = first.name[: -len(".nii.gz")]
    shutil.copy(first, preds / f"{case}_seg.nii.gz")
    shutil.copy(first, preds / f"{case}_contour.nii.gz")
    shutil.copy(first, preds / f"{case}_prob.nii.gz")  # not a prediction (another suffix)
    (preds / "log.txt").write_text("x")
    proc = _cli("evaluate", str(preds), str(labels), "--num_classes", "16", cwd=tmp_path)
    out = tmp_path / "run" / "predictions_evaluation"
    summary = json.loads((out / "summary.json").read_text())
    assert summary["num_cases"] == 1 and summary["overall"]["dice"] == pytest.approx(1.0)
    n_labels = len([p for p in labels.glob("*.nii.gz") if "_contour" not in p.name])
    assert summary["settings"]["labels_without_prediction"] == n_labels - 1
    assert json.loads(proc.stdout)["output_dir"] == str(out)
    # a prediction without label: one line naming the file, the case and the label folder
    shutil.copy(first, preds / "amos_0999_seg.nii.gz")
    bad = _cli("evaluate", str(preds), str(labels), cwd=tmp_path, check=False)
    assert bad.returncode != 0
    assert f"prediction '{preds / 'amos_0999_seg.nii.gz'}' (case 'amos_0999') has no label in '{labels}'" in bad.stderr


def test_bad_dataset_name_is_a_clear_error(tmp_path: Path):
    proc = _cli("demo-data", "lits", "--output_dir", str(tmp_path / "x"), cwd=tmp_path, check=False)
    assert proc.returncode != 0
    assert "lits" in proc.stderr and "amos" in proc.stderr


# ------------------------------------------------------------------------ help and error contract


def _commands() -> list[str]:
    from monai_cwcd.cli import COMMANDS

    return list(COMMANDS)


@pytest.mark.parametrize("command", _commands())
def test_help_of_every_command(command, capsys):
    """``monai-cwcd <command> --help`` shows python-fire's help (commands added later are covered)."""
    from monai_cwcd.cli import main

    with pytest.raises(SystemExit) as info:
        main([command, "--help"])
    assert info.value.code in (0, None)
    out = capsys.readouterr()
    text = out.out + out.err  # python-fire prints help to stdout or stderr depending on the route
    assert "SYNOPSIS" in text and f"monai-cwcd {command}" in text, text
    assert "Traceback" not in text and "Error:" not in text, text
    assert "INFO: Showing help" not in text, text  # python-fire's notice about its own help syntax
    assert "``" not in text and ":func:" not in text, text  # reST markup shown as plain `x`


def test_top_level_help(capsys):
    """``monai-cwcd --help`` and ``-h`` list the commands, without python-fire's notice."""
    from monai_cwcd.cli import COMMANDS, main

    for flag in ("--help", "-h"):
        with pytest.raises(SystemExit) as info:
            main([flag])
        assert info.value.code in (0, None)
        out = capsys.readouterr()
        text = out.out + out.err
        assert "SYNOPSIS" in text and all(name in text for name in COMMANDS), text
        assert "INFO: Showing help" not in text, text


def test_compare_options_are_compare_losses_arguments():
    """`monai-cwcd compare` lists its options explicitly (python-fire needs them for --help and the
    unknown-option check): they must stay the arguments of compare_losses, plus --docs."""
    import inspect

    from monai_cwcd.cli import compare
    from monai_cwcd.evaluation import compare_losses

    assert set(inspect.signature(compare).parameters) == set(inspect.signature(compare_losses).parameters) | {"docs"}


def test_compare_help_subprocess(tmp_path: Path):
    proc = _cli("compare", "--help", cwd=tmp_path)
    text = proc.stdout + proc.stderr
    assert "--quick" in text and "--epochs" in text, text
    assert "TypeError" not in text, text
    # every option has a line of help and a type python-fire shows whole (no "Optional['Sequence[floa...")
    assert "..." not in text and "comma list" in text and "3x1" in text, text


def test_compare_contour_settings_text(tmp_path: Path):
    """`--contour_settings 3x1,2mm,adaptive:0.25` (text, as a shell user types it) gives one CWCD row each;
    a bad setting ends in the one-line message naming it."""
    _cli("compare", "--quick", "--losses", "[CWCD]", "--networks", "[unet]", "--contour_settings", "3x1,2mm,adaptive:0.25",
         "--output_dir", str(tmp_path / "cmp"), cwd=tmp_path)
    md = (tmp_path / "cmp" / "results.md").read_text()
    assert "| CWCD 2mm | unet | 2 mm |" in md and "| CWCD adaptive 0.25 | unet | adaptive (0.25 r) |" in md
    proc = _cli("compare", "--quick", "--contour_settings", "3x1,wide", "--output_dir", str(tmp_path / "bad"), cwd=tmp_path, check=False)
    assert proc.returncode == 1 and "contour setting 'wide'" in _last_line(proc.stderr)


def test_compare_unknown_augmentation_is_one_line_and_writes_nothing(tmp_path: Path):
    proc = _cli("compare", "--quick", "--augmentation", "elastic", "--output_dir", str(tmp_path / "bad"), cwd=tmp_path, check=False)
    assert proc.returncode == 1 and "augmentation must be one of ['affine'] or 'none', got 'elastic'" in _last_line(proc.stderr)
    assert not (tmp_path / "bad").exists()


def _last_line(text: str) -> str:
    return text.rstrip("\n").splitlines()[-1]


def test_errors_end_in_one_plain_line(tmp_path: Path):
    """A data error: exit 1, no traceback, the message naming the file is the last stderr line;
    MONAI_CWCD_DEBUG=1 adds the traceback before the same last line."""
    proc = _cli("evaluate", str(tmp_path / "no_preds"), str(tmp_path), str(tmp_path / "out"), cwd=tmp_path, check=False)
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    last = _last_line(proc.stderr)
    assert last.startswith("ValueError: ") and "no_preds" in last and "does not exist" in last, proc.stderr
    assert "MONAI_CWCD_DEBUG=1" in proc.stderr
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1]), MONAI_CWCD_DEBUG="1")
    debug = subprocess.run([sys.executable, "-m", "monai_cwcd", "evaluate", str(tmp_path / "no_preds"), str(tmp_path),
                            str(tmp_path / "out")], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert debug.returncode == 1 and "Traceback (most recent call last)" in debug.stderr
    assert _last_line(debug.stderr) == last
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    "args, expected",
    [
        (["demo-data", "amos", "--num_case", "3"], "unknown option --num_case; did you mean --num_cases?"),
        (["compare", "--epoch", "2"], "unknown option --epoch; did you mean --epochs?"),
        (["evalute", "a", "b", "c"], "unknown command 'evalute'; did you mean 'evaluate'?"),
        (["evaluate", "preds"], "missing argument(s) label_dir"),
    ],
)
def test_command_line_mistakes_are_refused_before_running(args, expected, tmp_path: Path, capsys):
    """Unknown options (python-fire would run the command first), commands and missing arguments."""
    from monai_cwcd.cli import main

    with pytest.raises(SystemExit) as info:
        main(args)
    assert info.value.code == 1
    err = capsys.readouterr().err
    assert expected in _last_line(err), err
    assert not any(tmp_path.iterdir())
