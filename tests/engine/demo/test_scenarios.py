"""The demo's target image folders and project files: deterministic, complete, and unseen by the source."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest

from engine import project as projects
from engine.demo.scenarios import SCENARIOS, demo_folder, ensure_demo
from engine.demo.source import load_digits_uint8
from engine.errors import DataError
from engine.io.locations import data_dir
from engine.model.digits_cnn import DEMO_ARCH, load_meta
from engine.preflight import preflight
from engine.sources import scan_sources


def _hashes(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def _indices(folder: Path) -> list[tuple[str, int, int]]:
    """(split, class, index into load_digits) of every PNG, from its path."""
    return [(p.parent.parent.name, int(p.parent.name), int(p.stem)) for p in folder.rglob("*.png")]


@pytest.mark.parametrize("scenario", ["inductive", "transductive"])
def test_same_seed_same_files_other_seed_other_files(tmp_path, scenario):
    a = ensure_demo(scenario, per_class=3, seed=1, root=tmp_path / "a")
    b = ensure_demo(scenario, per_class=3, seed=1, root=tmp_path / "b")
    c = ensure_demo(scenario, per_class=3, seed=2, root=tmp_path / "c")
    assert len(_hashes(a.parent)) > 250
    assert _hashes(a.parent) == _hashes(b.parent)
    assert _hashes(a.parent / "images/train") != _hashes(c.parent / "images/train")


@pytest.mark.parametrize("scenario, digits", [("inductive", [5, 6, 7, 8, 9]), ("transductive", [0, 1, 2, 3, 4])])
def test_class_folders_counts_and_no_image_the_source_trained_on(tmp_path, scenario, digits):
    images = ensure_demo(scenario, per_class=4, seed=0, root=tmp_path).parent / "images"
    _, labels = load_digits_uint8()
    seen = set(load_meta()["train_indices"])
    found = _indices(images)
    for split in ("train", "val"):
        assert sorted(int(p.name) for p in (images / split).iterdir()) == digits
    for digit in digits:
        train = [i for s, d, i in found if s == "train" and d == digit]
        val = [i for s, d, i in found if s == "val" and d == digit]
        available = [i for i in np.flatnonzero(labels == digit) if int(i) not in seen]
        assert len(train) == 4
        assert sorted(train + val) == sorted(int(i) for i in available)
    assert all(labels[i] == d for _, d, i in found)
    assert not seen & {i for _, _, i in found}


def test_transductive_images_are_a_shifted_domain(tmp_path):
    """Inverted: the paper (border) is light, where the source's images have a black background."""
    from PIL import Image

    images = ensure_demo("transductive", per_class=2, root=tmp_path).parent / "images"
    pixels = np.stack([np.asarray(Image.open(p)) for p in sorted(images.rglob("*.png"))[:50]])
    assert pixels.shape[1:] == (32, 32)
    assert pixels[:, 0, :].mean() > 150
    assert pixels[:, 0, :].std() > 5  # noisy


def test_project_file_is_ready_to_run():
    path = ensure_demo()
    assert path.parent == demo_folder() and path.is_relative_to(data_dir())
    project = projects.load(path)
    assert (project.model.arch, project.model.weights) == (DEMO_ARCH, "pretrained")
    assert (project.data.train, project.data.val) == ("images/train", "images/val")
    assert (project.data.image_size, project.data.augment) == (32, "none")
    assert (project.freeze.preset, project.freeze.last_blocks) == ("last_blocks", 1)  # the bench's winner
    assert project.head.kind == "cosine"
    assert preflight(project, scan_sources(project)) == []  # its data folders exist, its weights ship


def test_existing_files_are_reused_and_incomplete_ones_rebuilt(tmp_path):
    path = ensure_demo("inductive", per_class=2, root=tmp_path)
    edited = path.read_text(encoding="utf-8").replace("epochs = 30", "epochs = 7")
    path.write_text(edited, encoding="utf-8")
    images = path.parent / "images"
    first = sorted(images.rglob("*.png"))
    marker = first[0].stat().st_mtime_ns
    before = _hashes(images)

    assert ensure_demo("inductive", per_class=2, root=tmp_path) == path
    assert first[0].stat().st_mtime_ns == marker  # not rewritten
    assert path.read_text(encoding="utf-8") == edited  # the person's edit is kept

    first[1].unlink()
    ensure_demo("inductive", per_class=2, root=tmp_path)
    assert _hashes(images) == before


def test_bad_arguments_say_what_to_choose(tmp_path):
    with pytest.raises(DataError, match="inductive, transductive"):
        ensure_demo("sideways", root=tmp_path)
    with pytest.raises(DataError, match="labelled images per class"):
        ensure_demo("transductive", per_class=500, root=tmp_path)
    assert not any(tmp_path.iterdir())


SPLITS = ("train", "val", "test")


def test_scenarios_name_both_settings():
    assert set(SCENARIOS) == {"inductive", "transductive"}


def test_validation_can_be_capped_per_class_and_the_rest_is_a_test_split(tmp_path):
    images = ensure_demo("transductive", per_class=5, seed=0, root=tmp_path, val_per_class=7).parent / "images"
    uncapped = ensure_demo("transductive", per_class=5, seed=0, root=tmp_path / "all").parent / "images"
    assert not (uncapped / "test").exists()
    for digit in range(5):
        names = {split: {p.name for p in (images / split / str(digit)).glob("*.png")} for split in SPLITS}
        assert (len(names["train"]), len(names["val"])) == (5, 7)
        assert len(names["test"]) > 20
        assert not names["train"] & names["val"] and not names["val"] & names["test"]
        assert not names["train"] & names["test"]
        everything = {p.name for split in ("train", "val") for p in (uncapped / split / str(digit)).glob("*.png")}
        assert names["train"] | names["val"] | names["test"] == everything


def test_a_short_feature_extraction_run_beats_chance_by_far(tmp_path):
    from engine.train.loop import fit

    path = ensure_demo("inductive", per_class=10, seed=0, root=tmp_path, val_per_class=20)
    project = projects.apply_overrides(projects.load(path),
                                       ["train.device=cpu", "freeze.preset=feature_extraction", "train.lr=0.05",
                                        "train.epochs=10"])
    result = fit(project, run_dir=str(tmp_path / "run"))
    assert result.summary["frozen_verified"] is True
    assert result.summary["trainable_params"] < result.summary["total_params"] / 10
    assert result.summary["final_val_accuracy"] > 0.6  # chance is 0.2


def test_the_transductive_demo_with_the_source_head_kept(tmp_path):
    """Same task: the source's own classifier, kept, already reads the scans (a new head starts at chance)."""
    from engine.train.loop import fit

    path = ensure_demo("transductive", per_class=5, seed=0, root=tmp_path, val_per_class=20)
    project = projects.apply_overrides(projects.load(path), ["train.device=cpu", "head.kind=keep",
                                                             "freeze.preset=feature_extraction", "train.epochs=1",
                                                             "train.lr=0.001"])
    result = fit(project, run_dir=str(tmp_path / "run"))
    assert result.summary["final_val_accuracy"] > 0.95
    assert result.summary["frozen_verified"] is True
