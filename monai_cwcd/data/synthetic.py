"""Synthetic AMOS-, BraTS- and PENGWIN-like datasets in each dataset's real layout and file format.

They exist so a fresh machine can run the real loaders and bundles end to end in minutes. Each
generator models the class structure and the volume imbalance of its dataset (journal paper
``000`` Sec. II-D, Fig. 3, Table I), not its anatomy in detail:

- AMOS-like: CT in HU (air -1000, fat, muscle wall, a spine) with the 15 organs as perturbed
  ellipsoids placed roughly anatomically, sized from the paper's mean organ volumes (Table I), so
  liver / adrenal gland is a few hundred; anisotropic spacing (0.8, 0.8, 2.0) mm; Gaussian noise.
  ``dataset.json`` as in AMOS22, every sixth case listed under ``"validation"`` (imagesVa/labelsVa),
  and two unlabelled images in ``imagesTs/`` listed under ``"test"`` (what ``inference.json`` predicts).
- BraTS-like: 4 co-registered MRI modalities (flair, t1, t1ce, t2) with different tissue
  contrasts and a smooth bias field; a tumour whose regions are nested by construction, NCR (1)
  inside ET (4) inside ED (2), WT about 4x ET as in the paper; 1 mm spacing.
- PENGWIN-like: CT ``.mha`` (ITK) with sacrum and both hipbones, each cut into fragments of very
  different sizes (largest / smallest about 7x sacrum, 100x left hip, 20x right hip), raw labels
  1-10 / 11-20 / 21-30, and every fourth case with a rare fragment beyond the kept count (5th sacrum
  or right-hip, 7th left-hip fragment) that :class:`PengwinLabelRemap` merges; spacing (0.8, 0.8, 1.5) mm.

Everything is numpy, deterministic by ``(seed, case index)``: the same seed writes identical bytes,
and adding cases does not change the earlier ones.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from monai_cwcd.data._utils import logger, write_mha, write_nifti
from monai_cwcd.data.amos import AMOS_LABELS
from monai_cwcd.data.brats import BRATS_MODALITIES

__all__ = [
    "SYNTHETIC_SHAPES",
    "SYNTHETIC_SPACINGS",
    "DEMO_NUM_CASES",
    "GENERATOR_VERSION",
    "default_cache_root",
    "synthetic_amos_case",
    "synthetic_brats_case",
    "synthetic_pengwin_case",
    "write_synthetic_dataset",
    "ensure_demo_dataset",
]

GENERATOR_VERSION = 2
"""Bumped whenever the generated data change, so cached demo datasets are regenerated."""
SYNTHETIC_SHAPES: dict[str, tuple[int, int, int]] = {"amos": (48, 48, 32), "brats": (48, 48, 32), "pengwin": (48, 48, 32)}
SYNTHETIC_SPACINGS: dict[str, tuple[float, float, float]] = {
    "amos": (0.8, 0.8, 2.0),
    "brats": (1.0, 1.0, 1.0),
    "pengwin": (0.8, 0.8, 1.5),
}
DEMO_NUM_CASES: dict[str, int] = {"amos": 12, "brats": 12, "pengwin": 12}
_CODES = {"amos": 1, "brats": 2, "pengwin": 3}
AMOS_NUM_TEST_IMAGES = 2
AMOS_TEST_INDEX = 400
"""The AMOS-like data also hold ``AMOS_NUM_TEST_IMAGES`` unlabelled images in ``imagesTs/`` (listed
under ``"test"`` in ``dataset.json``, as in AMOS22), cases ``AMOS_TEST_INDEX + k`` of the generator
(ids 401, 402: CT ids, apart from the labelled cases)."""


def _rng(dataset: str, seed: int, index: int) -> np.random.Generator:
    return np.random.default_rng([int(seed), _CODES[dataset], int(index)])


def _grid(shape: Sequence[int], spacing: Sequence[float]) -> list[np.ndarray]:
    """Normalised coordinates in [-1, 1] along each axis (broadcastable open grid)."""
    return [np.linspace(-1.0, 1.0, n).reshape([-1 if a == i else 1 for a in range(3)]) for i, n in enumerate(shape)]


def _waves(rng: np.random.Generator, grid: list[np.ndarray], n: int = 4, freq: float = 3.0) -> np.ndarray:
    """Smooth random field in about [-1, 1]: a sum of ``n`` random plane cosines."""
    out = 0.0
    for _ in range(n):
        k = rng.normal(size=3) * freq
        out = out + np.cos(k[0] * grid[0] + k[1] * grid[1] + k[2] * grid[2] + rng.uniform(0, 2 * np.pi))
    return np.broadcast_to(out / np.sqrt(n / 2), [g.shape[i] for i, g in enumerate(grid)]).copy()


def _ellipsoid_norm(grid: list[np.ndarray], center: Sequence[float], radii: Sequence[float]) -> np.ndarray:
    return np.sqrt(sum(((g - c) / r) ** 2 for g, c, r in zip(grid, center, radii)))


def _physical_radii(volume_mm3: float, ratios: Sequence[float], extent_mm: np.ndarray) -> np.ndarray:
    """Normalised radii of an ellipsoid of ``volume_mm3`` with axis ``ratios`` in a field of ``extent_mm``."""
    ratios = np.asarray(ratios, dtype=float)
    r = (3.0 * volume_mm3 / (4.0 * np.pi * np.prod(ratios))) ** (1.0 / 3.0) * ratios
    return r / (extent_mm / 2.0)


def _erode(mask: np.ndarray) -> np.ndarray:
    """Binary erosion by the 6-neighbourhood (voxels outside the array count as background)."""
    out = mask.copy()
    for axis in range(mask.ndim):
        n = mask.shape[axis]
        lo = [slice(None)] * mask.ndim
        hi = [slice(None)] * mask.ndim
        lo[axis], hi[axis] = slice(0, n - 1), slice(1, n)
        out[tuple(lo)] &= mask[tuple(hi)]
        out[tuple(hi)] &= mask[tuple(lo)]
        edge = [slice(None)] * mask.ndim
        for i in (0, n - 1):
            edge[axis] = i
            out[tuple(edge)] = False
    return out


def _ensure_present(label: np.ndarray, value: int, center: Sequence[float]) -> None:
    """Give ``value`` at least its centre voxel (tiny shapes can make a small structure vanish)."""
    if not (label == value).any():
        idx = tuple(int(np.clip(round((c + 1) / 2 * (n - 1)), 0, n - 1)) for c, n in zip(center, label.shape))
        label[idx] = value


# --- AMOS-like -------------------------------------------------------------------------------
# organ id: (mean volume in voxels at 1 mm, paper 000 Table I; centre (x: +right, y: +anterior,
# z: +superior) in normalised body coordinates; axis ratios; mean HU)
_AMOS_ORGANS: dict[int, tuple[float, tuple[float, float, float], tuple[float, float, float], float]] = {
    6: (437787, (0.38, 0.05, 0.45), (1.3, 1.0, 1.0), 60),  # liver
    7: (104945, (-0.30, 0.25, 0.45), (1.0, 0.8, 1.0), 25),  # stomach
    1: (67634, (-0.58, -0.25, 0.45), (0.7, 1.0, 1.3), 50),  # spleen
    3: (50246, (-0.45, -0.45, 0.05), (0.7, 0.7, 1.4), 150),  # left kidney
    2: (47528, (0.45, -0.45, 0.0), (0.7, 0.7, 1.4), 150),  # right kidney
    14: (42971, (0.0, 0.30, -0.75), (1.2, 1.0, 0.8), 5),  # bladder
    8: (37865, (-0.10, -0.45, 0.0), (0.5, 0.5, 5.0), 180),  # aorta
    10: (23596, (-0.05, 0.02, 0.05), (3.0, 0.7, 0.6), 45),  # pancreas
    9: (22623, (0.14, -0.40, 0.0), (0.5, 0.6, 5.0), 120),  # postcava
    13: (18240, (0.16, 0.18, -0.15), (1.0, 1.0, 1.6), 35),  # duodenum
    15: (17324, (0.0, 0.05, -0.88), (1.0, 0.9, 0.9), 40),  # prostate/uterus
    4: (10014, (0.35, 0.40, 0.10), (0.8, 0.8, 1.3), 10),  # gallbladder
    5: (4995, (-0.05, -0.30, 0.80), (0.6, 0.6, 3.5), 40),  # esophagus
    12: (1291, (-0.28, -0.45, 0.42), (0.6, 0.6, 1.8), 30),  # left adrenal gland
    11: (1059, (0.26, -0.45, 0.42), (0.6, 0.6, 1.8), 30),  # right adrenal gland
}
_ORGAN_FILL = 0.30  # fraction of the body taken by the organs


def synthetic_amos_case(seed: int = 0, index: int = 0, shape: Sequence[int] | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One AMOS-like CT case: ``(image int16 HU, label uint8 0-15, affine)``, arrays in (x, y, z) order.

    Args:
        seed: dataset seed. Defaults to 0.
        index: case index (cases differ by index). Defaults to 0.
        shape: volume shape. Defaults to ``SYNTHETIC_SHAPES["amos"]``.
    """
    shape = tuple(int(s) for s in (shape or SYNTHETIC_SHAPES["amos"]))
    spacing = np.asarray(SYNTHETIC_SPACINGS["amos"])
    extent = np.asarray(shape) * spacing
    rng = _rng("amos", seed, index)
    grid = _grid(shape, spacing)
    body_r = (0.92 * rng.uniform(0.92, 1.0), 0.80 * rng.uniform(0.92, 1.0))
    body_norm = np.sqrt((grid[0] / body_r[0]) ** 2 + (grid[1] / body_r[1]) ** 2)
    body = np.broadcast_to(body_norm <= 1.0, shape)
    body_volume = np.pi * body_r[0] * body_r[1] * extent[0] * extent[1] / 4.0 * extent[2]
    scale = _ORGAN_FILL * body_volume / sum(v[0] for v in _AMOS_ORGANS.values())

    image = np.where(body, -90.0, -1000.0)  # fat inside the body, air outside
    image[(body_norm > 0.86) & body] = 50.0  # muscle wall
    spine = np.broadcast_to(np.sqrt((grid[0] / 0.12) ** 2 + ((grid[1] + 0.66) / 0.10) ** 2) <= 1.0, shape)
    image[spine] = 450.0
    label = np.zeros(shape, dtype=np.uint8)
    wobble = _waves(rng, grid, freq=4.0)
    for organ, (volume, center, ratios, hu) in _AMOS_ORGANS.items():  # largest first, small ones on top
        c = np.asarray(center) * np.asarray([body_r[0], body_r[1], 1.0]) + rng.uniform(-0.04, 0.04, 3)
        radii = _physical_radii(volume * scale * rng.uniform(0.85, 1.15), ratios, extent)
        mask = (_ellipsoid_norm(grid, c, radii) + 0.08 * wobble) <= 1.0
        label[mask & body] = organ
        image[mask & body] = hu + rng.uniform(-8, 8)
        _ensure_present(label, organ, c)
    image += rng.normal(0.0, 12.0, shape)
    affine = np.diag([*spacing, 1.0])
    affine[:3, 3] = -extent / 2.0
    return np.clip(np.round(image), -1024, 3071).astype(np.int16), label, affine


def _write_amos(output_dir: str, num_cases: int, seed: int, shape: Sequence[int] | None) -> None:
    training, validation = [], []
    for i in range(num_cases):
        image, label, affine = synthetic_amos_case(seed, i, shape)
        name = f"amos_{i + 1:04d}.nii.gz"
        sub = ("imagesVa", "labelsVa") if i % 6 == 5 else ("imagesTr", "labelsTr")
        for folder in sub:
            os.makedirs(os.path.join(output_dir, folder), exist_ok=True)
        write_nifti(image, affine, os.path.join(output_dir, sub[0], name))
        write_nifti(label, affine, os.path.join(output_dir, sub[1], name))
        entry = {"image": f"./{sub[0]}/{name}", "label": f"./{sub[1]}/{name}"}
        (validation if i % 6 == 5 else training).append(entry)
    test = []
    for k in range(AMOS_NUM_TEST_IMAGES):  # unlabelled, as AMOS22's imagesTs: cases beyond the labelled ones
        image, _, affine = synthetic_amos_case(seed, AMOS_TEST_INDEX + k, shape)
        name = f"amos_{AMOS_TEST_INDEX + k + 1:04d}.nii.gz"
        os.makedirs(os.path.join(output_dir, "imagesTs"), exist_ok=True)
        write_nifti(image, affine, os.path.join(output_dir, "imagesTs", name))
        test.append({"image": f"./imagesTs/{name}"})
    meta = {
        "name": "AMOS (synthetic)",
        "description": "Synthetic AMOS-like abdominal CT written by monai_cwcd.data.synthetic (not real data).",
        "tensorImageSize": "3D",
        "reference": "monai_cwcd",
        "licence": "Apache-2.0",
        "release": f"synthetic v{GENERATOR_VERSION}, seed {seed}",
        "modality": {"0": "CT"},
        "labels": {str(k): v for k, v in AMOS_LABELS.items()},
        "numTraining": len(training),
        "numValidation": len(validation),
        "numTest": len(test),
        "training": training,
        "validation": validation,
        "test": test,
    }
    with open(os.path.join(output_dir, "dataset.json"), "w") as f:
        json.dump(meta, f, indent=4)


# --- BraTS-like ------------------------------------------------------------------------------
# tissue contrasts: background, CSF, grey matter, white matter, ED, ET, NCR
_BRATS_CONTRAST = {
    "flair": (0, 150, 450, 400, 900, 700, 520),
    "t1": (0, 250, 500, 650, 420, 480, 300),
    "t1ce": (0, 250, 520, 660, 430, 1100, 280),
    "t2": (0, 1200, 650, 500, 1000, 850, 1250),
}


def synthetic_brats_case(seed: int = 0, index: int = 0, shape: Sequence[int] | None = None) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
    """One BraTS-like case: ``({modality: int16 image}, label uint8 in {0, 1, 2, 4}, affine)``.

    The tumour regions come from one perturbed distance field thresholded at three levels and then
    intersected, so NCR (1) lies inside ET (4), which lies inside ED (2).

    Args:
        seed: dataset seed. Defaults to 0.
        index: case index. Defaults to 0.
        shape: volume shape. Defaults to ``SYNTHETIC_SHAPES["brats"]``.
    """
    shape = tuple(int(s) for s in (shape or SYNTHETIC_SHAPES["brats"]))
    spacing = np.asarray(SYNTHETIC_SPACINGS["brats"])
    rng = _rng("brats", seed, index)
    grid = _grid(shape, spacing)
    brain_norm = _ellipsoid_norm(grid, (0, 0, 0), (0.85, 0.92, 0.9)) + 0.04 * _waves(rng, grid, freq=3.0)
    tissue = np.zeros(shape, dtype=np.uint8)
    tissue[brain_norm <= 1.0] = 2  # grey matter
    tissue[brain_norm <= 0.75] = 3  # white matter
    ventricles = _ellipsoid_norm(grid, (0, 0.05, 0.05), (0.18, 0.3, 0.15)) <= 1.0
    tissue[ventricles] = 1

    center = rng.uniform(-0.3, 0.3, 3)
    wt_r = rng.uniform(0.30, 0.38) * np.asarray([1.0, rng.uniform(0.8, 1.2), rng.uniform(0.8, 1.2)])
    field = _ellipsoid_norm(grid, center, wt_r)
    wt = (field + 0.10 * _waves(rng, grid, freq=5.0)) <= 1.0
    tc = ((field + 0.08 * _waves(rng, grid, freq=5.0)) <= 0.72) & wt
    ncr = ((field + 0.08 * _waves(rng, grid, freq=5.0)) <= 0.50) & tc
    brain = brain_norm <= 1.0
    wt &= _erode(brain)
    tc &= _erode(wt)  # at least one ED voxel between ET and the rest of the brain
    ncr &= _erode(tc)  # at least one ET voxel around the necrosis
    if not ncr.any():  # tiny shapes: a minimal nested tumour around the centre voxel
        ci = [int(np.clip(round((c + 1) / 2 * (n - 1)), 2, n - 3)) for c, n in zip(center, shape)]
        wt[ci[0] - 2 : ci[0] + 3, ci[1] - 2 : ci[1] + 3, ci[2] - 2 : ci[2] + 3] = True
        tc[ci[0] - 1 : ci[0] + 2, ci[1] - 1 : ci[1] + 2, ci[2] - 1 : ci[2] + 2] = True
        ncr[ci[0], ci[1], ci[2]] = True
    label = np.zeros(shape, dtype=np.uint8)
    label[wt] = 2
    label[tc] = 4
    label[ncr] = 1
    tumour_tissue = np.select([label == 2, label == 4, label == 1], [4, 5, 6], default=tissue.astype(np.int64)).astype(np.uint8)
    tumour_tissue[brain_norm > 1.0] = 0

    bias = 1.0 + 0.08 * _waves(rng, grid, n=2, freq=1.5)
    images = {}
    for modality in BRATS_MODALITIES:
        lut = np.asarray(_BRATS_CONTRAST[modality], dtype=float) * rng.uniform(0.9, 1.1)
        img = lut[tumour_tissue] * bias + rng.normal(0.0, 20.0, shape) * (tumour_tissue > 0)
        images[modality] = np.clip(np.round(img), 0, 32767).astype(np.int16)
    affine = np.diag([-spacing[0], -spacing[1], spacing[2], 1.0])
    affine[1, 3] = (shape[1] - 1) * spacing[1]
    return images, label, affine


def _write_brats(output_dir: str, num_cases: int, seed: int, shape: Sequence[int] | None) -> None:
    for i in range(num_cases):
        images, label, affine = synthetic_brats_case(seed, i, shape)
        case_id = f"BraTS2021_{i:05d}"
        folder = os.path.join(output_dir, case_id)
        os.makedirs(folder, exist_ok=True)
        for modality, img in images.items():
            write_nifti(img, affine, os.path.join(folder, f"{case_id}_{modality}.nii.gz"))
        write_nifti(label, affine, os.path.join(folder, f"{case_id}_seg.nii.gz"))


# --- PENGWIN-like ----------------------------------------------------------------------------
# bone: (raw label base, centre, radii, fractions of the non-main fragments 2, 3, ..., rare fraction)
_PENGWIN_BONES = (
    (0, (0.0, 0.40, 0.10), (0.24, 0.20, 0.50), (0.20, 0.14, 0.08), 0.05),  # sacrum, posterior (+y in LPS)
    (10, (0.50, 0.0, 0.0), (0.22, 0.45, 0.62), (0.15, 0.09, 0.04, 0.015, 0.006), 0.004),  # left hip (+x in LPS)
    (20, (-0.50, 0.0, 0.0), (0.22, 0.45, 0.62), (0.12, 0.10, 0.035), 0.02),  # right hip
)
# fragment counts per bone, cycled over the cases; the 4th pattern uses every kept class
_PENGWIN_PATTERNS = ((2, 3, 2), (1, 2, 3), (3, 4, 1), (4, 6, 4), (2, 5, 2), (1, 1, 1))


def _cut_fragments(mask: np.ndarray, fractions: Sequence[float], rng: np.random.Generator, coords: np.ndarray) -> list[np.ndarray]:
    """Split a bone ``mask`` into the main piece and caps of the given volume fractions (plane cuts)."""
    idx = np.flatnonzero(mask)
    main = np.ones(idx.size, dtype=bool)
    pieces = []
    for frac in fractions:
        remaining = np.flatnonzero(main)
        n = int(np.clip(round(frac * idx.size), 1, max(remaining.size - 1, 1)))
        if remaining.size <= 1:
            break
        direction = rng.normal(size=3)
        proj = coords[idx[remaining]] @ (direction / np.linalg.norm(direction))
        take = remaining[np.argsort(proj, kind="stable")[-n:]]
        main[take] = False
        pieces.append(idx[take])
    return [idx[main]] + pieces


def synthetic_pengwin_case(seed: int = 0, index: int = 0, shape: Sequence[int] | None = None) -> tuple[np.ndarray, np.ndarray, tuple]:
    """One PENGWIN-like CT case: ``(image int16 HU, raw label uint8 0-30, (spacing, origin))``.

    Fragment counts cycle through a fixed pattern (every 6th case has all 14 kept classes); every
    4th case (``index % 4 == 3``) adds a rare fragment beyond the kept count of one bone.

    Args:
        seed: dataset seed. Defaults to 0.
        index: case index. Defaults to 0.
        shape: volume shape. Defaults to ``SYNTHETIC_SHAPES["pengwin"]``.
    """
    shape = tuple(int(s) for s in (shape or SYNTHETIC_SHAPES["pengwin"]))
    spacing = np.asarray(SYNTHETIC_SPACINGS["pengwin"])
    extent = np.asarray(shape) * spacing
    rng = _rng("pengwin", seed, index)
    grid = _grid(shape, spacing)
    coords = np.stack(np.meshgrid(*[g.ravel() for g in grid], indexing="ij"), -1).reshape(-1, 3) * extent / 2
    body = np.broadcast_to(np.sqrt((grid[0] / 0.95) ** 2 + (grid[1] / 0.85) ** 2) <= 1.0, shape)
    image = np.where(body, 40.0, -1000.0)
    image[body & (np.sqrt((grid[0] / 0.95) ** 2 + (grid[1] / 0.85) ** 2) > 0.85)] = -90.0  # subcutaneous fat
    label = np.zeros(shape, dtype=np.uint8)
    pattern = _PENGWIN_PATTERNS[index % len(_PENGWIN_PATTERNS)]
    rare_bone = (index // 4) % 3 if index % 4 == 3 else -1
    wobble = _waves(rng, grid, freq=4.0)
    for b, (base, center, radii, fractions, rare) in enumerate(_PENGWIN_BONES):
        c = np.asarray(center) + rng.uniform(-0.04, 0.04, 3)
        r = np.asarray(radii) * rng.uniform(0.9, 1.1, 3)
        mask = ((_ellipsoid_norm(grid, c, r) + 0.06 * wobble) <= 1.0) & body & (label == 0)
        fr = [f * rng.uniform(0.8, 1.2) for f in fractions[: pattern[b] - 1]]
        if b == rare_bone:
            fr = list(fractions) + [rare]  # all kept fragments plus one rare extra
        for f, piece in enumerate(_cut_fragments(mask, fr, rng, coords), start=1):
            label.flat[piece] = base + f
    bone = label > 0
    interior = bone.copy()
    for axis in range(3):
        for shift in (-1, 1):
            interior &= np.roll(label, shift, axis) == label
    image[bone] = 350.0
    image[bone & ~interior] = 1100.0  # cortex and fracture surfaces
    fracture = np.zeros(shape, dtype=bool)
    for axis in range(3):
        nb = np.roll(label, 1, axis)
        fracture |= bone & (nb > 0) & (nb != label)
    image[fracture] = 150.0  # fracture gap
    image += rng.normal(0.0, 15.0, shape)
    geometry = (tuple(float(s) for s in spacing), tuple(float(o) for o in -extent / 2))
    return np.clip(np.round(image), -1024, 3071).astype(np.int16), label, geometry


def _write_pengwin(output_dir: str, num_cases: int, seed: int, shape: Sequence[int] | None) -> None:
    half = (num_cases + 1) // 2
    label_dir = os.path.join(output_dir, "PENGWIN_CT_train_labels")
    os.makedirs(label_dir, exist_ok=True)
    for i in range(num_cases):
        image, label, (spacing, origin) = synthetic_pengwin_case(seed, i, shape)
        image_dir = os.path.join(output_dir, f"PENGWIN_CT_train_images_part{1 if i < half else 2}")
        os.makedirs(image_dir, exist_ok=True)
        name = f"{i + 1:03d}.mha"
        write_mha(image, os.path.join(image_dir, name), spacing=spacing, origin=origin)
        write_mha(label, os.path.join(label_dir, name), spacing=spacing, origin=origin)


_WRITERS = {"amos": _write_amos, "brats": _write_brats, "pengwin": _write_pengwin}


def _check_dataset(dataset: str) -> str:
    name = str(dataset).lower()
    if name not in _WRITERS:
        raise ValueError(f"dataset must be one of {tuple(_WRITERS)}, got {dataset!r}.")
    return name


def write_synthetic_dataset(
    dataset: str, output_dir: str | os.PathLike, num_cases: int, seed: int = 0, shape: Sequence[int] | None = None
) -> str:
    """Write a synthetic dataset in the real layout of ``dataset`` into ``output_dir``.

    Example:
        >>> d = write_synthetic_dataset("brats", "/tmp/brats_demo", num_cases=3, shape=(24, 24, 16))  # doctest: +SKIP
        >>> len(brats_datalist(d, "train"))  # doctest: +SKIP
        1

    Args:
        dataset: ``"amos"``, ``"brats"`` or ``"pengwin"``.
        output_dir: destination folder (created if needed).
        num_cases: number of cases (at least 3 for the loaders' train/val/test split).
        seed: generator seed; the same seed writes identical files. Defaults to 0.
        shape: volume shape in voxels (x, y, z). Defaults to ``SYNTHETIC_SHAPES[dataset]`` (48x48x32).

    Returns:
        ``output_dir`` as a string.

    Raises:
        ValueError: unknown dataset, ``num_cases < 1`` or a shape that is not 3 sides >= 8.
    """
    name = _check_dataset(dataset)
    if int(num_cases) < 1:
        raise ValueError(f"num_cases must be >= 1, got {num_cases}.")
    if shape is not None and (len(shape) != 3 or min(int(s) for s in shape) < 8):
        raise ValueError(f"shape must be 3 sides of at least 8 voxels, got {shape!r}.")
    output_dir = os.fspath(output_dir)
    os.makedirs(output_dir, exist_ok=True)
    _WRITERS[name](output_dir, int(num_cases), int(seed), shape)
    return output_dir


def default_cache_root() -> str:
    """``$MONAI_CWCD_CACHE`` if set, else ``~/.cache/monai_cwcd``."""
    return os.environ.get("MONAI_CWCD_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "monai_cwcd")


def _repo_root() -> Path | None:
    root = Path(__file__).resolve().parents[2]
    return root if (root / ".git").exists() else None


def ensure_demo_dataset(dataset: str, root: str | os.PathLike | None = None, num_cases: int | None = None, seed: int = 0) -> str:
    """The synthetic demo dataset of ``dataset``, written once into the cache and reused afterwards.

    Generation goes to a hidden temporary folder inside the cache root, renamed into place when
    complete, so an interrupted run never leaves a half dataset (and concurrent callers agree).

    Example:
        >>> from monai_cwcd.data import amos_datalist, ensure_demo_dataset  # doctest: +SKIP
        >>> amos_datalist(ensure_demo_dataset("amos"), "train")[0]["case_id"]  # doctest: +SKIP

    Args:
        dataset: ``"amos"``, ``"brats"`` or ``"pengwin"``.
        root: cache root. Defaults to None (``$MONAI_CWCD_CACHE`` or ``~/.cache/monai_cwcd``).
        num_cases: number of cases. Defaults to None (``DEMO_NUM_CASES[dataset]``, 12).
        seed: generator seed. Defaults to 0.

    Returns:
        the dataset folder, ``<root>/<dataset>_demo_v<version>_n<num_cases>_seed<seed>``.

    Raises:
        ValueError: unknown dataset, or a cache root inside this package's git checkout.
    """
    name = _check_dataset(dataset)
    n = int(num_cases) if num_cases is not None else DEMO_NUM_CASES[name]
    root = os.path.abspath(os.fspath(root) if root is not None else default_cache_root())
    repo = _repo_root()
    if repo is not None and os.path.commonpath([str(repo), os.path.realpath(root)]) == str(repo):
        raise ValueError(
            f"the demo data cache {root!r} is inside the git checkout {str(repo)!r}; set MONAI_CWCD_CACHE "
            "or pass root= to a folder outside it."
        )
    target = os.path.join(root, f"{name}_demo_v{GENERATOR_VERSION}_n{n}_seed{int(seed)}")
    if os.path.isdir(target):
        return target
    os.makedirs(root, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=f".{os.path.basename(target)}.tmp-", dir=root)
    try:
        write_synthetic_dataset(name, tmp, n, seed)
        try:
            os.rename(tmp, target)
        except OSError:
            if not os.path.isdir(target):  # not a lost race with another writer
                raise
    finally:
        if os.path.isdir(tmp):
            shutil.rmtree(tmp, ignore_errors=True)
    logger.info("wrote the synthetic %s demo dataset (%d cases, seed %d) to %s", name, n, seed, target)
    return target
