"""Data: scanning folders and CSV lists, bad files skipped with reasons, clear errors, splits, loaders."""

from __future__ import annotations

import io
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from PIL import Image

from engine import data, loading
from engine.errors import DataError
from tests.imagesets import make_image_folder

PRE = SimpleNamespace(resize=36, crop=32, mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25), interpolation="bilinear")


def _half(fmt: str) -> bytes:
    im = Image.effect_noise((48, 48), 40).convert("RGB")
    buf = io.BytesIO()
    im.save(buf, fmt)
    return buf.getvalue()[: len(buf.getvalue()) // 2]


def test_scan_folder_lists_classes_in_order(tmp_path):
    root = make_image_folder(tmp_path / "train", per_class=4)
    s = data.scan(root)
    assert s.classes == ["circle", "square", "triangle"]
    assert s.counts() == {"circle": 4, "square": 4, "triangle": 4}
    assert s.skipped == []
    assert all(Path(x.path).parent.name == s.classes[x.label] for x in s.samples)


def test_scan_skips_bad_files_with_reasons(tmp_path, monkeypatch):
    root = make_image_folder(tmp_path / "train", per_class=3, size=32)
    (root / "circle" / "empty.png").write_bytes(b"")
    (root / "circle" / "fake.jpg").write_text("not really a jpeg")
    (root / "square" / "cut.png").write_bytes(_half("PNG"))
    (root / "square" / "notes.txt").write_text("hello")
    (root / "triangle" / ".DS_Store").write_bytes(b"\0\0")  # hidden files are ignored, not reported
    Image.new("RGB", (200, 200)).save(root / "triangle" / "huge.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100 * 100)
    s = data.scan(root)
    reasons = {Path(p).name: r for p, r in s.skipped}
    assert set(reasons) == {"empty.png", "fake.jpg", "cut.png", "notes.txt", "huge.png"}
    assert "empty" in reasons["empty.png"]
    assert "not an image" in reasons["fake.jpg"]
    assert "truncated" in reasons["cut.png"]
    assert "extension" in reasons["notes.txt"]
    assert "too large" in reasons["huge.png"]
    assert s.counts() == {"circle": 3, "square": 3, "triangle": 3}


def test_scan_csv_with_and_without_header(tmp_path):
    make_image_folder(tmp_path / "imgs", per_class=2, classes=("a", "b"))
    lines = [f"imgs/{c}/{i:03d}.png,{c.upper()}" for c in "ab" for i in range(2)] + ["imgs/missing.png,A"]
    (tmp_path / "list.csv").write_text("path,label\n" + "\n".join(lines) + "\n")
    (tmp_path / "bare.csv").write_text("\n".join(lines) + "\n")
    for name in ("list.csv", "bare.csv"):
        s = data.scan(tmp_path / name)
        assert s.classes == ["A", "B"]
        assert s.counts() == {"A": 2, "B": 2}
        assert [Path(p).name for p, _ in s.skipped] == ["missing.png"]
    (tmp_path / "bad.csv").write_text("path,label\nonly-a-path\n")
    with pytest.raises(DataError, match="row 2"):  # the file's own row numbers: the header is row 1
        data.scan(tmp_path / "bad.csv")


@pytest.mark.parametrize("case, message", [
    ("no_images", "no usable images"),
    ("empty_class", r"only one class with usable images \('circle'\).*'square' has none.*cannot be learned"),
    ("single_class", "only one class"),
    ("loose", "no class sub-folders.*directly"),
    ("all_bad", "no usable images.*skipped"),
])
def test_scan_errors_say_what_is_wrong(tmp_path, case, message):
    root = tmp_path / "train"
    root.mkdir()
    if case == "no_images":
        (root / "a").mkdir()
        (root / "b").mkdir()
    elif case == "empty_class":  # one class left once the empty one is: still fewer than two
        make_image_folder(root, per_class=2, classes=("circle",))
        (root / "square").mkdir()
        (root / "square" / "x.png").write_bytes(b"")
    elif case == "single_class":
        make_image_folder(root, per_class=2, classes=("circle",))
    elif case == "loose":
        Image.new("RGB", (8, 8)).save(root / "x.png")
    elif case == "all_bad":
        for c in "ab":
            (root / c).mkdir()
            (root / c / "x.png").write_bytes(b"")
    with pytest.raises(DataError, match=message):
        data.scan(root)


def test_a_class_without_usable_images_is_left_out_and_named(tmp_path):
    root = make_image_folder(tmp_path / "train", per_class=2, classes=("circle", "triangle"))
    (root / "square").mkdir()
    (root / "square" / "empty.png").write_bytes(b"")
    (root / "square" / "notes.txt").write_text("no images here")
    s = data.scan(root)
    assert s.classes == ["circle", "triangle"] and s.empty_classes == ["square"]
    assert s.counts() == {"circle": 2, "triangle": 2}
    assert all(Path(x.path).parent.name == s.classes[x.label] for x in s.samples)  # labels 0..1, renumbered
    assert sorted(Path(p).name for p, _ in s.skipped) == ["empty.png", "notes.txt"]
    (root / "hexagon").mkdir()  # a folder with nothing in it at all
    assert data.scan(root).empty_classes == ["hexagon", "square"]


def test_a_csv_label_whose_files_are_all_unusable_is_left_out(tmp_path):
    make_image_folder(tmp_path / "imgs", per_class=2, classes=("a", "b"))
    (tmp_path / "imgs" / "c.png").write_bytes(b"")
    lines = [f"imgs/{c}/{i:03d}.png,{c}" for c in "ab" for i in range(2)] + ["imgs/c.png,c", "imgs/gone.png,c"]
    (tmp_path / "list.csv").write_text("path,label\n" + "\n".join(lines) + "\n")
    s = data.scan(tmp_path / "list.csv")
    assert s.classes == ["a", "b"] and s.empty_classes == ["c"] and s.counts() == {"a": 2, "b": 2}
    assert sorted(Path(p).name for p, _ in s.skipped) == ["c.png", "gone.png"]
    (tmp_path / "one.csv").write_text("\n".join(lines[:2] + lines[4:]) + "\n")  # a, and c with nothing usable
    with pytest.raises(DataError, match=r"only one class with usable images \('a'\).*'c' has none.*one label each"):
        data.scan(tmp_path / "one.csv")


def test_split_is_stratified_seeded_and_complete(tmp_path):
    s = data.scan(make_image_folder(tmp_path / "t", per_class=10))
    parts = data.split(s.samples, 0.2, seed=3)
    again = data.split(list(reversed(s.samples)), 0.2, seed=3)
    assert [x.path for x in parts.val] == [x.path for x in again.val]
    assert [x.path for x in parts.train] == [x.path for x in again.train]
    assert sorted(x.path for x in parts.train + parts.val) == sorted(x.path for x in s.samples)
    assert [sum(x.label == k for x in parts.val) for k in range(3)] == [2, 2, 2] and parts.test == []
    assert {x.path for x in data.split(s.samples, 0.2, seed=4).val} != {x.path for x in parts.val}


def test_split_rejects_a_class_too_small(tmp_path):
    s = data.scan(make_image_folder(tmp_path / "t", per_class=1))
    with pytest.raises(DataError, match="'circle' has only 1 usable image"):
        data.split(s.samples, 0.2, 0, s.classes)


def test_transforms_give_three_channels_at_image_size(tmp_path):
    root = make_image_folder(tmp_path / "t", per_class=2, size=48, grayscale_every=2)
    gray = Image.open(root / "circle" / "000.png")
    assert gray.mode == "L"
    for augment in ("none", "light", "strong"):
        for train in (True, False):
            t = loading.build_transforms(PRE, 32, augment, train)
            x = t(gray.convert("RGB"))
            assert x.shape == (3, 32, 32) and x.dtype == torch.float32
    plain = loading.build_transforms(PRE, 32, "none", True)(Image.new("RGB", (40, 40), (255, 255, 255)))
    assert torch.allclose(plain, torch.full((3, 32, 32), (1.0 - 0.5) / 0.25))


def test_prepare_data_with_separate_val_folder(tmp_path, project_factory):
    make_image_folder(tmp_path / "train", per_class=4)
    make_image_folder(tmp_path / "val", per_class=2, classes=("square", "triangle"), seed=1)
    bundle = loading.prepare_data(project_factory(data__val="val"), PRE)
    assert bundle.classes == ["circle", "square", "triangle"]
    assert len(bundle.train) == 12 and len(bundle.val) == 4
    assert sorted(set(bundle.val.labels)) == [1, 2]
    assert bundle.class_counts() == [4, 4, 4]
    x, y = bundle.val[0]
    assert x.shape == (3, 32, 32) and y == 1


def test_prepare_data_rejects_unknown_val_class(tmp_path, project_factory):
    make_image_folder(tmp_path / "train", per_class=4, classes=("a", "b"))
    make_image_folder(tmp_path / "val", per_class=2, classes=("a", "c"))
    with pytest.raises(DataError, match="validation classes not in the training data: c"):
        loading.prepare_data(project_factory(data__val="val"), PRE)


def _empty_square(tmp_path, *, val=None):
    """train/: circle and triangle with 4 images each, square with only an unusable file; val/ as given."""
    root = make_image_folder(tmp_path / "train", per_class=4, classes=("circle", "triangle"))
    (root / "square").mkdir()
    (root / "square" / "broken.png").write_bytes(b"")
    if val:
        make_image_folder(tmp_path / "val", per_class=2, classes=val, seed=1)


def test_prepare_data_leaves_out_an_empty_class_and_says_so(tmp_path, project_factory):
    _empty_square(tmp_path)
    bundle = loading.prepare_data(project_factory(), PRE)
    assert bundle.classes == ["circle", "triangle"] and bundle.class_counts() == [3, 3]
    assert sorted(set(bundle.train.labels)) == sorted(set(bundle.val.labels)) == [0, 1]
    assert [Path(p).name for p, _ in bundle.skipped] == ["broken.png"]
    (warning,) = bundle.warnings
    assert "class 'square' has no usable images" in warning and "cannot be learned" in warning
    assert "training on the other 2 classes" in warning and "validation" not in warning


def test_an_empty_training_class_is_left_out_of_validation_too(tmp_path, project_factory):
    _empty_square(tmp_path, val=("circle", "square", "triangle"))
    bundle = loading.prepare_data(project_factory(data__val="val"), PRE)
    assert bundle.classes == ["circle", "triangle"] and len(bundle.val) == 4
    assert {Path(s.path).parent.name for s in bundle.val.samples} == {"circle", "triangle"}
    assert all(Path(s.path).parent.name == bundle.classes[s.label] for s in bundle.val.samples)
    (warning,) = bundle.warnings
    assert "'square'" in warning and "the validation images of 'square' are left out too" in warning


def test_a_validation_folder_with_an_empty_or_absent_class_works(tmp_path, project_factory):
    make_image_folder(tmp_path / "train", per_class=4)
    make_image_folder(tmp_path / "val", per_class=2, classes=("circle", "triangle"), seed=1)  # square absent
    (tmp_path / "val" / "square").mkdir()  # ... and then there, empty
    bundle = loading.prepare_data(project_factory(data__val="val"), PRE)
    assert bundle.classes == ["circle", "square", "triangle"] and bundle.warnings == []
    assert sorted(set(bundle.val.labels)) == [0, 2] and len(bundle.val) == 4
    (tmp_path / "val" / "hexagon").mkdir()  # empty, but not a training class: a misnamed folder
    with pytest.raises(DataError, match="validation classes not in the training data: hexagon"):
        loading.prepare_data(project_factory(data__val="val"), PRE)


def test_validation_only_of_classes_empty_in_training_is_an_error(tmp_path, project_factory):
    root = make_image_folder(tmp_path / "train", per_class=4, classes=("a", "b"))
    for c in "cd":
        (root / c).mkdir()
    make_image_folder(tmp_path / "val", per_class=2, classes=("c", "d"))
    with pytest.raises(DataError, match="every validation image is of a class without usable training images"):
        loading.prepare_data(project_factory(data__val="val"), PRE)


def test_loader_skips_a_file_that_fails_at_load_time(tmp_path, project_factory):
    root = make_image_folder(tmp_path / "train", per_class=3, classes=("a", "b"))
    (root / "a" / "cut.jpg").write_bytes(_half("JPEG"))  # passes the scan, fails when decoded
    bundle = loading.prepare_data(project_factory(data__val_fraction=0.3), PRE)
    assert bundle.skipped == []
    loader = loading.make_loader(bundle.train, batch_size=64, shuffle=False, seed=0)
    batches = list(loader)
    assert len(batches) == 1
    b = batches[0]
    n_cut = sum(Path(s.path).name == "cut.jpg" for s in bundle.train.samples)
    assert [Path(f.path).name for f in b.failures] == ["cut.jpg"] * n_cut
    assert len(b) == len(bundle.train) - n_cut and b.x.shape[1:] == (3, 32, 32)


def test_loader_order_is_seeded(tmp_path, project_factory):
    make_image_folder(tmp_path / "train", per_class=6)
    bundle = loading.prepare_data(project_factory(), PRE)

    def order(seed):
        return torch.cat([b.y for b in loading.make_loader(bundle.train, 4, True, seed)]).tolist()

    assert order(1) == order(1)
    assert any(order(1) != order(s) for s in (2, 3, 4))


def test_worker_choice():
    assert loading.choose_workers(100_000, 32, cpus=16) == 0
    assert loading.choose_workers(50, 224, cpus=16) == 0
    assert loading.choose_workers(10_000, 224, cpus=2) == 0
    assert loading.choose_workers(10_000, 224, cpus=16) == 8
    assert loading.choose_workers(10_000, 224, cpus=4) == 3


def test_worker_processes_give_the_same_batches(tmp_path, project_factory):
    """The worker path (forkserver/spawn, as inside the Qt process) pickles the dataset and its transforms."""
    root = make_image_folder(tmp_path / "train", per_class=3, classes=("a", "b"))
    (root / "b" / "cut.jpg").write_bytes(_half("JPEG"))
    bundle = loading.prepare_data(project_factory(data__val_fraction=0.3, data__augment="none"), PRE)

    def run(workers):
        loader = loading.make_loader(bundle.train, 2, True, 5, num_workers=workers)
        assert (loader.multiprocessing_context is None) == (workers == 0)
        batches = list(loader)
        return (torch.cat([b.y for b in batches]).tolist(), torch.cat([b.x for b in batches]),
                [f.path for b in batches for f in b.failures])

    in_process, with_worker = run(0), run(1)
    assert in_process[0] == with_worker[0] and in_process[2] == with_worker[2]
    assert torch.equal(in_process[1], with_worker[1])


def test_fixed_transform_decodes_once_but_sees_a_replaced_or_deleted_file(tmp_path):
    root = make_image_folder(tmp_path / "train", per_class=2, size=32)
    samples = data.scan(root).samples
    ds = loading.ImageDataset(samples, loading.build_transforms(PRE, 32, "none", train=False), 32, cache=True)
    first, _ = ds[0]
    assert ds[0][0] is first  # decoded once, kept
    path = Path(samples[0].path)
    Image.new("RGB", (40, 40), (255, 255, 255)).save(path)  # replaced: another size, read again
    replaced, _ = ds[0]
    assert replaced is not first and not torch.equal(replaced, first)
    path.unlink()
    assert isinstance(ds[0], loading.LoadFailure)
    assert not loading.ImageDataset(samples[1:], ds.transform, 32).cache  # random transforms are never cached


def test_a_scan_verifies_a_file_again_only_once_it_changed(tmp_path, monkeypatch):
    """The window's scan and the run's scan of the same folder: the second reads each file's stat, not its pixels;
    a file rewritten since is verified again."""
    path = tmp_path / "a.png"
    Image.new("RGB", (8, 8), "red").save(path)
    assert data.check_image(path) is None
    verified = []
    real = data._check_image
    monkeypatch.setattr(data, "_check_image", lambda p, size: verified.append(p) or real(p, size))
    assert data.check_image(path) is None and verified == []
    path.write_bytes(b"not an image at all")
    assert data.check_image(path) == "not an image (cannot identify the format)" and verified == [path]
