from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from monai_cwcd.data.examples import (
    EXAMPLES,
    ExampleDownloadError,
    convert_example,
    download_sdist,
    example_folds,
    fetch_example,
    read_class_map,
    slab_bounds,
)

CLASS_MAP_SOURCE = '''
import os
class_map = {
    "total_v1": {1: "old_spleen"},
    "total": {
        1: "spleen",
        5: "liver",
        7: "aorta",
    },
}
other = {"total": {1: "not this"}}
'''


def _gz(img) -> bytes:
    import gzip

    return gzip.compress(img.to_bytes())


def _tarball(path: Path, members: dict[str, bytes]) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def _ct_volume(depth: int = 40) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    img = rng.normal(0, 1, (20, 18, depth)).astype(np.float32)
    lab = np.zeros((20, 18, depth), dtype=np.uint8)
    lab[2:12, 2:12, :] = 5  # liver in every slice
    lab[14:17, 3:6, :20] = 7  # aorta in the first 20 slices only
    lab[14:17, 10:14, 5:30] = 1  # spleen
    return img, lab


def _fake_totalseg(tmp_path: Path, depth: int = 40, extra_label: int | None = None) -> Path:
    img, lab = _ct_volume(depth)
    if extra_label is not None:
        lab[0, 0, 0] = extra_label
    p = "totalsegmentator-2.18.0/"
    return _tarball(tmp_path / "ts.tar.gz", {
        p + "totalsegmentator/map_to_binary.py": CLASS_MAP_SOURCE.encode(),
        p + "tests/reference_files/example_ct.nii.gz": _gz(nib.Nifti1Image(img, np.diag([3.0, 3.0, 3.0, 1.0]))),
        p + "tests/reference_files/example_seg_fast_force_split.nii.gz": _gz(nib.Nifti1Image(lab, np.diag([3.0, 3.0, 3.0, 1.0]))),
        p + "tests/reference_files/unrelated.nii.gz": b"not extracted",
    })


def test_read_class_map_without_executing():
    assert read_class_map(CLASS_MAP_SOURCE, "total") == {1: "spleen", 5: "liver", 7: "aorta"}
    with pytest.raises(ValueError, match="no task 'total_mr'"):
        read_class_map(CLASS_MAP_SOURCE, "total_mr")
    with pytest.raises(ValueError, match="no 'class_map"):
        read_class_map("x = 1\n", "total")


def test_convert_totalsegmentator_layout_and_names(tmp_path):
    archive = _fake_totalseg(tmp_path)
    out = convert_example("totalsegmentator-ct", archive, tmp_path / "cache" / "ct")
    meta = json.loads((out / "dataset.json").read_text())
    # label values renumbered 0..K over the structures present; names from the package's own class map
    assert meta["labels"] == {"0": "background", "1": "spleen", "2": "liver", "3": "aorta"}
    assert meta["source_labels"] == {"0": 0, "1": 1, "2": 5, "3": 7}
    assert "not manual annotation" in meta["label_note"] and meta["licence"] == "Apache-2.0"
    assert meta["source"]["sha256"] == EXAMPLES["totalsegmentator-ct"].sha256
    assert meta["training"] == [{"image": "./imagesTr/example_ct.nii.gz", "label": "./labelsTr/example_ct.nii.gz", "case_id": "example_ct"}]
    img, lab = _ct_volume()
    got_img = nib.load(out / "imagesTr" / "example_ct.nii.gz")
    got_lab = np.asarray(nib.load(out / "labelsTr" / "example_ct.nii.gz").dataobj)
    np.testing.assert_allclose(np.asarray(got_img.dataobj), img)
    np.testing.assert_allclose(got_img.header.get_zooms(), (3.0, 3.0, 3.0))
    np.testing.assert_array_equal(got_lab, np.select([lab == 1, lab == 5, lab == 7], [1, 2, 3], 0))
    # only the listed files were taken; nothing else (no staging folder) is left beside the output
    assert sorted(p.name for p in out.rglob("*") if p.is_file()) == ["dataset.json", "example_ct.nii.gz", "example_ct.nii.gz"]
    assert [p.name for p in (tmp_path / "cache").iterdir()] == ["ct"]


def test_convert_errors(tmp_path):
    with pytest.raises(ValueError, match=r"label value\(s\) \[9\] have no name"):
        convert_example("totalsegmentator-ct", _fake_totalseg(tmp_path, extra_label=9), tmp_path / "o")
    assert not (tmp_path / "o").exists()
    broken = _tarball(tmp_path / "b.tar.gz", {"totalsegmentator-2.18.0/README.md": b"x"})
    with pytest.raises(ValueError, match="has no 'totalsegmentator-2.18.0/totalsegmentator/map_to_binary.py'"):
        convert_example("totalsegmentator-ct", broken, tmp_path / "o")
    with pytest.raises(ValueError, match="unknown example"):
        convert_example("amos", broken, tmp_path / "o")


def _fake_pyradiomics(tmp_path: Path) -> Path:
    import itk

    members = {}
    for i, n in ((1, 24), (2, 20)):
        img = np.random.default_rng(i).normal(100, 10, (n, 30, 28)).astype(np.float32)  # itk: z, y, x
        lab = np.zeros_like(img, dtype=np.uint8)
        lab[4:9, 10:14, 10:15] = 1
        for kind, arr in (("image", img), ("label", lab)):
            f = tmp_path / f"brain{i}_{kind}.nrrd"
            im = itk.image_from_array(arr)
            im.SetSpacing((0.8, 0.8, 6.5))
            itk.imwrite(im, str(f))
            members[f"pyradiomics-3.0.1/data/brain{i}_{kind}.nrrd"] = f.read_bytes()
    return _tarball(tmp_path / "pr.tar.gz", members)


def test_convert_pyradiomics_and_subject_folds(tmp_path):
    out = convert_example("pyradiomics-brain", _fake_pyradiomics(tmp_path), tmp_path / "brain")
    meta = json.loads((out / "dataset.json").read_text())
    assert meta["labels"] == {"0": "background", "1": "lesion"} and meta["numTraining"] == 2
    lab = nib.load(out / "labelsTr" / "brain1.nii.gz")
    assert lab.shape == (28, 30, 24) and np.asarray(lab.dataobj).sum() == 5 * 4 * 5
    np.testing.assert_allclose(lab.header.get_zooms(), (0.8, 0.8, 6.5), rtol=1e-5)
    folds, spec = example_folds("pyradiomics-brain-subjects", out, (16, 16, 8))
    # train on one subject, test on the other, both directions
    assert [(f["train"]["case_id"], f["test"]["case_id"]) for f in folds] == [(["brain1"], ["brain2"]), (["brain2"], ["brain1"])]
    assert folds[0]["train"]["image"].shape == (1, 1, 16, 16, 8) and spec["num_classes"] == 2
    assert "pyradiomics" in spec["label_note"]


def test_slab_bounds():
    assert slab_bounds(112) == [(0, 16), (24, 40), (48, 64), (72, 88), (96, 112)]
    assert slab_bounds(44, slab=16, gap=8) == [(2, 18), (26, 42)]  # centred
    with pytest.raises(ValueError, match="at least 2"):
        slab_bounds(30)


def test_slab_protocol_disjoint_with_gap(tmp_path):
    out = convert_example("totalsegmentator-ct", _fake_totalseg(tmp_path, depth=64), tmp_path / "ct")
    folds, spec = example_folds("totalsegmentator-ct-slabs", out, (16, 16, 16))
    (fold,) = folds
    # 64 slices: slabs (0,16) (24,40) (48,64); even slabs train, odd test, each its own input
    assert fold["train"]["case_id"] == ["example_ct_z0-16", "example_ct_z48-64"]
    assert fold["test"]["case_id"] == ["example_ct_z24-40"]
    assert fold["train"]["image"].shape == (2, 1, 16, 16, 16)
    # only structures present in both training and test slabs are scored (the aorta stops at z=20)
    assert spec["regions"] == {"spleen": [1], "liver": [2]}
    assert "8-slice gaps (24 mm)" in spec["protocol"] and "not manual annotation" in spec["label_note"]


def test_organ_grouping_protocol(tmp_path):
    """The organs protocol relabels TotalSegmentator's classes into organ-level groups (same slabs,
    same spacing); a name matched by two groups is an error."""
    import torch

    from monai_cwcd.data.examples import TOTALSEG_ORGAN_GROUPS, group_labels

    out = convert_example("totalsegmentator-ct", _fake_totalseg(tmp_path, depth=64), tmp_path / "ct")
    plain, _ = example_folds("totalsegmentator-ct-slabs", out, (16, 16, 16))
    folds, spec = example_folds("totalsegmentator-ct-organs-slabs", out, (16, 16, 16))
    # 64 slices in 8-slice slabs with 4-slice gaps: 5 slabs, 3 train and 2 test, each its own input
    assert folds[0]["train"]["case_id"] == ["example_ct_z4-12", "example_ct_z28-36", "example_ct_z52-60"]
    assert folds[0]["test"]["case_id"] == ["example_ct_z16-24", "example_ct_z40-48"]
    assert "4-slice gaps (12 mm)" in spec["protocol"]
    from monai_cwcd.data import examples as ex

    bounds = ex.slab_bounds(64, ex.ORGAN_SLAB_SLICES, ex.ORGAN_SLAB_GAP)
    assert all(b[0] - a[1] == 4 for a, b in zip(bounds, bounds[1:]))
    assert spec["class_names"] == ["background", *TOTALSEG_ORGAN_GROUPS] and spec["num_classes"] == 20
    names = spec["class_names"]
    # the aorta ends at slice 20: in training slab 4-12 and test slab 16-24, so it is scored here
    assert spec["regions"] == {k: [names.index(k)] for k in ("spleen", "liver", "arteries")}
    # the fake CT: spleen, liver, aorta (in the first 20 slices) -> spleen, liver, arteries
    lab = folds[0]["train"]["label"]
    assert set(torch.unique(lab).tolist()) == {0, names.index("spleen"), names.index("liver"), names.index("arteries")}
    assert bool((lab[0] == names.index("arteries")).any()) and not bool((lab[2] == names.index("arteries")).any())
    assert folds[0]["train"]["spacing"][0] == pytest.approx((3.0 * 20 / 16, 3.0 * 18 / 16, 3.0 * 8 / 16))
    assert "grouped into 19" in spec["label_note"]
    g, gnames = group_labels(torch.tensor([0, 1, 2, 3]), ["background", "rib_left_1", "costal_cartilages", "brain"])
    assert g.tolist() == [0, gnames.index("ribs"), gnames.index("ribs"), 0]
    with pytest.raises(ValueError, match="matches groups"):
        group_labels(torch.tensor([1]), ["background", "liver"], {"a": ("liver",), "b": ("liv", "liver")})


def _fake_sdist(folder: Path) -> Path:
    folder.mkdir()
    data = b"from setuptools import setup\nsetup(name='cwcdfakepkg', version='1.0')\n"
    return _tarball(folder / "cwcdfakepkg-1.0.tar.gz", {"cwcdfakepkg-1.0/setup.py": data,
                                                          "cwcdfakepkg-1.0/PKG-INFO": b"Metadata-Version: 2.1\nName: cwcdfakepkg\nVersion: 1.0\n"})


def test_download_sdist_checksum(tmp_path):
    """pip downloads from a local index folder (no network); the pinned sha256 is enforced."""
    sdist = _fake_sdist(tmp_path / "index")
    digest = hashlib.sha256(sdist.read_bytes()).hexdigest()
    args = ("--no-index", "--find-links", str(tmp_path / "index"), "--no-build-isolation")
    with pytest.raises(ExampleDownloadError, match=f"sha256 {digest} differs from the pinned 0000"):
        download_sdist("cwcdfakepkg", "1.0", "0" * 64, tmp_path / "dl", args)
    assert not list((tmp_path / "dl").glob("*.tar.gz"))
    got = download_sdist("cwcdfakepkg", "1.0", digest, tmp_path / "dl", args)
    assert got.read_bytes() == sdist.read_bytes()
    sdist.unlink()  # a verified copy is reused without asking the index again
    assert download_sdist("cwcdfakepkg", "1.0", digest, tmp_path / "dl", args) == got


def test_fetch_example_offline_one_line(tmp_path):
    env = dict(os.environ, MONAI_CWCD_CACHE=str(tmp_path / "cache"), PIP_CONFIG_FILE=os.devnull, PIP_FIND_LINKS="",
               PIP_INDEX_URL="http://127.0.0.1:9/simple", PIP_EXTRA_INDEX_URL="", PIP_RETRIES="0", PIP_TIMEOUT="2")
    proc = subprocess.run([sys.executable, "-m", "monai_cwcd", "fetch-example", "pyradiomics-brain"], env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1 and proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    # the notice that a download starts, then the error as the one last line
    assert len(lines) == 2 and "fetching the pyradiomics==3.0.1 source distribution from PyPI" in lines[0]
    assert lines[-1].startswith("monai-cwcd fetch-example: could not download pyradiomics==3.0.1")
    assert not (tmp_path / "cache" / "examples").exists()


@pytest.mark.slow
def test_fetch_real_examples(tmp_path):
    """The real download from PyPI (about 72 MB), checksum and conversion; skipped when offline."""
    try:
        ct = Path(fetch_example("totalsegmentator-ct", cache_dir=tmp_path))
        brain = Path(fetch_example("pyradiomics-brain", cache_dir=tmp_path))
    except ExampleDownloadError as e:
        pytest.skip(str(e))
    meta = json.loads((ct / "dataset.json").read_text())
    assert len(meta["labels"]) == 62 and {"liver", "adrenal_gland_right", "femur_left"} <= set(meta["labels"].values())
    assert nib.load(ct / "imagesTr" / "example_ct.nii.gz").shape == (122, 101, 112)
    lesion = [np.asarray(nib.load(brain / "labelsTr" / f"brain{i}.nii.gz").dataobj).mean() for i in (1, 2)]
    assert 0.002 < lesion[0] < 0.003 and 0.0002 < lesion[1] < 0.0004
    assert fetch_example("totalsegmentator-ct", cache_dir=tmp_path) == str(ct)  # cached
