"""Data lists and splits without leaks: an image listed twice is one image, the same file in two splits is
refused, and a CSV list's header, columns and Windows separators are read as meant (and said)."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine import data
from engine.errors import DataError
from engine.loading import prepare_data
from engine.model.zoo import arch_info
from engine.preflight import blocking, preflight
from engine.sources import scan_sources
from tests.imagesets import make_image_folder


def test_an_image_listed_twice_is_one_image_and_never_in_two_splits(tmp_path, project_factory):
    """Before: 6 of 16 files of a list that names every image twice were in training and validation both."""
    make_image_folder(tmp_path / "imgs", per_class=8, classes=("a", "b"))
    rows = [f"imgs/{c}/{i:03d}.png,{c}" for c in "ab" for i in range(8)]
    (tmp_path / "twice.csv").write_text("\n".join(rows + rows[::-1]) + "\n")
    p = project_factory(data__train="twice.csv", data__val_fraction=0.25)
    scanned = data.scan(tmp_path / "twice.csv")
    assert len(scanned.samples) == 16 and any("16 row(s) again" in n for n in scanned.notes)
    warnings = [e for e in preflight(p, scan_sources(p)) if e.warning]
    assert [e.key for e in warnings] == ["data.train"] and "used once" in str(warnings[0])
    bundle = prepare_data(p, arch_info("thaw_digits_cnn").preprocess)
    train, val = {s.path for s in bundle.train.samples}, {s.path for s in bundle.val.samples}
    assert not train & val and len(train) + len(val) == 16
    assert any("used once" in w for w in bundle.warnings)
    (tmp_path / "clash.csv").write_text("imgs/a/000.png,a\nimgs/b/000.png,b\n./imgs/a/000.png,b\n")
    with pytest.raises(DataError, match=r"listed twice with different labels \('a' in row 1, 'b' in row 3\)"):
        data.scan(tmp_path / "clash.csv")


@pytest.mark.parametrize("held, link", [("val", "symlink_to"), ("test", "symlink_to"), ("val", "hardlink_to")])
def test_the_same_file_in_training_and_a_held_out_source_is_refused(tmp_path, project_factory, held, link):
    p = project_factory(per_class=6)
    make_image_folder(tmp_path / "other", per_class=3, seed=9)
    (tmp_path / "other" / "circle" / "000.png").unlink()
    getattr(tmp_path / "other" / "circle" / "000.png", link)(tmp_path / "train" / "circle" / "001.png")
    p.set(f"data.{held}", "other")
    found = blocking(preflight(p, scan_sources(p)))
    what = "validation" if held == "val" else "test"
    assert [e.key for e in found] == [f"data.{held}"]
    assert f"1 image(s) of the {what} data are also in the training data" in str(found[0])
    assert "memory, not learning" in str(found[0])
    with pytest.raises(DataError, match="also in the training data"):
        prepare_data(p, arch_info("thaw_digits_cnn").preprocess)


def test_the_same_file_in_validation_and_test_is_refused(tmp_path, project_factory):
    p = project_factory(per_class=6)
    make_image_folder(tmp_path / "held", per_class=3, seed=9)
    p.set("data.val", "held")
    p.set("data.test", "held")
    found = blocking(preflight(p, scan_sources(p)))
    assert [e.key for e in found] == ["data.test"] and "also in the validation data" in str(found[0])


def test_a_csv_header_is_found_by_its_paths_and_the_columns_used_are_said(tmp_path):
    """Before: `filename,category` was taken for an image named "filename" of a class "category"."""
    make_image_folder(tmp_path / "imgs", per_class=2, classes=("a", "b"))
    rows = [f"imgs/{c}/{i:03d}.png,{c}" for c in "ab" for i in range(2)]
    (tmp_path / "named.csv").write_text("filename,category\n" + "\n".join(rows) + "\n")
    s = data.scan(tmp_path / "named.csv")
    assert s.classes == ["a", "b"] and len(s.samples) == 4 and not s.skipped
    assert s.notes == ["named.csv: the first row is a header (filename,category); image paths from column "
                       "'filename', labels from column 'category'"]
    (tmp_path / "three.csv").write_text("id,file,label\n" + "\n".join(f"{i},{r}" for i, r in enumerate(rows)) + "\n")
    s = data.scan(tmp_path / "three.csv")
    assert s.classes == ["a", "b"] and "paths from column 'file', labels from column 'label'" in s.notes[0]
    (tmp_path / "flipped.csv").write_text("\n".join(f"{c},{path}" for path, c in (r.split(",") for r in rows)))
    s = data.scan(tmp_path / "flipped.csv")
    assert s.classes == ["a", "b"] and s.notes == ["flipped.csv: image paths from column 2, labels from column 1"]
    (tmp_path / "plain.csv").write_text("path,label\n" + "\n".join(rows) + "\n")
    assert data.scan(tmp_path / "plain.csv").notes == []  # the documented header needs no word
    (tmp_path / "missing-first.csv").write_text("imgs/gone.png,a\n" + "\n".join(rows) + "\n")
    s = data.scan(tmp_path / "missing-first.csv")  # an image path not found is a row, not a header
    assert len(s.samples) == 4 and [Path(p).name for p, _ in s.skipped] == ["gone.png"]


def test_windows_separators_in_a_csv_are_accepted(tmp_path):
    """Before: `imgs\\a\\000.png` was "listed in the CSV but not found"."""
    make_image_folder(tmp_path / "imgs", per_class=2, classes=("a", "b"))
    rows = [f"imgs\\{c}\\{i:03d}.png,{c}" for c in "ab" for i in range(2)]
    (tmp_path / "win.csv").write_text("\r\n".join(rows) + "\r\n")
    s = data.scan(tmp_path / "win.csv")
    assert len(s.samples) == 4 and not s.skipped
    assert all(Path(x.path).is_file() for x in s.samples)
