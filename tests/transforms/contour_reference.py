"""scipy reference implementations shared by the transform tests (not a test module)."""

from __future__ import annotations

import numpy as np
from scipy import ndimage


def blob_labels(shape, num_classes, seed=0):
    """Structured class-index map: coarse random blocks (so classes have interiors) plus speckle."""
    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, num_classes, size=[s // 3 + 1 for s in shape])
    lab = coarse
    for ax in range(len(shape)):
        lab = np.repeat(lab, 3, axis=ax)
    lab = lab[tuple(slice(0, s) for s in shape)].copy()
    speckle = rng.random(shape) < 0.03
    lab[speckle] = rng.integers(0, num_classes, size=int(speckle.sum()))
    return lab


def scipy_erosion(mask, structure, iterations=1, border_value=0):
    """``scipy.ndimage.binary_erosion(mask, structure, iterations, border_value=...)``, computed as
    ``iterations`` single erosions in a row (the same result, by definition of ``iterations``).

    scipy's own ``iterations > 1`` path (``NI_BinaryErosion2``) reads and writes past the array when
    the structure is wider than the input along an axis (e.g. a (3, 3, 2) mask with a 4x4x4 box), which
    corrupts the heap and aborts the process at random (docs/upstream/scipy_binary_erosion.md); single
    erosions never take that path.
    """
    out = np.asarray(mask, dtype=bool)
    for _ in range(iterations):
        out = ndimage.binary_erosion(out, structure=structure, border_value=border_value)
    return out


def scipy_contour(mask, k, it, edge):
    """The spec's reference: G - binary_erosion(G, ones((k,)*ndim), it, border_value=0 if edge else 1)."""
    if k == 1:
        return np.zeros_like(mask, dtype=bool)
    eroded = scipy_erosion(mask, np.ones((k,) * mask.ndim, bool), it, border_value=0 if edge else 1)
    return mask & ~eroded


def scipy_per_class(label, num_classes, k, it, edge):
    return np.stack([scipy_contour(label == c, k, it, edge) for c in range(num_classes)])
