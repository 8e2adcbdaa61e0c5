"""Portable run records (monai_cwcd.evaluation.records, ``--records`` of benchmarks/compare_losses.py)."""

from __future__ import annotations

import csv
import json
import lzma
import os
import re
import runpy
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from monai_cwcd.evaluation.records import RECORDS_FORMAT, pack_records, unpack_records

REPO = Path(__file__).resolve().parents[2]


def _runs(root: Path, files: dict[str, dict]) -> None:
    for rel, rec in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(json.dumps(rec))


def test_pack_and_unpack_round_trip(tmp_path):
    """Packing folds every run file of each data folder into one xz file (deterministic), unpacking
    restores them with the same content; records only grow and local files are never overwritten."""
    a = tmp_path / "a"
    runs = {"amos_48x48x32_b2/test_cwcd_seed0_lr0.002_e40.json": {"ident": {"seed": 0}, "seconds": 1.5, "per_epoch": {"40": {}}},
            "amos_48x48x32_b2/test_cwcd_seed1_lr0.002_e40.json": {"ident": {"seed": 1}, "seconds": 2.5, "final_loss": None},
            "ct_64x48x16_b5/sel_dice_ce_seed0_lr0.005_e300.json": {"ident": {"seed": 0}, "seconds": 9.0}}
    _runs(a / "runs", runs)
    (a / "part1").mkdir()
    (a / "part1" / "comparison.json").write_text(json.dumps({"settings": {"from_scratch": {"wall_seconds": 60.0}}}))
    rec = tmp_path / "records"
    written = pack_records(a, rec, ["part1", "part9"])  # part9 has no report: nothing to store
    assert sorted(p.relative_to(rec).as_posix() for p in written) == [
        "parts/part1.json.xz", "runs/amos_48x48x32_b2.json.xz", "runs/ct_64x48x16_b5.json.xz"]
    first = {p: p.read_bytes() for p in written}
    data = json.loads(lzma.decompress(first[rec / "runs" / "amos_48x48x32_b2.json.xz"]))
    assert data["format"] == RECORDS_FORMAT and sorted(data["runs"]) == ["test_cwcd_seed0_lr0.002_e40", "test_cwcd_seed1_lr0.002_e40"]
    assert pack_records(a, rec, ["part1"]) == []  # nothing changed: nothing rewritten
    assert {p: p.read_bytes() for p in written} == first
    (rec / "runs" / "amos_48x48x32_b2.json.xz").unlink()
    pack_records(a, rec, ["part1"])
    assert {p: p.read_bytes() for p in written} == first  # the same runs pack to the same bytes

    b = tmp_path / "b"
    assert unpack_records(rec, b) == {"runs": 3, "parts": 1}
    for rel, content in runs.items():
        assert json.loads((b / "runs" / rel).read_text()) == content
    assert json.loads((b / "part1" / "comparison.json").read_text())["settings"]["from_scratch"] == {"wall_seconds": 60.0}
    assert unpack_records(rec, b) == {"runs": 0, "parts": 0}  # nothing left to restore
    # a local run is never overwritten by its record
    local = b / "runs" / "amos_48x48x32_b2" / "test_cwcd_seed0_lr0.002_e40.json"
    local.write_text(json.dumps({"ident": {"seed": 0}, "seconds": 3.0}))
    unpack_records(rec, b)
    assert json.loads(local.read_text())["seconds"] == 3.0
    # records grow: a run missing on disk stays, a run on disk replaces its record
    local.unlink()
    (b / "runs" / "ct_64x48x16_b5" / "sel_dice_ce_seed0_lr0.005_e300.json").unlink()
    _runs(b / "runs", {"amos_48x48x32_b2/test_cwcd_seed1_lr0.002_e40.json": {"ident": {"seed": 1}, "seconds": 4.0}})
    pack_records(b, rec)
    c = tmp_path / "c"
    assert unpack_records(rec, c) == {"runs": 3, "parts": 1}
    assert json.loads((c / "runs" / "amos_48x48x32_b2" / "test_cwcd_seed1_lr0.002_e40.json").read_text())["seconds"] == 4.0
    assert (c / "runs" / "ct_64x48x16_b5" / "sel_dice_ce_seed0_lr0.005_e300.json").exists()
    assert unpack_records(tmp_path / "none", tmp_path / "d") == {"runs": 0, "parts": 0}


def test_bad_records_name_the_file(tmp_path):
    bad = tmp_path / "records" / "runs" / "amos_48x48x32_b2.json.xz"
    bad.parent.mkdir(parents=True)
    bad.write_bytes(b"not xz")
    with pytest.raises(ValueError, match=r"amos_48x48x32_b2\.json\.xz: not a records file"):
        unpack_records(tmp_path / "records", tmp_path / "o")
    bad.write_bytes(lzma.compress(json.dumps({"format": 99, "runs": {}}).encode()))
    with pytest.raises(ValueError, match="expected a records file of format 1 with key 'runs', got format 99"):
        unpack_records(tmp_path / "records", tmp_path / "o")
    _runs(tmp_path / "o" / "runs", {"amos_48x48x32_b2/x.json": {}})
    (tmp_path / "o" / "runs" / "amos_48x48x32_b2" / "y.json").write_text("{half")
    bad.unlink()
    with pytest.raises(ValueError, match=r"y\.json: a run file that is not valid JSON"):
        pack_records(tmp_path / "o", tmp_path / "records")


def test_suite_resumes_from_records_on_another_machine(tmp_path, monkeypatch, capsys):
    """The suite with --records packs its runs; a second invocation into an empty output folder with
    another cache location (as on a new machine) restores them, trains nothing, gives the same per-case results and keeps the first
    invocation's from-scratch wall clock on its page."""
    monkeypatch.setenv("MONAI_CWCD_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    main = runpy.run_path(str(REPO / "benchmarks" / "compare_losses.py"))["main"]
    rec = tmp_path / "records"
    argv = ["--suite", "all", "--quick", "--parts", "3", "--records", str(rec)]
    assert main(argv + ["--output_dir", str(tmp_path / "one"), "--docs", str(tmp_path / "one" / "page.md")]) == 0
    assert sorted(p.relative_to(rec).as_posix() for p in rec.rglob("*.xz")) == ["parts/part3.json.xz", "runs/amos_32x32x16_b2.json.xz"]
    one = json.loads((tmp_path / "one" / "part3" / "comparison.json").read_text())["settings"]
    assert one["source"].startswith("$MONAI_CWCD_CACHE/") and str(tmp_path) not in lzma.decompress((rec / "runs" / "amos_32x32x16_b2.json.xz").read_bytes()).decode()
    assert one["reused_runs"] == 0 and one["from_scratch"]["wall_seconds"] == one["total_seconds"]
    n_runs = len(list((tmp_path / "one" / "runs").rglob("*.json")))

    # the other machine keeps its cache elsewhere: runs name their data relative to the cache
    monkeypatch.setenv("MONAI_CWCD_CACHE", str(tmp_path / "elsewhere" / "cache"))
    assert main(argv + ["--output_dir", str(tmp_path / "two"), "--docs", str(tmp_path / "two" / "page.md")]) == 0
    two = json.loads((tmp_path / "two" / "part3" / "comparison.json").read_text())["settings"]
    assert two["reused_runs"] == n_runs and two["from_scratch"] == one["from_scratch"]

    def table(d):
        return sorted(tuple(r.values()) for r in csv.DictReader(open(tmp_path / d / "part3" / "per_case.csv")))

    assert table("two") == table("one")
    assert f"| {one['from_scratch']['wall_seconds'] / 60:.1f} (1 process, 1 thread, " in (tmp_path / "two" / "page.md").read_text()
    capsys.readouterr()
    assert main(["--records", str(rec)]) == 1
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        "ValueError: --parts, --fetch and --records only apply to --suite all.")


def test_pack_records_stores_portable_data_locations(tmp_path, monkeypatch):
    """A run on disk that still names its data by an absolute path in the cache (trained before runs
    named it relative to the cache) is recorded as ``$MONAI_CWCD_CACHE/<folder>``; a folder outside
    the cache keeps its path."""
    cache = tmp_path / "cache"
    monkeypatch.setenv("MONAI_CWCD_CACHE", str(cache))
    _runs(tmp_path / "o" / "runs", {
        "d/old.json": {"ident": {"seed": 0, "source": str(cache / "amos_demo_v2_n27_seed0")}, "seconds": 1.0},
        "d/own.json": {"ident": {"seed": 0, "source": str(tmp_path / "my_data")}, "seconds": 1.0},
        "d/new.json": {"ident": {"seed": 1, "source": "$MONAI_CWCD_CACHE/amos_demo_v2_n27_seed0"}, "seconds": 1.0}})
    pack_records(tmp_path / "o", tmp_path / "rec")
    runs = json.loads(lzma.decompress((tmp_path / "rec" / "runs" / "d.json.xz").read_bytes()))["runs"]
    assert {k: r["ident"]["source"] for k, r in runs.items()} == {
        "old": "$MONAI_CWCD_CACHE/amos_demo_v2_n27_seed0", "own": str(tmp_path / "my_data"),
        "new": "$MONAI_CWCD_CACHE/amos_demo_v2_n27_seed0"}


def test_committed_records_hold_every_run_of_their_parts(tmp_path):
    """benchmarks/evidence (the records of docs/results.md) is in the repository and complete for the
    parts it records (all eight parts of the suite): every run a recorded part's report lists
    has its run record, under the portable (cache-relative) data location."""
    restored = unpack_records(REPO / "benchmarks" / "evidence", tmp_path)
    assert restored["runs"] >= 464
    assert {p.name for p in tmp_path.glob("part*")} >= {f"part{i}" for i in range(1, 9)}
    runs = {p.stem: json.loads(p.read_text()) for p in (tmp_path / "runs").rglob("*.json")}
    assert all(r["ident"]["source"].startswith("$MONAI_CWCD_CACHE/") for r in runs.values())
    for comparison in tmp_path.glob("part*/comparison.json"):
        doc = json.loads(comparison.read_text())
        for run in doc["runs"]:
            match = [r for r in runs.values() if r["ident"]["config"] == run["config"] and r["ident"]["seed"] == run["seed"]
                     and r["ident"]["learning_rate"] == run["learning_rate"] and r["ident"]["epochs"] == run["epochs"]
                     and r["ident"]["source"] == doc["settings"]["source"] and r["ident"]["fold"] == run["fold"]
                     and r["ident"].get("augmentation") == doc["settings"].get("augmentation")]
            assert match, f"{comparison.parent.name}: no record of {run['config']} seed {run['seed']} lr {run['learning_rate']}"
    # both real-CT parts (the loss comparison and the network table) are the augmented 800-step protocol
    settings = {p.parent.name: json.loads(p.read_text())["settings"] for p in tmp_path.glob("part*/comparison.json")}
    for part in ("part4", "part5"):
        assert settings[part]["augmentation"] == "affine" and settings[part]["epochs"] == 800, part


def _sections(page: str) -> dict[str, str]:
    """``{title: text}`` of a results page's ``## `` sections; the compute line's data-loading time
    (measured by the invocation that assembled the page, not recorded with the runs) is masked."""
    out, title = {}, None
    for line in page.splitlines():
        if line.startswith("## "):
            title = line[3:]
            out[title] = []
        elif title is not None:
            out[title].append(re.sub(r"loading [0-9.]+ s\)", "loading _ s)", line))
    return {t: "\n".join(lines).strip() for t, lines in out.items()}


def test_committed_page_is_rebuilt_from_the_committed_records(tmp_path):
    """docs/results.md is what benchmarks/evidence says: rebuilding the synthetic parts (1, 2, 3, 8)
    from a copy of the records, without training, reproduces their sections of the page line for line
    (every DSC, HD95, ASSD, p-value, claim and per-run time), so the page cannot drift from the records
    it cites (the real-data parts need the examples fetched; the same command covers them)."""
    suite = runpy.run_path(str(REPO / "benchmarks" / "compare_losses.py"))["SUITE"]
    records = tmp_path / "records"
    shutil.copytree(REPO / "benchmarks" / "evidence", records)
    page = tmp_path / "results.md"
    proc = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "compare_losses.py"), "--suite", "all", "--parts", "1,2,3,8",
         "--records", str(records), "--output_dir", str(tmp_path / "out"), "--docs", str(page)],
        capture_output=True, text=True, timeout=600, env={**os.environ, "OMP_NUM_THREADS": "1"})  # as the page was
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "[compare] training" not in proc.stdout, "a run was missing from the records and got trained"
    rebuilt, committed = _sections(page.read_text()), _sections((REPO / "docs" / "results.md").read_text())
    titles = [t for i, t in enumerate(suite) if i + 1 in (1, 2, 3, 8)]
    for title in titles:
        assert rebuilt[title] == committed[title], f"docs/results.md section '{title}' differs from its records"
