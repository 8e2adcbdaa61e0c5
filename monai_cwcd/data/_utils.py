"""Helpers shared by the dataset loaders: the split rule, cheap header validation and atomic writes.

Validation reads headers only (nibabel header, ITK image information) plus, for compressed NIfTI,
the 4-byte gzip trailer that stores the uncompressed size, so a truncated ``.nii.gz`` is caught
without decompressing it. A full decompression is done only when that trailer disagrees (a
multi-member gzip file), to tell a truncated file from an unusual but valid one.
"""

from __future__ import annotations

import gzip
import logging
import os
import struct
import zlib
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from monai_cwcd.utils import atomic_output

__all__ = [
    "DatasetError",
    "SPLIT_NAMES",
    "SPLIT_SEED",
    "logger",
    "scaled_split_counts",
    "split_cases",
    "resolve_inside",
    "check_unique_ids",
    "image_info",
    "check_volume",
    "check_case",
    "check_pair",
    "atomic_output",
    "read_label",
    "write_nifti",
    "write_mha",
]

logger = logging.getLogger("monai_cwcd.data")

SPLIT_NAMES = ("train", "val", "test")
SPLIT_SEED = 2024

_NIFTI_SUFFIXES = (".nii.gz", ".nii")
_ITK_SUFFIXES = (".mha", ".mhd", ".nrrd")


class DatasetError(ValueError):
    """A dataset on disk does not match the expected layout or content; the message names the case
    and the file."""


def _suffix(path: str | os.PathLike) -> str:
    name = os.fspath(path).lower()
    for s in _NIFTI_SUFFIXES + _ITK_SUFFIXES:
        if name.endswith(s):
            return s
    return Path(name).suffix


def scaled_split_counts(num_cases: int, paper_counts: Sequence[int], dataset: str = "dataset") -> tuple[int, ...]:
    """Split sizes for ``num_cases`` cases: the paper's counts when the sizes agree, otherwise the
    counts scaled proportionally (largest remainder), with at least one case in every split.

    Example:
        >>> scaled_split_counts(221, (180, 20, 21)), scaled_split_counts(12, (180, 20, 21))
        ((180, 20, 21), (10, 1, 1))

    Args:
        num_cases: number of usable cases found.
        paper_counts: the paper's (train, val, test) counts.
        dataset: name used in messages. Defaults to ``"dataset"``.

    Raises:
        DatasetError: fewer cases than splits.
    """
    total = int(sum(paper_counts))
    if num_cases < len(paper_counts):
        raise DatasetError(
            f"{dataset}: found {num_cases} usable case(s), but the train/val/test split needs at least "
            f"{len(paper_counts)} (one per split; the paper's split uses {total})."
        )
    if num_cases == total:
        return tuple(int(c) for c in paper_counts)
    raw = [num_cases * c / total for c in paper_counts]
    counts = [int(np.floor(r)) for r in raw]
    order = sorted(range(len(raw)), key=lambda i: (raw[i] - counts[i], -i), reverse=True)
    for i in order[: num_cases - sum(counts)]:
        counts[i] += 1
    for i in range(len(counts)):  # every split gets at least one case, taken from the largest
        if counts[i] == 0:
            counts[int(np.argmax(counts))] -= 1
            counts[i] = 1
    logger.info(
        "%s: found %d cases instead of the paper's %d; split %s scaled to %s.",
        dataset, num_cases, total, "/".join(map(str, paper_counts)), "/".join(map(str, counts)),
    )
    return tuple(counts)


def split_cases(
    case_ids: Sequence[str],
    split: str,
    paper_counts: Sequence[int],
    split_counts: Sequence[int] | None = None,
    seed: int = SPLIT_SEED,
    dataset: str = "dataset",
) -> list[str]:
    """The case ids of one split: sort the ids, shuffle them with a fixed seed
    (``numpy.random.RandomState``, whose stream is frozen across numpy versions), then take the
    train, val and test counts in that order. The ids of the split are returned sorted.

    Args:
        case_ids: all usable case ids (any order, unique).
        split: ``"train"``, ``"val"`` or ``"test"``.
        paper_counts: the paper's (train, val, test) counts, scaled when the dataset size differs
            (see :func:`scaled_split_counts`).
        split_counts: explicit (train, val, test) counts overriding the paper's. Defaults to None.
        seed: shuffle seed. Defaults to ``SPLIT_SEED``.
        dataset: name used in messages. Defaults to ``"dataset"``.

    Raises:
        ValueError: unknown split name.
        DatasetError: too few cases for the split.
    """
    if split not in SPLIT_NAMES:
        raise ValueError(f"split must be one of {SPLIT_NAMES}, got {split!r}.")
    ids = sorted(case_ids)
    if split_counts is not None:
        counts = tuple(int(c) for c in split_counts)
        if len(counts) != len(SPLIT_NAMES) or min(counts) < 0:
            raise ValueError(f"split_counts must be 3 non-negative (train, val, test) counts, got {split_counts!r}.")
        if sum(counts) > len(ids):
            raise DatasetError(
                f"{dataset}: found {len(ids)} usable case(s), but split_counts {counts} need {sum(counts)}."
            )
        if sum(counts) < len(ids):
            logger.info("%s: split_counts %s use %d of the %d cases found.", dataset, counts, sum(counts), len(ids))
    else:
        counts = scaled_split_counts(len(ids), paper_counts, dataset)
    order = np.random.RandomState(seed).permutation(len(ids))
    start = sum(counts[: SPLIT_NAMES.index(split)])
    return sorted(ids[i] for i in order[start : start + counts[SPLIT_NAMES.index(split)]])


def resolve_inside(root: str | os.PathLike, path: str | os.PathLike, case_id: str, source: str) -> str:
    """Absolute path of ``path`` (relative to ``root`` unless absolute), which must stay inside ``root``.

    The entry is judged by its path, not by where a symbolic link in it leads: a dataset folder whose
    files are links to storage elsewhere (common on clusters) is accepted, an entry such as
    ``../other/x.nii.gz`` or an absolute path outside ``root`` is not. An absolute entry that names a
    file inside ``root`` through another route (``root`` itself reached through a link) is accepted
    too. The returned path keeps the entry's own names (links are not resolved).

    Raises:
        DatasetError: the path points outside ``root`` (naming the case and the entry's source).
    """
    root_abs = os.path.abspath(root)
    full = os.path.normpath(os.path.join(root_abs, os.fspath(path)))
    if os.path.commonpath([root_abs, full]) == root_abs:
        return full
    root_real = os.path.realpath(root)
    if os.path.commonpath([root_real, os.path.realpath(full)]) == root_real and os.path.isabs(os.fspath(path)):
        return full
    raise DatasetError(
        f"case {case_id}: {source} entry {os.fspath(path)!r} points outside the dataset directory {root_abs}."
    )


def check_unique_ids(pairs: Sequence[tuple[str, str]], dataset: str) -> None:
    """Raise when two files map to the same case id; ``pairs`` holds ``(case_id, file)``."""
    seen: dict[str, str] = {}
    for case_id, file in pairs:
        if case_id in seen:
            raise DatasetError(f"{dataset}: duplicate case id {case_id!r}: {seen[case_id]} and {file}.")
        seen[case_id] = file


def _check_gzip_complete(path: str, expected: int, case_id: str) -> None:
    """Compare the gzip trailer (uncompressed size mod 2**32) with the size the header implies; on a
    disagreement decompress fully, which tells a truncated file from a multi-member one."""
    size = os.path.getsize(path)
    with open(path, "rb") as f:
        if size < 18:
            raise DatasetError(f"case {case_id}: file {path} is truncated ({size} bytes).")
        f.seek(-4, os.SEEK_END)
        isize = struct.unpack("<I", f.read(4))[0]
    if isize == expected % 2**32:
        return
    try:
        total = 0
        with gzip.open(path, "rb") as g:
            while chunk := g.read(1 << 22):
                total += len(chunk)
    except (EOFError, OSError, zlib.error) as e:
        raise DatasetError(f"case {case_id}: file {path} is truncated or corrupt ({e}).") from e
    if total < expected:
        raise DatasetError(
            f"case {case_id}: file {path} is truncated: {total} bytes of image data, the header needs {expected}."
        )


def _nifti_info(path: str, case_id: str) -> tuple[tuple[int, ...], np.ndarray]:
    import nibabel as nib

    try:
        img = nib.load(path)
        shape = tuple(int(s) for s in img.shape)
        affine = np.asarray(img.affine, dtype=np.float64)
        expected = int(img.dataobj.offset) + int(np.prod(shape)) * img.get_data_dtype().itemsize
    except Exception as e:  # nibabel raises several types for a bad header
        raise DatasetError(f"case {case_id}: cannot read the NIfTI header of {path}: {e}") from e
    if path.lower().endswith(".gz"):
        _check_gzip_complete(path, expected, case_id)
    elif os.path.getsize(path) < expected:
        raise DatasetError(
            f"case {case_id}: file {path} is truncated: {os.path.getsize(path)} bytes, the header needs {expected}."
        )
    return shape, affine


def _metaimage_data_size(path: str) -> tuple[int, bool, int] | None:
    """(data offset, compressed, stored data size) of a MetaImage file with local data, else None."""
    with open(path, "rb") as f:
        head = f.read(1 << 16)
    fields: dict[str, str] = {}
    offset = 0
    for line in head.split(b"\n"):
        offset += len(line) + 1
        key, _, value = line.decode("latin-1").partition("=")
        fields[key.strip()] = value.strip()
        if key.strip() == "ElementDataFile":
            if value.strip() != "LOCAL":
                return None
            compressed = fields.get("CompressedData", "False").lower() == "true"
            return offset, compressed, int(fields.get("CompressedDataSize", "-1"))
    return None


_MET_SIZES = {"MET_UCHAR": 1, "MET_CHAR": 1, "MET_USHORT": 2, "MET_SHORT": 2, "MET_UINT": 4, "MET_INT": 4,
              "MET_FLOAT": 4, "MET_ULONG": 8, "MET_LONG": 8, "MET_DOUBLE": 8, "MET_ULONG_LONG": 8, "MET_LONG_LONG": 8}


def _itk_info(path: str, case_id: str) -> tuple[tuple[int, ...], np.ndarray]:
    import itk

    try:
        io = itk.ImageIOFactory.CreateImageIO(path, itk.CommonEnums.IOFileMode_ReadMode)
        if io is None:
            raise RuntimeError("no ITK reader recognises the file")
        io.SetFileName(path)
        io.ReadImageInformation()
        ndim = io.GetNumberOfDimensions()
        shape = tuple(int(io.GetDimensions(i)) for i in range(ndim))
        spacing = np.array([io.GetSpacing(i) for i in range(ndim)])
        origin = np.array([io.GetOrigin(i) for i in range(ndim)])
        direction = np.array([io.GetDirection(i) for i in range(ndim)]).T  # columns are the axis directions
        ncomp = int(io.GetNumberOfComponents())
        itemsize = int(io.GetComponentSize())
    except Exception as e:
        raise DatasetError(f"case {case_id}: cannot read the image header of {path}: {e}") from e
    affine = np.eye(ndim + 1)
    affine[:ndim, :ndim] = direction * spacing[None]
    affine[:ndim, ndim] = origin
    if path.lower().endswith(".mha"):
        layout = _metaimage_data_size(path)
        if layout is not None:
            offset, compressed, stored = layout
            needed = stored if compressed and stored >= 0 else int(np.prod(shape)) * ncomp * itemsize
            available = os.path.getsize(path) - offset
            if not compressed or stored >= 0:
                if available < needed:
                    raise DatasetError(
                        f"case {case_id}: file {path} is truncated: {available} bytes of image data, the header needs {needed}."
                    )
    return (shape if ncomp == 1 else shape + (ncomp,)), affine


def image_info(path: str | os.PathLike, case_id: str) -> tuple[tuple[int, ...], np.ndarray]:
    """Shape and voxel-to-world matrix from the header of a NIfTI (nibabel) or MHA/MHD/NRRD (ITK) file,
    plus a cheap truncation check. NIfTI affines are RAS (nibabel), ITK ones are in ITK's LPS frame;
    compare only files of the same format.

    Raises:
        DatasetError: missing, unreadable or truncated file (the message names case and file).
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise DatasetError(f"case {case_id}: file {path} does not exist.")
    if _suffix(path) in _NIFTI_SUFFIXES:
        return _nifti_info(path, case_id)
    return _itk_info(path, case_id)


def check_volume(
    path: str | os.PathLike, case_id: str, expected: str = "a single-channel 3D volume", what: str = "image"
) -> tuple[tuple[int, ...], np.ndarray]:
    """Check the header of one volume that must be 3D with one channel: readable, complete
    (:func:`image_info`) and of shape ``(x, y, z)`` (a NIfTI ``(x, y, z, 1)`` is one channel too).

    Example:
        >>> check_volume("imagesTr/amos_0001.nii.gz", "amos_0001", "a single-channel 3D CT volume")  # doctest: +SKIP
        ((24, 24, 16), array(...))

    Args:
        path: the file.
        case_id: the case named in the error.
        expected: what the file should hold, named in the error. Defaults to ``"a single-channel 3D volume"``.
        what: the file's role named in the error (``"image"``, ``"label"``). Defaults to ``"image"``.

    Returns:
        the spatial shape and the voxel-to-world matrix.

    Raises:
        DatasetError: missing, unreadable or truncated file, or another shape (a 4D or multi-channel
            file, a 2D image); the message names the case, the file, its shape and ``expected``.
    """
    shape, affine = image_info(path, case_id)
    path = os.fspath(path)
    if not (len(shape) == 3 or (len(shape) == 4 and shape[3] == 1 and _suffix(path) in _NIFTI_SUFFIXES)):
        raise DatasetError(
            f"case {case_id}: {what} {path} has shape {shape}; expected {expected} (3 spatial axes, 1 channel)."
        )
    return shape[:3], affine


def check_case(
    images: Sequence[str | os.PathLike],
    case_id: str,
    expected: str = "a single-channel 3D volume",
    label: str | os.PathLike | None = None,
    atol: float = 1e-3,
) -> None:
    """Check the headers of one case's files: every image (and the label) a readable, complete,
    single-channel 3D volume (:func:`check_volume`), all on one grid: same spatial shape and affine
    as the label, or, without a label (inference), as the first image.

    Example:
        >>> check_case([f"{c}_{m}.nii.gz" for m in ("flair", "t1", "t1ce", "t2")], c)  # doctest: +SKIP

    Args:
        images: the image files of the case (BraTS: its 4 modalities).
        case_id: the case named in the error.
        expected: what an image file should hold, named in the error. Defaults to ``"a single-channel 3D volume"``.
        label: the label file. Defaults to None (no label).
        atol: tolerance of the affine comparison. Defaults to 1e-3.

    Raises:
        DatasetError: see :func:`check_volume`; two files with different spatial shapes or affines
            (naming the case, both files and their shapes or affines).
    """
    files = [("image", os.fspath(p), *check_volume(p, case_id, expected)) for p in images]
    if label is not None:
        reference = ("label", os.fspath(label), *check_volume(label, case_id, "a single-channel 3D label map", "label"))
    elif files:
        reference, files = files[0], files[1:]
    else:
        return
    what_r, path_r, shape_r, aff_r = reference
    for what, path, shape, aff in files:
        if shape != shape_r:
            raise DatasetError(
                f"case {case_id}: {what} {path} has shape {shape}, {what_r} {path_r} has shape {shape_r}; "
                "their spatial shapes must match."
            )
        if aff.shape != aff_r.shape or not np.allclose(aff, aff_r, atol=atol):
            raise DatasetError(
                f"case {case_id}: {what} {path} and {what_r} {path_r} have different affines "
                f"({os.path.basename(path)}:\n{np.round(aff, 4)}\n{os.path.basename(path_r)}:\n{np.round(aff_r, 4)})."
            )


def check_pair(
    image: str, label: str, case_id: str, atol: float = 1e-3, expected: str = "a single-channel 3D volume"
) -> None:
    """Check that ``image`` and ``label`` are readable, complete, single-channel 3D volumes that share
    spatial shape and affine (:func:`check_case` of one image).

    Raises:
        DatasetError: naming the case, the file(s) and the bad shape or the mismatching shapes or affines.
    """
    check_case([image], case_id, expected, label=label, atol=atol)


def read_label(path: str | os.PathLike) -> tuple[np.ndarray, object]:
    """Read a label volume as a numpy array in (x, y, z) order and a reference to its header/image
    (nibabel image for NIfTI, ITK image for the others) for writing a map on the same grid."""
    path = os.fspath(path)
    if _suffix(path) in _NIFTI_SUFFIXES:
        import nibabel as nib

        img = nib.load(path)
        return np.asarray(img.dataobj), img
    import itk

    img = itk.imread(path)
    arr = itk.array_view_from_image(img)
    return np.ascontiguousarray(np.asarray(arr).transpose(tuple(range(arr.ndim))[::-1])), img


def write_nifti(array: np.ndarray, affine: np.ndarray, path: str | os.PathLike, header=None) -> None:
    """Write ``array`` (x, y, z[, c]) as NIfTI atomically, with ``affine`` and an optional reference header."""
    import nibabel as nib

    img = nib.Nifti1Image(array, affine, header=header)
    img.set_data_dtype(array.dtype)
    if header is not None:
        img.header.set_slope_inter(1.0, 0.0)
    with atomic_output(path) as tmp:
        nib.save(img, tmp)


def write_mha(array: np.ndarray, path: str | os.PathLike, spacing=None, origin=None, direction=None, reference=None) -> None:
    """Write a 3D ``array`` in (x, y, z) order as a compressed MetaImage atomically, with the geometry
    given explicitly or copied from the ITK image ``reference``."""
    import itk

    img = itk.image_from_array(np.ascontiguousarray(array.transpose(tuple(range(array.ndim))[::-1])))
    if reference is not None:
        img.SetSpacing(reference.GetSpacing())
        img.SetOrigin(reference.GetOrigin())
        img.SetDirection(reference.GetDirection())
    else:
        if spacing is not None:
            img.SetSpacing([float(s) for s in spacing])
        if origin is not None:
            img.SetOrigin([float(o) for o in origin])
        if direction is not None:
            img.SetDirection(itk.matrix_from_array(np.asarray(direction, dtype=np.float64)))
    with atomic_output(path) as tmp:
        itk.imwrite(img, tmp, compression=True)
