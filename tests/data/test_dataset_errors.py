"""Bad datasets fail at once with a DatasetError naming the case and the file (real broken files)."""

from __future__ import annotations

import gzip
import json
import os
import re
import shutil

import nibabel as nib
import numpy as np
import pytest

from monai_cwcd.data import DatasetError, amos_datalist, brats_cases, brats_datalist, load_datalist, pengwin_datalist
from monai_cwcd.bundle import image_datalist
from monai_cwcd.data._utils import write_mha


def _all_splits(dataset, root):
    for split in ("train", "val", "test"):
        load_datalist(dataset, root, split)


def _truncate(path, keep=0.5):
    data = open(path, "rb").read()
    with open(path, "wb") as f:
        f.write(data[: int(len(data) * keep)])


@pytest.mark.parametrize("dataset,rel,case", [
    ("amos", "imagesTr/amos_0002.nii.gz", "amos_0002"),
    ("brats", "BraTS2021_00003/BraTS2021_00003_t1ce.nii.gz", "BraTS2021_00003"),
    ("brats", "BraTS2021_00001/BraTS2021_00001_seg.nii.gz", "BraTS2021_00001"),
])
def test_truncated_nifti(dataset_copy, dataset, rel, case):
    root = dataset_copy(dataset)
    _truncate(root / rel)
    with pytest.raises(DatasetError, match=f"case {case}: .*{re.escape(str(root / rel))}.*truncated"):
        _all_splits(dataset, root)


def test_truncated_uncompressed_nifti_and_multimember_gzip(dataset_copy):
    root = dataset_copy("amos")
    img = nib.load(root / "labelsTr/amos_0001.nii.gz")
    meta = json.load(open(root / "dataset.json"))
    # a valid multi-member gzip (trailer holds only the last member's size) is accepted
    raw = gzip.decompress(open(root / "labelsTr/amos_0001.nii.gz", "rb").read())
    with open(root / "labelsTr/amos_0001.nii.gz", "wb") as f:
        f.write(gzip.compress(raw[:1000], mtime=0) + gzip.compress(raw[1000:], mtime=0))
    _all_splits("amos", root)
    # an uncompressed .nii cut short is caught
    nib.save(img, root / "labelsTr/amos_0001.nii")
    _truncate(root / "labelsTr/amos_0001.nii", 0.8)
    meta["training"][0]["label"] = "./labelsTr/amos_0001.nii"
    json.dump(meta, open(root / "dataset.json", "w"))
    with pytest.raises(DatasetError, match=r"case amos_0001: file .*amos_0001\.nii is truncated"):
        _all_splits("amos", root)


def test_unreadable_nifti(dataset_copy):
    root = dataset_copy("amos")
    (root / "labelsTr/amos_0003.nii.gz").write_bytes(b"this is not a nifti file at all" * 20)
    with pytest.raises(DatasetError, match=r"case amos_0003: .*labelsTr/amos_0003\.nii\.gz"):
        _all_splits("amos", root)


def test_missing_file(dataset_copy):
    root = dataset_copy("amos")
    os.remove(root / "imagesTr/amos_0004.nii.gz")
    with pytest.raises(DatasetError, match=r"case amos_0004: file .*imagesTr/amos_0004\.nii\.gz does not exist"):
        _all_splits("amos", root)


@pytest.mark.parametrize("what", ["image", "label"])
def test_garbage_and_truncated_mha(dataset_copy, what):
    root = dataset_copy("pengwin")
    folder = "PENGWIN_CT_train_images_part1" if what == "image" else "PENGWIN_CT_train_labels"
    (root / folder / "002.mha").write_bytes(os.urandom(3000))
    with pytest.raises(DatasetError, match=rf"case 002: .*{folder}/002\.mha"):
        _all_splits("pengwin", root)
    shutil.copy(root / folder / "001.mha", root / folder / "002.mha")
    _all_splits("pengwin", root)
    _truncate(root / folder / "003.mha", 0.7)
    with pytest.raises(DatasetError, match=rf"case 003: file .*{folder}/003\.mha is truncated"):
        _all_splits("pengwin", root)


def test_shape_mismatch(dataset_copy):
    root = dataset_copy("amos")
    img = nib.load(root / "labelsTr/amos_0002.nii.gz")
    nib.save(nib.Nifti1Image(np.asarray(img.dataobj)[:, :, :-2], img.affine), root / "labelsTr/amos_0002.nii.gz")
    with pytest.raises(DatasetError, match=r"case amos_0002: image .*amos_0002\.nii\.gz has shape \(24, 24, 16\), label .* has shape \(24, 24, 14\)"):
        _all_splits("amos", root)


def test_affine_mismatch_nifti(dataset_copy):
    root = dataset_copy("brats")
    path = root / "BraTS2021_00002/BraTS2021_00002_t2.nii.gz"
    img = nib.load(path)
    affine = img.affine.copy()
    affine[0, 3] += 5.0
    nib.save(nib.Nifti1Image(np.asarray(img.dataobj), affine), path)
    with pytest.raises(DatasetError, match=r"case BraTS2021_00002: image .*BraTS2021_00002_t2\.nii\.gz and label .*seg\.nii\.gz have different affines"):
        _all_splits("brats", root)


def test_spacing_mismatch_mha(dataset_copy):
    root = dataset_copy("pengwin")
    label = root / "PENGWIN_CT_train_labels/004.mha"
    write_mha(np.zeros((24, 24, 16), np.uint8), label, spacing=(1.0, 0.8, 1.5))
    with pytest.raises(DatasetError, match=r"case 004: image .*004\.mha and label .*labels/004\.mha have different affines"):
        _all_splits("pengwin", root)


def test_brats_missing_modality(dataset_copy):
    root = dataset_copy("brats")
    os.remove(root / "BraTS2021_00004/BraTS2021_00004_flair.nii.gz")
    with pytest.raises(DatasetError, match=r"case BraTS2021_00004: modality 'flair' file .*BraTS2021_00004_flair\.nii\.gz is missing"):
        brats_datalist(root, "train")
    os.remove(root / "BraTS2021_00000/BraTS2021_00000_seg.nii.gz")
    with pytest.raises(DatasetError, match=r"case BraTS2021_00000: label file .*_seg\.nii\.gz is missing"):
        brats_cases(root)


def test_entry_outside_dataset_dir(dataset_copy, tmp_path):
    root = dataset_copy("amos")
    outside = tmp_path / "elsewhere.nii.gz"
    shutil.copy(root / "imagesTr/amos_0001.nii.gz", outside)
    meta = json.load(open(root / "dataset.json"))
    meta["training"][1]["image"] = "../elsewhere.nii.gz"
    json.dump(meta, open(root / "dataset.json", "w"))
    with pytest.raises(DatasetError, match=r"case elsewhere: dataset.json 'training' entry '\.\./elsewhere\.nii\.gz' points outside"):
        amos_datalist(root, "train")
    meta["training"][1]["image"] = str(outside)  # absolute paths outside too
    json.dump(meta, open(root / "dataset.json", "w"))
    with pytest.raises(DatasetError, match="points outside the dataset directory"):
        amos_datalist(root, "train")


def test_dataset_of_symbolic_links_is_accepted(dataset_copy, tmp_path):
    """A dataset folder whose files are links to storage elsewhere loads like the files themselves;
    an entry that leaves the folder is still refused."""
    storage = dataset_copy("amos")
    linked = tmp_path / "linked"
    for dirpath, _, files in os.walk(storage):
        rel = os.path.relpath(dirpath, storage)
        os.makedirs(linked / rel, exist_ok=True)
        for name in files:
            os.symlink(os.path.join(dirpath, name), linked / rel / name)
    for split in ("train", "val", "test"):
        got, want = amos_datalist(linked, split), amos_datalist(storage, split)
        assert [c["case_id"] for c in got] == [c["case_id"] for c in want]
        for case in got:
            for key in ("image", "label"):
                assert os.path.islink(case[key]) and os.path.dirname(os.path.dirname(case[key])) == str(linked)
                assert open(case[key], "rb").read() == open(want[[c["case_id"] for c in want].index(case["case_id"])][key], "rb").read()
    # the folder itself reached through a link: absolute entries naming the real folder are inside it
    alias = tmp_path / "alias"
    os.symlink(storage, alias)
    meta = json.load(open(storage / "dataset.json"))
    meta["training"][0]["image"] = str(storage / meta["training"][0]["image"])
    json.dump(meta, open(storage / "dataset.json", "w"))
    assert len(amos_datalist(alias, "train")) == len(amos_datalist(storage, "train"))
    meta["training"][0]["image"] = "../elsewhere/amos_0001.nii.gz"
    json.dump(meta, open(storage / "dataset.json", "w"))
    with pytest.raises(DatasetError, match=r"entry '\.\./elsewhere/amos_0001\.nii\.gz' points outside the dataset directory"):
        amos_datalist(linked, "train")


def test_duplicate_ids(dataset_copy):
    root = dataset_copy("amos")
    meta = json.load(open(root / "dataset.json"))
    meta["validation"].append(dict(meta["training"][0]))
    json.dump(meta, open(root / "dataset.json", "w"))
    with pytest.raises(DatasetError, match=r"AMOS: duplicate case id 'amos_0001'"):
        amos_datalist(root, "train")
    root = dataset_copy("pengwin")
    shutil.copy(root / "PENGWIN_CT_train_images_part1/001.mha", root / "PENGWIN_CT_train_images_part2/001.mha")
    with pytest.raises(DatasetError, match=r"duplicate case id '001': .*part1/001\.mha and .*part2/001\.mha"):
        pengwin_datalist(root, "train")
    root = dataset_copy("brats")
    os.makedirs(root / "extra")
    shutil.copytree(root / "BraTS2021_00001", root / "extra/BraTS2021_00001")
    with pytest.raises(DatasetError, match=r"BraTS: duplicate case id 'BraTS2021_00001'"):
        brats_datalist(root, "train")


def test_pengwin_image_without_label(dataset_copy):
    root = dataset_copy("pengwin")
    os.remove(root / "PENGWIN_CT_train_labels/005.mha")
    with pytest.raises(DatasetError, match=r"case 005: image .*005\.mha has no label"):
        pengwin_datalist(root, "train")


def test_amos_excludes_mri_and_unlabelled(dataset_copy):
    root = dataset_copy("amos")
    meta = json.load(open(root / "dataset.json"))
    shutil.copy(root / "imagesTr/amos_0001.nii.gz", root / "imagesTr/amos_0540.nii.gz")
    shutil.copy(root / "labelsTr/amos_0001.nii.gz", root / "labelsTr/amos_0540.nii.gz")
    meta["training"].append({"image": "./imagesTr/amos_0540.nii.gz", "label": "./labelsTr/amos_0540.nii.gz"})
    meta["test"].append({"image": "./imagesTr/amos_0001.nii.gz"})
    meta["validation"].append({"image": "./imagesTr/amos_0002.nii.gz", "label": ""})
    json.dump(meta, open(root / "dataset.json", "w"))
    ids = {d["case_id"] for s in ("train", "val", "test") for d in amos_datalist(root, s)}
    assert ids == {f"amos_{i:04d}" for i in range(1, 6)}


@pytest.mark.parametrize("dataset", ["amos", "brats", "pengwin"])
def test_missing_dataset_says_how_to_get_one(tmp_path, dataset):
    with pytest.raises(DatasetError, match=f"--dataset_dir .*`monai-cwcd demo-data {dataset}`.*demo.json"):
        load_datalist(dataset, tmp_path, "train")


def test_malformed_dataset_json(dataset_copy):
    root = dataset_copy("amos")
    (root / "dataset.json").write_text("{not json")
    with pytest.raises(DatasetError, match=r"AMOS: cannot parse .*dataset\.json"):
        amos_datalist(root, "train")


def test_too_small_dataset(dataset_copy):
    root = dataset_copy("brats")
    for case in ("BraTS2021_00002", "BraTS2021_00003", "BraTS2021_00004"):
        shutil.rmtree(root / case)
    with pytest.raises(DatasetError, match=r"BraTS: found 2 usable case\(s\), but the train/val/test split needs at least 3"):
        brats_datalist(root, "train")


def test_validate_false_skips_header_checks(dataset_copy):
    root = dataset_copy("amos")
    _truncate(root / "imagesTr/amos_0002.nii.gz")
    assert len(amos_datalist(root, "train", validate=False)) + len(amos_datalist(root, "val", validate=False)) >= 2


# ------------------------------------------------------------------ one channel, 3D; the inference inputs


def _two_channels(path, vector=False):
    """Rewrite ``path`` with 2 channels: NIfTI (x, y, z, 2); MHA a 4th axis, or ITK vector pixels."""
    path = str(path)
    if path.endswith(".nii.gz"):
        img = nib.load(path)
        arr = np.asarray(img.dataobj)
        nib.save(nib.Nifti1Image(np.stack([arr, arr], -1), img.affine), path)
        return
    import itk

    img = itk.imread(path)
    arr = itk.array_from_image(img).astype(np.float32)  # (z, y, x)
    if vector:
        out = itk.image_from_array(np.ascontiguousarray(np.stack([arr, arr], -1)), is_vector=True)
        out.SetSpacing(img.GetSpacing()), out.SetOrigin(img.GetOrigin()), out.SetDirection(img.GetDirection())
    else:
        out = itk.image_from_array(np.ascontiguousarray(np.stack([arr, arr], 0)))
        direction = np.eye(4)
        direction[:3, :3] = itk.array_from_matrix(img.GetDirection())
        out.SetSpacing(list(img.GetSpacing()) + [1.0]), out.SetOrigin(list(img.GetOrigin()) + [0.0])
        out.SetDirection(itk.matrix_from_array(direction))
    itk.imwrite(out, path, compression=True)


@pytest.mark.parametrize("dataset,rel,case,modality,vector", [
    ("amos", "imagesTr/amos_0002.nii.gz", "amos_0002", "CT", False),
    ("brats", "BraTS2021_00003/BraTS2021_00003_t2.nii.gz", "BraTS2021_00003", "MRI", False),
    ("pengwin", "PENGWIN_CT_train_images_part1/002.mha", "002", "CT", False),
    ("pengwin", "PENGWIN_CT_train_images_part1/002.mha", "002", "CT", True),
])
def test_multichannel_image(dataset_copy, dataset, rel, case, modality, vector):
    """A 2-channel image (a 4D NIfTI or MHA, ITK vector pixels) is refused by the header check, in
    training and at inference, naming the case, the file, its shape and what is expected (it used to
    fail in the middle of training or inference with numpy's, a collate or a convolution error)."""
    root = dataset_copy(dataset)
    _two_channels(root / rel, vector)
    pattern = (rf"^case {case}: image {re.escape(str(root / rel))} has shape \(24, 24, 16, 2\); "
               rf"expected a single-channel 3D {modality} volume.* \(3 spatial axes, 1 channel\)\.$")
    with pytest.raises(DatasetError, match=pattern):
        _all_splits(dataset, root)
    with pytest.raises(DatasetError, match=pattern):
        image_datalist(root / os.path.dirname(rel) if dataset == "brats" else root / rel, dataset)


def test_nifti_with_one_trailing_channel_is_accepted(dataset_copy):
    root = dataset_copy("amos")
    img = nib.load(root / "imagesTr/amos_0002.nii.gz")
    nib.save(nib.Nifti1Image(np.asarray(img.dataobj)[..., None], img.affine), root / "imagesTr/amos_0002.nii.gz")
    _all_splits("amos", root)
    assert image_datalist(root / "imagesTr/amos_0002.nii.gz") == [{"image": str(root / "imagesTr/amos_0002.nii.gz")}]


def test_brats_inference_modalities_on_one_grid(dataset_copy):
    """At inference (no label) a case's modalities are compared with its flair, as training compares
    them with the label (it used to fail in MONAI's ConcatItemsd: 'spatial_shape of all images ...')."""
    root = dataset_copy("brats")
    case = root / "BraTS2021_00002"
    t1 = case / "BraTS2021_00002_t1.nii.gz"
    img = nib.load(t1)
    arr = np.asarray(img.dataobj)
    nib.save(nib.Nifti1Image(arr[:, :, :-2], img.affine), t1)
    pattern = (rf"^case BraTS2021_00002: image {re.escape(str(t1))} has shape \(24, 24, 14\), image "
               rf"{re.escape(str(case / 'BraTS2021_00002_flair.nii.gz'))} has shape \(24, 24, 16\); their spatial shapes must match\.$")
    for images in (case, root, [[str(case / f"BraTS2021_00002_{m}.nii.gz") for m in ("flair", "t1", "t1ce", "t2")]]):
        with pytest.raises(DatasetError, match=pattern):
            image_datalist(images, "brats")
    affine = img.affine.copy()
    affine[0, 3] += 5.0
    nib.save(nib.Nifti1Image(arr, affine), t1)
    with pytest.raises(DatasetError, match=r"case BraTS2021_00002: image .*_t1\.nii\.gz and image .*_flair\.nii\.gz have different affines"):
        image_datalist(case, "brats")


def test_brats_inference_inputs_name_what_is_missing(dataset_copy, tmp_path):
    root = dataset_copy("brats")
    assert len(image_datalist(root, "brats")) == 5
    os.remove(root / "BraTS2021_00001/BraTS2021_00001_t2.nii.gz")
    pattern = rf"^case BraTS2021_00001: modality 't2' file {re.escape(str(root / 'BraTS2021_00001/BraTS2021_00001_t2.nii.gz'))} is missing\.$"
    with pytest.raises(DatasetError, match=pattern):  # was "... holds no BraTS case folder"
        image_datalist(root / "BraTS2021_00001", "brats")
    with pytest.raises(DatasetError, match=pattern):  # in a folder of cases: not skipped silently
        image_datalist(root, "brats")
    nowhere = tmp_path / "nowhere"
    with pytest.raises(FileNotFoundError, match=rf"^'{re.escape(str(nowhere))}' does not exist; expected a BraTS case folder"):
        image_datalist(nowhere, "brats")
    with pytest.raises(FileNotFoundError, match=r"nope\.nii\.gz' is not an image file: it does not exist"):
        image_datalist(tmp_path / "nope.nii.gz", "amos")
    with pytest.raises(DatasetError, match=r"expected the 4 modality files flair, t1, t1ce, t2 of a BraTS case"):
        image_datalist([[str(root / "BraTS2021_00000/BraTS2021_00000_flair.nii.gz")]], "brats")
    shutil.rmtree(root / "BraTS2021_00001")
    assert len(image_datalist(root, "brats")) == 4
