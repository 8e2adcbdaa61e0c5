"""The synthetic generator: real layouts found by the real loaders, determinism, class structure."""

from __future__ import annotations

import hashlib
import json
import os

import numpy as np
import pytest
import torch
from monai.transforms import Compose, ConvertToMultiChannelBasedOnBratsClassesd, EnsureChannelFirstd, LoadImaged

from monai_cwcd.data import (
    AMOS_LABELS,
    DATASETS,
    PengwinLabelRemapd,
    ValidateLabeld,
    DATASET_LABEL_IDS,
    ensure_demo_dataset,
    load_datalist,
    synthetic_amos_case,
    synthetic_brats_case,
    synthetic_pengwin_case,
    write_synthetic_dataset,
)
from monai_cwcd.data.synthetic import _erode

TINY = (24, 24, 16)


def _digest(folder) -> dict[str, str]:
    out = {}
    for dirpath, _, files in os.walk(folder):
        for f in files:
            p = os.path.join(dirpath, f)
            out[os.path.relpath(p, folder)] = hashlib.sha256(open(p, "rb").read()).hexdigest()
    return out


def test_amos_layout(pristine):
    root = pristine["amos"]
    meta = json.load(open(os.path.join(root, "dataset.json")))
    assert {"training", "validation", "labels", "modality", "numTraining", "test"} <= set(meta)
    assert meta["labels"] == {str(k): v for k, v in AMOS_LABELS.items()}
    assert len(meta["training"]) + len(meta["validation"]) == 5
    assert all(e["image"].startswith("./imagesTr/") for e in meta["training"])
    assert all(e["image"].startswith("./imagesVa/") for e in meta["validation"])  # case 6 -> imagesVa
    assert os.path.isfile(os.path.join(root, "labelsTr", "amos_0001.nii.gz"))


def test_amos_unlabelled_test_images(pristine):
    """imagesTs/ + dataset.json "test" as in AMOS22: not labelled, not in any split, what inference predicts."""
    from monai_cwcd.bundle import dataset_test_images

    root = pristine["amos"]
    meta = json.load(open(os.path.join(root, "dataset.json")))
    assert meta["test"] == [{"image": "./imagesTs/amos_0401.nii.gz"}, {"image": "./imagesTs/amos_0402.nii.gz"}]
    assert meta["numTest"] == 2 and not os.path.exists(os.path.join(root, "labelsTs"))
    assert dataset_test_images("amos", root) == [os.path.join(root, "imagesTs", f"amos_040{i}.nii.gz") for i in (1, 2)]
    split_images = {c["image"] for split in ("train", "val", "test") for c in load_datalist("amos", root, split)}
    assert not split_images & set(dataset_test_images("amos", root))


def test_brats_and_pengwin_layout(pristine):
    case = os.path.join(pristine["brats"], "BraTS2021_00000")
    assert sorted(os.listdir(case)) == sorted(f"BraTS2021_00000_{m}.nii.gz" for m in ("flair", "t1", "t1ce", "t2", "seg"))
    root = pristine["pengwin"]
    assert sorted(os.listdir(root)) == ["PENGWIN_CT_train_images_part1", "PENGWIN_CT_train_images_part2", "PENGWIN_CT_train_labels"]
    assert sorted(os.listdir(os.path.join(root, "PENGWIN_CT_train_labels"))) == [f"{i:03d}.mha" for i in range(1, 6)]


@pytest.mark.parametrize("dataset", DATASETS)
def test_loader_finds_synthetic_split(pristine, dataset):
    lists = {s: load_datalist(dataset, pristine[dataset], s) for s in ("train", "val", "test")}
    assert [len(lists[s]) for s in ("train", "val", "test")] == [3, 1, 1]  # paper ratios scaled to 5 cases
    ids = [d["case_id"] for s in lists.values() for d in s]
    assert len(set(ids)) == 5
    for entry in lists["train"]:
        assert set(entry) == {"image", "label", "case_id"}
        images = entry["image"] if dataset == "brats" else [entry["image"]]
        assert all(os.path.isabs(p) and os.path.isfile(p) for p in images + [entry["label"]])
    if dataset == "brats":
        assert [p.rsplit("_", 1)[1] for p in lists["train"][0]["image"]] == ["flair.nii.gz", "t1.nii.gz", "t1ce.nii.gz", "t2.nii.gz"]


@pytest.mark.parametrize("dataset", DATASETS)
def test_same_seed_same_bytes_other_seed_differs(tmp_path, dataset):
    a = _digest(write_synthetic_dataset(dataset, tmp_path / "a", 2, seed=3, shape=TINY))
    b = _digest(write_synthetic_dataset(dataset, tmp_path / "b", 2, seed=3, shape=TINY))
    c = _digest(write_synthetic_dataset(dataset, tmp_path / "c", 2, seed=4, shape=TINY))
    assert a == b
    assert set(a) == set(c)
    changed = [k for k in a if k != "dataset.json" and a[k] != c[k]]
    assert len(changed) == len([k for k in a if k != "dataset.json"])


def test_cases_vary_with_index():
    _, l0, _ = synthetic_amos_case(0, 0)
    _, l1, _ = synthetic_amos_case(0, 1)
    assert not np.array_equal(l0, l1)


def test_amos_volume_imbalance():
    for index in range(3):
        image, label, affine = synthetic_amos_case(seed=0, index=index)
        assert label.shape == (48, 48, 32) and image.dtype == np.int16 and label.dtype == np.uint8
        np.testing.assert_allclose(np.diag(affine)[:3], (0.8, 0.8, 2.0))
        volumes = np.bincount(label.ravel(), minlength=16)[1:]
        assert (volumes > 0).all()  # all 15 organs
        assert volumes.argmax() + 1 == 6  # liver is the largest
        assert volumes.argmin() + 1 in (11, 12)  # an adrenal gland is the smallest
        assert 100 <= volumes.max() / volumes.min() <= 1000
        assert image[label == 0].min() == -1024 and 0 < image[label == 8].mean() < 300  # air, contrast aorta


def test_amos_tiny_shape_keeps_all_organs():
    _, label, _ = synthetic_amos_case(0, 0, TINY)
    assert set(np.unique(label).tolist()) == set(range(16))


@pytest.mark.parametrize("shape", [None, TINY])
def test_brats_nesting_and_contrasts(shape):
    for index in range(3):
        images, label, _ = synthetic_brats_case(seed=1, index=index, shape=shape)
        assert set(np.unique(label).tolist()) == {0, 1, 2, 4}
        ncr, tc, wt = label == 1, np.isin(label, (1, 4)), label > 0
        assert not (ncr & ~_erode(tc)).any()  # NCR is wrapped in ET
        assert not (tc & ~_erode(wt)).any()  # ET/TC is wrapped in ED
        assert wt.sum() > 2 * (label == 4).sum()
        means = {m: {v: images[m][label == v].mean() for v in (1, 2, 4)} for m in images}
        assert means["t1ce"][4] > 1.5 * means["t1"][4]  # enhancing tumour lights up on T1ce only
        assert means["flair"][2] > means["t1"][2]  # edema bright on FLAIR


def test_pengwin_fragments():
    seen = set()
    for index in range(8):
        image, label, (spacing, _) = synthetic_pengwin_case(seed=0, index=index, shape=(32, 32, 24))
        values = set(np.unique(label).tolist()) - {0}
        seen |= values
        assert {1, 11, 21} <= values and max(values) <= 30
        assert image[label > 0].mean() > 200  # bone
        if index % 4 == 3:  # a rare fragment beyond the kept count of one bone
            assert values & ({5, 6, 7, 8, 9, 10} | {17, 18, 19, 20} | {25, 26, 27, 28, 29, 30})
        else:
            assert not values & ({5, 6, 7, 8, 9, 10} | {17, 18, 19, 20} | {25, 26, 27, 28, 29, 30})
    assert {1, 2, 3, 4, 11, 12, 13, 14, 15, 16, 21, 22, 23, 24} <= seen  # every kept class appears
    _, label, _ = synthetic_pengwin_case(seed=0, index=3)
    counts = np.bincount(label.ravel(), minlength=31)
    left = counts[11:17]
    assert left.max() / left.min() > 50  # very different fragment sizes


@pytest.mark.parametrize("dataset", DATASETS)
def test_load_through_monai(pristine, dataset):
    entry = load_datalist(dataset, pristine[dataset], "val")[0]
    reader = "ITKReader" if dataset == "pengwin" else "NibabelReader"
    xforms = [
        LoadImaged(["image", "label"], reader=reader),
        EnsureChannelFirstd(["image", "label"]),
        ValidateLabeld("label", labels=DATASET_LABEL_IDS[dataset]),
    ]
    if dataset == "pengwin":
        xforms.append(PengwinLabelRemapd("label"))
    if dataset == "brats":
        xforms.append(ConvertToMultiChannelBasedOnBratsClassesd("label"))
    d = Compose(xforms)(entry)
    channels = 4 if dataset == "brats" else 1
    assert d["image"].shape == (channels, *TINY)
    assert d["label"].shape == ((3, *TINY) if dataset == "brats" else (1, *TINY))
    assert torch.allclose(d["image"].affine, d["label"].affine)
    if dataset == "pengwin":
        assert int(d["label"].max()) <= 14
        np.testing.assert_allclose(d["image"].pixdim[:3], (0.8, 0.8, 1.5), atol=1e-5)


def test_ensure_demo_dataset(tmp_path):
    root = tmp_path / "cache"
    path = ensure_demo_dataset("brats", root=root, num_cases=3, seed=0)
    assert os.path.dirname(path) == str(root) and os.path.isdir(path)
    assert [len(load_datalist("brats", path, s)) for s in ("train", "val", "test")] == [1, 1, 1]
    assert os.listdir(root) == [os.path.basename(path)]  # no temp folder left behind
    stamp = os.stat(os.path.join(path, "BraTS2021_00000", "BraTS2021_00000_seg.nii.gz")).st_mtime_ns
    assert ensure_demo_dataset("brats", root=root, num_cases=3, seed=0) == path
    assert os.stat(os.path.join(path, "BraTS2021_00000", "BraTS2021_00000_seg.nii.gz")).st_mtime_ns == stamp
    assert ensure_demo_dataset("brats", root=root, num_cases=3, seed=1) != path


def test_ensure_demo_dataset_env_and_interrupted_run(tmp_path, monkeypatch):
    monkeypatch.setenv("MONAI_CWCD_CACHE", str(tmp_path))
    os.makedirs(tmp_path / ".amos_demo_v1_n3_seed0.tmp-stale")  # an interrupted earlier generation
    path = ensure_demo_dataset("amos", num_cases=3)
    assert path.startswith(str(tmp_path)) and os.path.isfile(os.path.join(path, "dataset.json"))
    assert len(load_datalist("amos", path, "train")) == 1


def test_ensure_demo_dataset_refuses_git_checkout():
    repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    if not os.path.isdir(os.path.join(repo, ".git")):
        pytest.skip("not running from a git checkout")
    with pytest.raises(ValueError, match="inside the git checkout"):
        ensure_demo_dataset("amos", root=os.path.join(repo, "demo_cache"))
    assert not os.path.exists(os.path.join(repo, "demo_cache"))


def test_bad_generator_arguments(tmp_path):
    with pytest.raises(ValueError, match="dataset must be one of"):
        write_synthetic_dataset("lits", tmp_path, 3)
    with pytest.raises(ValueError, match="num_cases"):
        write_synthetic_dataset("amos", tmp_path, 0)
    with pytest.raises(ValueError, match="shape"):
        write_synthetic_dataset("amos", tmp_path, 3, shape=(4, 24, 16))


def _ensure(args):
    root, seed = args
    return ensure_demo_dataset("amos", root=root, num_cases=3, seed=seed)


def test_ensure_demo_dataset_concurrent_processes(tmp_path):
    import multiprocessing as mp

    with mp.get_context("fork").Pool(2) as pool:
        paths = pool.map(_ensure, [(str(tmp_path), 5), (str(tmp_path), 5)])
    assert paths[0] == paths[1]
    assert os.listdir(tmp_path) == [os.path.basename(paths[0])]  # the loser's temp folder is gone
    assert [len(load_datalist("amos", paths[0], s)) for s in ("train", "val", "test")] == [1, 1, 1]
