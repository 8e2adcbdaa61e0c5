"""Contour thickness in millimetres and per class (issue 12 items 1 and 2)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from monai.data import MetaTensor, list_data_collate
from scipy import ndimage
from hypothesis import given, settings
from hypothesis import strategies as st

from monai_cwcd.losses import ContourWeightedCELoss, CWCDLoss, SeparableDiceLoss
from monai_cwcd.transforms import ContourWeightMap, ContourWeightMapd
from monai_cwcd.transforms.functional import (
    binary_contour,
    check_contour_width,
    contour_radius,
    image_spacing,
    label_contour,
)

from contour_reference import blob_labels, scipy_per_class

SHAPES = {2: (17, 19), 3: (11, 12, 13)}


def scipy_box_contour(mask, radii, edge):
    """G - binary_erosion(G, ones(2r+1 per axis), border_value=0 if edge else 1)."""
    if not any(radii):
        return np.zeros_like(mask, dtype=bool)
    structure = np.ones([2 * r + 1 for r in radii], dtype=bool)
    return mask & ~ndimage.binary_erosion(mask, structure=structure, border_value=0 if edge else 1)


def scipy_per_class_widths(label, widths, spacing, edge):
    """Union over classes of the scipy box contour of each class with its own mm width."""
    out = np.zeros(label.shape, dtype=bool)
    for c, w in widths.items():
        out |= scipy_box_contour(label == c, contour_radius(w, spacing), edge)
    return out


def test_contour_radius_formula():
    # r = floor(w / s + 1/2): the voxel layers whose centre lies within w mm of the boundary
    assert contour_radius(1.0, 1.0) == (1,)
    assert contour_radius(2.0, (1.0, 1.0, 5.0)) == (2, 2, 0)
    assert contour_radius(2.0, 0.8) == (3,)
    assert contour_radius(0.4, 1.0) == (0,) and contour_radius(0.5, 1.0) == (1,) and contour_radius(1.49, 1.0) == (1,)
    assert contour_radius((1.5, 1.5, 5.0), (0.7, 0.7, 5.0)) == (2, 2, 1)
    # w = r * s is exactly r despite binary rounding (3 * 0.7 = 2.0999999999999996)
    assert contour_radius(3 * 0.7, 0.7) == (3,) and contour_radius(6 * 0.1, 0.1) == (6,)
    with pytest.raises(ValueError, match="spacing"):
        contour_radius(1.0, (1.0, 0.0))
    with pytest.raises(ValueError, match="contour_width_mm"):
        contour_radius(-1.0, 1.0)
    with pytest.raises(ValueError, match="same number of axes"):
        contour_radius((1.0, 2.0), (1.0, 1.0, 1.0))


@pytest.mark.parametrize("ndim", [2, 3])
@pytest.mark.parametrize("k,it", [(3, 1), (3, 2), (5, 1), (3, 6)])
@pytest.mark.parametrize("s", [0.7, 1.0, 2.5])
@pytest.mark.parametrize("edge", [False, True])
def test_mm_on_isotropic_grid_equals_voxel_setting(ndim, k, it, s, edge):
    label = blob_labels(SHAPES[ndim], 4, seed=k + it)
    width = it * (k - 1) / 2 * s
    voxel = ContourWeightMap(k, it, per_class=True, num_classes=4, edge_is_contour=edge)(label[None])
    mm = ContourWeightMap(per_class=True, num_classes=4, edge_is_contour=edge, contour_width_mm=width, spacing=s)(
        label[None]
    )
    np.testing.assert_array_equal(mm, voxel)
    # and the voxel setting is still scipy's erosion (the existing equivalence)
    np.testing.assert_array_equal(voxel, scipy_per_class(label, 4, k, it, edge).astype(np.uint8))
    own = ContourWeightMap(edge_is_contour=edge, contour_width_mm=width, spacing=(s,) * ndim)(label[None])
    np.testing.assert_array_equal(own, ContourWeightMap(k, it, edge_is_contour=edge)(label[None]))


@pytest.mark.parametrize("edge", [False, True])
def test_mm_on_anisotropic_grid_is_box_erosion(edge):
    label = blob_labels((15, 16, 9), 3, seed=4)
    spacing = (0.8, 0.8, 4.0)
    out = ContourWeightMap(per_class=True, num_classes=3, edge_is_contour=edge, contour_width_mm=1.8, spacing=spacing)(
        label[None]
    )
    radii = contour_radius(1.8, spacing)
    assert radii == (2, 2, 0)  # 2.25 and 0.45 voxels: a 1.8 mm contour marks no 4 mm slice
    ref = np.stack([scipy_box_contour(label == c, radii, edge) for c in range(3)])
    np.testing.assert_array_equal(out, ref.astype(np.uint8))
    # per-axis widths: 1.6 mm in plane, 4 mm across slices = windows (2, 2, 1)
    out = ContourWeightMap(edge_is_contour=edge, contour_width_mm=(1.6, 1.6, 4.0), spacing=spacing)(label[None])
    ref = np.stack([scipy_box_contour(label == c, (2, 2, 1), edge) for c in range(3)]).any(0)
    np.testing.assert_array_equal(out[0], ref.astype(np.uint8))


def test_spacing_from_metatensor_affine_and_errors():
    label = blob_labels((12, 12, 8), 3, seed=1)
    affine = torch.diag(torch.tensor([0.5, 0.5, 2.0, 1.0], dtype=torch.float64))
    meta = MetaTensor(torch.as_tensor(label[None]), affine=affine)
    assert image_spacing(meta, 3) == (0.5, 0.5, 2.0) and image_spacing(label, 3) is None
    from_affine = ContourWeightMap(contour_width_mm=1.0)(meta)
    explicit = ContourWeightMap(contour_width_mm=1.0, spacing=(0.5, 0.5, 2.0))(label[None])
    assert isinstance(from_affine, MetaTensor) and torch.equal(from_affine.affine, meta.affine)
    np.testing.assert_array_equal(from_affine.numpy(), explicit)
    # the affine wins over a stale spacing argument, with a warning
    with pytest.warns(UserWarning, match="spacing=.*ignored"):
        stale = ContourWeightMap(contour_width_mm=1.0, spacing=1.0)(meta)
    np.testing.assert_array_equal(stale.numpy(), explicit)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ContourWeightMap(contour_width_mm=1.0, spacing=(0.5, 0.5, 2.0))(meta)
    # neither known: one clear message
    for img in (label[None], torch.as_tensor(label[None])):
        with pytest.raises(ValueError, match=r"needs the voxel spacing.*no affine.*spacing="):
            ContourWeightMap(contour_width_mm=1.0)(img)
    with pytest.raises(ValueError, match="spacing"):
        ContourWeightMap(contour_width_mm=1.0, spacing=(1.0, -1.0, 1.0))
    with pytest.raises(ValueError, match="contour_width_mm"):
        ContourWeightMap(contour_width_mm=float("nan"))
    with pytest.raises(ValueError, match="1 or 3 values"):
        ContourWeightMap(contour_width_mm=(1.0, 2.0), spacing=1.0)(label[None])


def test_kernel_size_is_ignored_with_mm_width():
    label = blob_labels((12, 13), 3, seed=2)
    a = ContourWeightMap(kernel_size=2, iterations=4, contour_width_mm=1.0, spacing=1.0)(label[None])
    np.testing.assert_array_equal(a, ContourWeightMap(kernel_size=3, iterations=1)(label[None]))


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("edge", [False, True])
def test_per_class_widths_equal_scipy(seed, edge):
    rng = np.random.default_rng(seed)
    label = blob_labels((13, 14, 15), 5, seed=seed)
    spacing = tuple(float(v) for v in rng.choice([0.5, 1.0, 2.0, 3.0], 3))
    if seed % 2:  # one number per class: nested windows, one sweep
        widths = {c: float(rng.choice([0.0, 0.5, 1.0, 2.0, 3.0])) for c in range(5)}
    else:  # per-axis widths per class: windows that are not nested (several chains)
        widths = {c: tuple(float(v) for v in rng.choice([0.0, 1.0, 2.0], 3)) for c in range(5)}
    out = ContourWeightMap(edge_is_contour=edge, contour_width_mm=widths, spacing=spacing)(label[None])
    np.testing.assert_array_equal(out[0], scipy_per_class_widths(label, widths, spacing, edge).astype(np.uint8))
    per_class = ContourWeightMap(per_class=True, edge_is_contour=edge, contour_width_mm=widths, spacing=spacing)(
        label[None]
    )
    for c, w in widths.items():
        ref = scipy_box_contour(label == c, contour_radius(w, spacing), edge)
        np.testing.assert_array_equal(per_class[c], ref.astype(np.uint8))
    # binary / multi-label masks: the mapping is per channel
    masks = np.stack([label == c for c in range(5)]).astype(np.float32)
    out = ContourWeightMap(edge_is_contour=edge, contour_width_mm=widths, spacing=spacing)(masks)
    ref = np.stack([scipy_box_contour(masks[c] > 0, contour_radius(widths[c], spacing), edge) for c in range(5)])
    np.testing.assert_array_equal(out, ref.astype(np.uint8))


def test_per_class_equal_widths_equal_uniform_and_json_keys():
    label = blob_labels((10, 11, 12), 4, seed=7)
    same = ContourWeightMap(contour_width_mm={str(c): 2.0 for c in range(4)}, spacing=1.0)(label[None])
    np.testing.assert_array_equal(same, ContourWeightMap(kernel_size=5)(label[None]))
    assert check_contour_width({"0": 1, "3": [1, 2, 3]}) == {0: (1.0,), 3: (1.0, 2.0, 3.0)}
    # a class absent from the label needs no width; a present one does
    ContourWeightMap(contour_width_mm={0: 1.0, 1: 1.0, 2: 1.0, 3: 1.0, 9: 2.0}, spacing=1.0)(label[None])
    with pytest.raises(ValueError, match="holds class 3"):
        ContourWeightMap(contour_width_mm={0: 1.0, 1: 1.0, 2: 1.0}, spacing=1.0)(label[None])
    with pytest.raises(ValueError, match="channel 2"):
        binary_contour(torch.ones(3, 5, 5), 2, contour_width_mm={0: 1.0, 1: 1.0}, spacing=1.0)
    for bad in ({"a": 1.0}, {-1: 1.0}, {}, {1: -2.0}, "2mm"):
        with pytest.raises(ValueError, match="contour_width_mm"):
            check_contour_width(bad)


def test_dictionary_twin_and_types():
    label = blob_labels((12, 12, 6), 3, seed=3).astype(np.float32)
    widths = {0: 0.8, 1: 1.6, 2: 3.2}
    expected = ContourWeightMap(contour_width_mm=widths, spacing=(0.8, 0.8, 3.0))(label[None])
    d = ContourWeightMapd(keys="label", contour_width_mm=widths, spacing=(0.8, 0.8, 3.0))({"label": label[None]})
    np.testing.assert_array_equal(d["contour_label"], expected)
    t = ContourWeightMap(contour_width_mm=widths, spacing=(0.8, 0.8, 3.0))(torch.as_tensor(label[None]))
    assert t.dtype == torch.uint8 and np.array_equal(t.numpy(), expected)


def test_batched_spacing_rows_are_per_sample():
    a, b = blob_labels((10, 12), 3, seed=5), blob_labels((10, 12), 3, seed=6)
    batch = torch.as_tensor(np.stack([a, b])[:, None])
    out = label_contour(batch, 2, contour_width_mm=2.0, spacing=[(1.0, 1.0), (2.0, 0.5)])
    assert torch.equal(out[0], label_contour(batch[0], 2, contour_width_mm=2.0, spacing=(1.0, 1.0)))
    assert torch.equal(out[1], label_contour(batch[1], 2, contour_width_mm=2.0, spacing=(2.0, 0.5)))
    assert not torch.equal(out[0], label_contour(batch[0], 2, contour_width_mm=2.0, spacing=(2.0, 0.5)))


@pytest.mark.parametrize("loss_cls", [CWCDLoss, ContourWeightedCELoss, SeparableDiceLoss])
def test_losses_on_the_fly_mm_widths_equal_precomputed_contour(loss_cls):
    torch.manual_seed(0)
    labels = [blob_labels((12, 12, 8), 4, seed=s) for s in (1, 2)]
    affine = torch.diag(torch.tensor([0.8, 0.8, 3.0, 1.0], dtype=torch.float64))
    items = [{"label": MetaTensor(torch.as_tensor(lab[None]).float(), affine=affine)} for lab in labels]
    target = list_data_collate(items)["label"]  # batched MetaTensor, affine (2, 4, 4)
    logits = torch.randn(2, 4, 12, 12, 8)
    widths = {0: 0.8, 1: 1.6, 2: 3.0, 3: 4.0}
    kw = {"softmax": True} if loss_cls is not ContourWeightedCELoss else {}
    kw["to_onehot_y"] = True
    on_the_fly = loss_cls(contour_width_mm=widths, **kw)(logits, target)
    contour = torch.stack([ContourWeightMap(contour_width_mm=widths)(item["label"]) for item in items])
    precomputed = loss_cls(**kw)(logits, target.as_tensor(), contour.as_tensor())
    torch.testing.assert_close(on_the_fly, precomputed)
    # a plain tensor target needs `spacing`; with it the result is the same
    plain = loss_cls(contour_width_mm=widths, spacing=(0.8, 0.8, 3.0), **kw)(logits, target.as_tensor())
    torch.testing.assert_close(plain, on_the_fly)
    with pytest.raises(ValueError, match="needs the voxel spacing"):
        loss_cls(contour_width_mm=widths, **kw)(logits, target.as_tensor())
    # the voxel default differs from these widths (the setting is really used)
    assert not torch.allclose(loss_cls(**kw)(logits, target.as_tensor()), on_the_fly)


@pytest.mark.parametrize("shape", [(6, 7, 8), (5, 7, 9), (3, 4)])
@pytest.mark.parametrize("n_classes", [2, 4, 16, 60])
def test_class_levels_every_path_equals_a_table_lookup(shape, n_classes):
    """The per-class sweep's class -> level map: the uint16 pair lookup (even sizes), the
    compare-and-add loop (odd sizes, few classes) and the int64 lookup (many classes) agree."""
    from monai_cwcd.transforms.functional import _class_levels

    rng = np.random.default_rng(n_classes)
    lab = torch.from_numpy(rng.integers(0, n_classes, size=shape).astype(np.uint8))
    levels = {c: int(rng.integers(0, 7)) for c in range(n_classes)}
    ref = np.vectorize(levels.get)(lab.numpy()).astype(np.uint8)
    for src in (lab, lab.to(torch.int16), lab.t() if lab.ndim == 2 else lab.transpose(0, 2)):
        out = torch.empty(src.shape, dtype=torch.uint8)
        hit = torch.empty(src.shape, dtype=torch.bool)
        got = _class_levels(src, levels, out, hit)
        expect = ref if src.shape == lab.shape else np.vectorize(levels.get)(src.numpy()).astype(np.uint8)
        np.testing.assert_array_equal(got.numpy(), expect)


@settings(max_examples=60, deadline=None, derandomize=True, database=None)
@given(
    shape=st.lists(st.integers(1, 9), min_size=2, max_size=3),
    n_classes=st.integers(2, 6),
    radii=st.lists(st.tuples(st.integers(0, 3), st.integers(0, 3), st.integers(0, 3)), min_size=6, max_size=6),
    edge=st.booleans(),
    seed=st.integers(0, 2**16),
    offset=st.sampled_from([0, 300]),
)
def test_per_class_windows_property_equal_scipy(shape, n_classes, radii, edge, seed, offset):
    """Any per-class, per-axis widths (nested or not, zero on some axes, windows wider than the
    image, class indices beyond uint8): the one-sweep map (label filters, then boolean erosions from a
    base window) equals the union of scipy's per-class box erosions, voxel for voxel."""
    rng = np.random.default_rng(seed)
    label = rng.integers(0, n_classes, size=shape)
    label = np.where(rng.random(shape) < 0.7, np.sort(label, axis=0), label)  # runs as well as noise
    label = label + offset  # 300: class indices beyond uint8, the int16 path of the sweep
    widths = {offset + c: tuple(float(r) for r in radii[c][: len(shape)]) for c in range(n_classes)}
    out = ContourWeightMap(edge_is_contour=edge, contour_width_mm=widths, spacing=1.0)(label[None])
    np.testing.assert_array_equal(out[0], scipy_per_class_widths(label, widths, 1.0, edge).astype(np.uint8))


def _box_extreme(x, windows, fn):
    """Running max/min over ``[i - b, i + a]`` per axis, the edge replicated (outside ignored)."""
    for axis, (b, a) in enumerate(windows):
        n = x.shape[axis]
        idx = np.arange(n)
        x = fn(np.stack([np.take(x, np.clip(idx + o, 0, n - 1), axis=axis) for o in range(-b, a + 1)]), axis=0)
    return x


@settings(max_examples=40, deadline=None, derandomize=True, database=None)
@given(
    shape=st.lists(st.integers(1, 7), min_size=0, max_size=2),
    row=st.integers(1, 40),
    n_classes=st.integers(2, 5),
    extents=st.lists(
        st.tuples(st.integers(0, 3), st.integers(0, 3), st.integers(0, 3), st.integers(0, 3), st.integers(0, 13),
                  st.integers(0, 13)), min_size=5, max_size=5),
    edge=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_per_class_packed_sweep_any_windows_both_packings(shape, row, n_classes, extents, edge, seed):
    """The bit-packed sweep with asymmetric windows (before/after per axis), rows of 1-40 voxels (shifts
    past a whole byte, rows shorter than the window) and a batch axis equals the brute-force definition
    (a voxel of class c is marked when c's window around it is not constant, or leaves the tensor
    under the edge rule), with numpy's packing and with the torch packing used off the CPU."""
    from monai_cwcd.transforms.functional import _per_class_contour

    rng = np.random.default_rng(seed)
    full = tuple(shape) + (row,)
    label = rng.integers(0, n_classes, size=(2,) + full)
    label = np.where(rng.random(label.shape) < 0.7, np.sort(label, axis=-1), label)
    nd = len(full)
    windows = {}
    for c in range(n_classes):
        e = extents[c]
        per_axis = [(e[0], e[1]), (e[2], e[3])][: nd - 1] + [(e[4], e[5])]
        windows[c] = tuple(per_axis)
    expected = np.zeros(label.shape, dtype=bool)
    for s in range(2):
        for c, w in windows.items():
            varies = _box_extreme(label[s], w, np.max) != _box_extreme(label[s], w, np.min)
            if edge:
                for axis, (b, a) in enumerate(w):
                    idx = np.arange(full[axis])
                    out_of = (idx < b) | (idx >= full[axis] - a)
                    varies |= out_of.reshape([-1 if i == axis else 1 for i in range(nd)])
            expected[s] |= (label[s] == c) & varies
    lab = torch.as_tensor(label.astype(np.uint8))
    dims = list(range(1, nd + 1))
    for use_numpy in (True, False):
        got = _per_class_contour(lab, dims, windows, edge, use_numpy=use_numpy)
        np.testing.assert_array_equal(got.numpy(), expected, err_msg=f"use_numpy={use_numpy}")


@pytest.mark.parametrize("use_numpy", [True, False])
def test_per_class_packed_sweep_row_shift_stays_in_its_row(use_numpy):
    """A shift by more than a byte along the packed rows: the next row's first voxels (a boundary)
    must not leak into the end of a constant row through the guard bytes."""
    from monai_cwcd.transforms.functional import _per_class_contour

    label = np.zeros((2, 20), dtype=np.uint8)
    label[1, :2] = 1  # row 1: a boundary between voxels 1 and 2; row 0 constant
    windows = {0: ((0, 0), (0, 15)), 1: ((0, 0), (0, 1))}
    got = _per_class_contour(torch.as_tensor(label), [0, 1], windows, False, use_numpy=use_numpy).numpy()
    expected = np.zeros_like(label, dtype=bool)
    expected[1, 1] = True  # class 1 at voxel 1 sees voxel 2
    assert not got[0].any() and np.array_equal(got, expected)
