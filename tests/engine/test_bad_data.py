"""Bad data and bad settings: a folder with ~1% unusable files trains to the end, lists each one with a reason,
and is never written to; no --set override makes the command line fail with a traceback."""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import struct
import zlib
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from PIL import Image

from engine import project as proj
from engine.cli import main
from tests.imagesets import make_image_folder


def _png_claiming(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims `width` x `height` pixels: a decompression bomb, cheaply."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


def _truncated_jpeg() -> bytes:
    buf = io.BytesIO()
    Image.effect_noise((48, 48), 40).convert("RGB").save(buf, "JPEG")
    return buf.getvalue()[: len(buf.getvalue()) // 2]  # header whole: it passes the scan, fails to decode


BAD = {  # file -> words its reason must contain
    "circle/empty.png": "empty file",
    "circle/noise.jpg": "not an image",
    "square/cut.jpg": "failed to decode",
    "square/readme.txt": "not an image file",
    "triangle/fake.png": "not an image",
    "triangle/bomb.png": "too large",
    "triangle/large.png": "too large",
}


def _write_bad_files(train: Path) -> None:
    (train / "circle/empty.png").write_bytes(b"")
    (train / "circle/noise.jpg").write_bytes(bytes(range(256)) * 8)
    (train / "square/cut.jpg").write_bytes(_truncated_jpeg())
    (train / "square/readme.txt").write_text("notes about the squares\n")
    (train / "triangle/fake.png").write_text("<html>not found</html>")
    (train / "triangle/bomb.png").write_bytes(_png_claiming(100_000, 100_000))  # over twice PIL's limit
    (train / "triangle/large.png").write_bytes(_png_claiming(10_000, 10_000))  # over the limit, under twice


def _snapshot(root: Path) -> dict[str, tuple]:
    return {str(p.relative_to(root)): (p.is_dir(), p.stat().st_mtime_ns, p.stat().st_size,
                                       None if p.is_dir() else hashlib.sha256(p.read_bytes()).hexdigest())
            for p in sorted(root.rglob("*"))} | {".": (True, root.stat().st_mtime_ns, 0, None)}


def test_one_percent_bad_files_train_to_the_end_and_are_reported(tmp_path, capsys, project_factory):
    train = make_image_folder(tmp_path / "train", per_class=200)  # 600 good images, 7 bad ones (~1%)
    _write_bad_files(train)
    p = project_factory(train__epochs=1, train__batch_size=64, data__val_fraction=0.1)
    path = tmp_path / "p.thaw.toml"
    proj.save(p, path)
    before = _snapshot(train)

    assert main(["train", str(path), "--out", str(tmp_path / "out")]) == 0
    out = capsys.readouterr().out
    assert f"skipped {len(BAD)} unusable file(s); listed in summary.json" in out
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["epochs_completed"] == 1
    reasons = {str(Path(s["path"]).relative_to(train.resolve())): s["reason"] for s in summary["skipped_files"]}
    assert set(reasons) == set(BAD)
    for name, words in BAD.items():
        assert words in reasons[name], (name, reasons[name])
    assert _snapshot(train) == before  # the data folder was only read


def _an_empty_class(tmp_path: Path, project_factory, good=("circle", "triangle")) -> Path:
    """train/ with `good` classes of 8 images and 'square' holding only unusable files; the project file."""
    train = make_image_folder(tmp_path / "train", per_class=8, classes=good)
    (train / "square").mkdir()
    (train / "square/empty.png").write_bytes(b"")
    (train / "square/readme.txt").write_text("the squares are still to come\n")
    path = tmp_path / "p.thaw.toml"
    proj.save(project_factory(train__epochs=1), path)
    return path


def test_a_class_without_usable_images_is_left_out_and_the_rest_trains(tmp_path, capsys, project_factory):
    path = _an_empty_class(tmp_path, project_factory)
    assert main(["train", str(path), "--out", str(tmp_path / "out")]) == 0
    out = capsys.readouterr().out
    assert "training 2 classes" in out
    assert json.loads((tmp_path / "out" / "labels.json").read_text()) == ["circle", "triangle"]
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["classes"] == ["circle", "triangle"] and summary["epochs_completed"] == 1
    assert sorted(Path(s["path"]).name for s in summary["skipped_files"]) == ["empty.png", "readme.txt"]


def test_the_run_says_which_class_it_left_out(tmp_path, capsys, project_factory):
    path = _an_empty_class(tmp_path, project_factory)
    assert main(["train", str(path), "--out", str(tmp_path / "out")]) == 0
    assert "warning: class 'square' has no usable images" in capsys.readouterr().out


def test_one_class_beside_an_empty_one_is_refused(tmp_path, capsys, project_factory):
    path = _an_empty_class(tmp_path, project_factory, good=("circle",))
    assert main(["train", str(path), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "only one class with usable images ('circle')" in err and "'square' has none" in err
    assert not (tmp_path / "out").exists()


def _cli_outcome(tmp_path: Path, overrides: list[str], capsys) -> tuple[int, str]:
    args = ["train", str(tmp_path / "p.thaw.toml"), "--out", str(tmp_path / "out")]
    for o in overrides:
        args += ["--set", o]
    try:
        code = main(args)
    except SystemExit as exc:  # argparse's own usage error (exit 2)
        code = exc.code
    return code, capsys.readouterr().err


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(
    st.sampled_from(["train.epochs", "train.lr", "train.batch_size", "data.image_size", "model.arch",
                     "freeze.preset", "head.hidden", "data.train", "train.out_dir", "train.device", "nope.x",
                     "train", "=", ""]),
    st.one_of(st.text(max_size=12), st.sampled_from(["0", "-1", "1e400", "nan", "[1, 'a']", "{a=1}", '"x"',
                                                     "true", "[]", "99999999999999999999"]))), min_size=1, max_size=3))
@example(overrides=[("train", "x")])  # a whole section set to a value: was a TypeError
def test_set_overrides_never_give_a_traceback(tmp_path_factory, capsys, project_factory, overrides):
    tmp_path = tmp_path_factory.mktemp("set")
    (tmp_path / "p.thaw.toml").write_text(proj.dumps(project_factory(train__epochs=1)))
    assignments = [f"{k}={v}" if k not in ("=", "") else k + v for k, v in overrides]
    # these all either break a rule or point nowhere: the run must be refused with a message, untrained
    assignments.append("data.train=" + str(tmp_path / "missing"))
    code, err = _cli_outcome(tmp_path, assignments, capsys)
    assert code == 2
    assert "Traceback" not in err and err.startswith(("error: ", "usage: "))
    assert not (tmp_path / "out").exists()


def test_images_deleted_during_a_run_stop_it_with_a_message_and_it_resumes(tmp_path, project_factory):
    from engine import events as ev
    from engine.errors import DataError
    from engine.runs import checkpoint
    from engine.runs import folder as run

    p = project_factory(train__epochs=3)
    train = tmp_path / "train"
    shutil.copytree(train, tmp_path / "backup")

    def delete_after_epoch_1(e):
        if isinstance(e, ev.EpochEnded) and e.epoch == 1:
            shutil.rmtree(train)

    with pytest.raises(DataError, match="no training image could be read in epoch 2 .*resume once the images"):
        run.train(p, tmp_path / "run", callbacks=[delete_after_epoch_1])
    assert checkpoint.read(tmp_path / "run").epoch == 1
    shutil.copytree(tmp_path / "backup", train)
    _, result = run.resume(p, tmp_path / "run")
    assert result.summary["epochs_completed"] == 3
