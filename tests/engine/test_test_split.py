"""The test split: a test folder or a test share held out of the training data, stratified and seeded like
validation, and the split without a test share exactly the one Thaw made before there was one."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from engine import data, loading
from engine.errors import DataError
from engine.preflight import preflight
from engine.project import Project, to_dict
from engine.runs import checkpoint
from engine.sources import scan_sources, source_problems, source_warnings, split_sizes
from tests.imagesets import make_image_folder

PRE = SimpleNamespace(resize=36, crop=32, mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25), interpolation="bilinear")


def _uneven(root: Path) -> data.Scan:
    """a/ and b/ with 7 images each, c/ with 5: shares that round differently per class."""
    make_image_folder(root, per_class=7, classes=("a", "b"))
    make_image_folder(root, per_class=5, classes=("c",))
    return data.scan(root)


def _names(samples, root):
    return " ".join(str(Path(s.path).relative_to(root).with_suffix("")) for s in samples)


# What the split gave before the test share existed (computed with that code): validation, then the training
# images in the order they train. Runs made then repeat, and resume bit-identically, only if this stays.
BEFORE = {
    (3, 0.2): ("a/000 b/003 c/002",
               "a/002 a/003 a/006 a/005 a/004 a/001 b/002 b/001 b/006 b/000 b/004 b/005 c/003 c/000 c/001 c/004"),
    (0, 0.3): ("a/004 a/002 b/001 b/000 c/002 c/000",
               "a/001 a/000 a/005 a/003 a/006 b/004 b/005 b/006 b/002 b/003 c/003 c/001 c/004"),
}


@pytest.mark.parametrize("seed, val_fraction", list(BEFORE))
def test_without_a_test_share_the_split_is_the_one_before_it(tmp_path, seed, val_fraction):
    root = tmp_path / "t"
    s = _uneven(root)
    parts = data.split(s.samples, val_fraction, seed, s.classes)
    assert (_names(parts.val, root), _names(parts.train, root)) == BEFORE[seed, val_fraction]
    assert parts.test == []
    assert data.split(s.samples, val_fraction, seed, s.classes, test_fraction=0.0) == parts


def test_a_test_share_is_stratified_seeded_disjoint_and_repeatable(tmp_path):
    root = tmp_path / "t"
    s = _uneven(root)
    without = data.split(s.samples, 0.2, 3, s.classes)
    parts = data.split(s.samples, 0.2, 3, s.classes, test_fraction=0.3)
    assert _names(parts.test, root) == "a/002 a/003 b/002 b/001 c/003 c/000"  # the order documented
    assert [sum(x.label == k for x in parts.test) for k in range(3)] == [2, 2, 2]  # round(7*0.3), round(5*0.3)
    paths = [{x.path for x in part} for part in (parts.train, parts.val, parts.test)]
    assert not (paths[0] & paths[1] or paths[0] & paths[2] or paths[1] & paths[2])
    assert sorted(set.union(*paths)) == sorted(x.path for x in s.samples)
    assert parts.val == without.val  # validation does not move for a test share ...
    assert parts.train == [x for x in without.train if x.path not in paths[2]]  # ... the test images leave training
    assert data.split(list(reversed(s.samples)), 0.2, 3, s.classes, 0.3) == parts  # repeatable
    assert {x.path for x in data.split(s.samples, 0.2, 4, s.classes, 0.3).test} != paths[2]  # seeded


def test_a_run_holds_out_the_test_share_with_evaluation_transforms(tmp_path, project_factory):
    make_image_folder(tmp_path / "train", per_class=8)
    (tmp_path / "train" / "circle" / "broken.png").write_bytes(b"")
    assert loading.prepare_data(project_factory(), PRE).test is None  # no test split: none
    bundle = loading.prepare_data(project_factory(data__test_fraction=0.25), PRE)
    assert (len(bundle.train), len(bundle.val), len(bundle.test)) == (12, 6, 6)
    assert bundle.test.transform is bundle.val.transform and bundle.test.cache  # no augmentation
    assert sorted(bundle.test.labels) == [0, 0, 1, 1, 2, 2]
    assert [Path(p).name for p, _ in bundle.skipped] == ["broken.png"]


def test_a_test_share_beside_a_validation_folder_comes_from_the_training_source(tmp_path, project_factory):
    make_image_folder(tmp_path / "train", per_class=8)
    make_image_folder(tmp_path / "val", per_class=2, seed=1)
    before = loading.prepare_data(project_factory(data__val="val"), PRE)
    bundle = loading.prepare_data(project_factory(data__val="val", data__test_fraction=0.25), PRE)
    assert bundle.val.samples == before.val.samples and len(bundle.test) == 6  # round(8 * 0.25) of each class
    assert all(Path(s.path).is_relative_to(tmp_path / "train") for s in bundle.test.samples)
    assert sorted(s.path for s in bundle.train.samples + bundle.test.samples) == sorted(
        s.path for s in before.train.samples)


def test_a_test_folder_is_labelled_as_the_training_classes_and_no_share_is_split(tmp_path, project_factory):
    make_image_folder(tmp_path / "train", per_class=8)
    make_image_folder(tmp_path / "test", per_class=2, classes=("square", "triangle"), seed=2)
    (tmp_path / "test" / "square" / "notes.txt").write_text("not an image")
    p = project_factory(data__test="test", data__test_fraction=0.5)  # the share is not used with a folder
    sources = scan_sources(p)
    assert source_problems(p, sources) == [] and split_sizes(p, sources) == (18, 6, 4)
    bundle = loading.prepare_data(p, PRE)
    assert len(bundle.train) == 18 and len(bundle.val) == 6
    assert sorted(bundle.test.labels) == [1, 1, 2, 2]
    assert all(Path(s.path).parent.name == bundle.classes[s.label] for s in bundle.test.samples)
    assert [Path(p).name for p, _ in bundle.skipped] == ["notes.txt"]


def test_a_test_folder_with_a_class_the_training_data_lacks_is_an_error_naming_data_test(tmp_path, project_factory):
    make_image_folder(tmp_path / "train", per_class=4)
    make_image_folder(tmp_path / "test", per_class=1, classes=("circle", "hexagon"))
    p = project_factory(data__test="test")
    found = {e.key: e.problem for e in preflight(p, scan_sources(p))}
    assert found["data.test"].startswith("test classes not in the training data: hexagon")
    with pytest.raises(DataError, match=r"test classes not in the training data: hexagon; the test folder "
                                        r"\(data.test\) must use"):
        loading.prepare_data(p, PRE)
    p.data.test = "nowhere"
    assert "is not a folder" in {e.key: e.problem for e in preflight(p)}["data.test"]
    (tmp_path / "one").mkdir()
    p.data.test = "one"
    assert "has no class sub-folders" in {e.key: e.problem for e in preflight(p, scan_sources(p))}["data.test"]


def test_a_test_folder_only_of_classes_empty_in_training(tmp_path, project_factory):
    root = make_image_folder(tmp_path / "train", per_class=4, classes=("a", "b"))
    for c in "cd":
        (root / c).mkdir()
    make_image_folder(tmp_path / "test", per_class=2, classes=("c", "d"))
    p = project_factory(data__test="test")
    assert source_problems(p, scan_sources(p)) == [
        ("data.test", "every test image is of a class without usable training images ('c', 'd'); nothing could be "
                      "tested")]
    make_image_folder(tmp_path / "test", per_class=2, classes=("a", "b"))
    ((_, warning),) = source_warnings(p, scan_sources(p))
    assert "the test images of 'c', 'd' are left out too" in warning


@pytest.mark.parametrize("settings, per_class, key, words", [
    ({"data__val_fraction": 0.5, "data__test_fraction": 0.5}, 8, "data.test_fraction",
     "add up to 1: nothing would be left for training. Lower data.test_fraction"),
    ({"data__val_fraction": 0.7, "data__test_fraction": 0.3}, 8, "data.test_fraction", "add up to 1"),  # 0.99..
    ({"data__val_fraction": 0.25, "data__test_fraction": 0.25}, 2, "data.test_fraction",
     "class 'circle' has only 2 usable image(s); holding out 1 for validation and 1 for test (test_fraction=0.25) "
     "needs at least 3. Add images, set data.test_fraction to 0"),
    ({"data__val_fraction": 0.9, "data__test_fraction": 0.05}, 2, "data.val_fraction",  # as without a test share
     "a train/validation split with val_fraction=0.9 needs at least 3"),
    ({"data__val": "val", "data__test_fraction": 0.9}, 2, "data.test_fraction", "holding out 2 for test"),
])
def test_shares_that_leave_no_training_image_are_refused_naming_the_key(tmp_path, project_factory, settings,
                                                                         per_class, key, words):
    make_image_folder(tmp_path / "val", per_class=1)
    p = project_factory(per_class=per_class, **settings)
    sources = scan_sources(p)
    assert [k for k, _ in source_problems(p, sources)] == [key] and words in source_problems(p, sources)[0][1]
    assert split_sizes(p, sources) is None
    with pytest.raises(DataError, match=key.replace(".", r"\.") if "add up" in words else "needs at least"):
        loading.prepare_data(p, PRE)
    if "add up" in words:  # known before the images are scanned
        assert key in {e.key for e in preflight(p)}


def test_split_sizes_are_those_of_the_run(tmp_path, project_factory):
    make_image_folder(tmp_path / "val", per_class=2, seed=1)
    for settings in ({}, {"data__test_fraction": 0.3}, {"data__val": "val", "data__test_fraction": 0.2}):
        p = project_factory(per_class=7, **settings)
        bundle = loading.prepare_data(p, PRE)
        sizes = (len(bundle.train), len(bundle.val), len(bundle.test) if bundle.test else 0)
        assert split_sizes(p, scan_sources(p)) == sizes


def test_a_run_from_before_the_test_keys_resumes(project_factory):
    """A checkpoint's project written before data.test existed lacks both keys: they had their defaults."""
    now = to_dict(project_factory())
    saved = {**now, "data": {k: v for k, v in now["data"].items() if not k.startswith("test")}}
    assert checkpoint.differences(saved, now) == []
    now["data"]["test_fraction"] = 0.2
    assert checkpoint.differences(saved, now) == ["data.test_fraction = 0.2 (the run had 0.0)"]
    assert to_dict(Project())["data"]["test"] == ""
