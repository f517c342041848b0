"""Project files as people really save them: a byte-order mark, a value an override mends, lists nested too
deep (in the file and on the command line), and file modes kept when a shared file is saved again."""

from __future__ import annotations

import os
import stat

import pytest

from engine import cli
from engine import project as proj
from engine.errors import ProjectError


def test_a_file_saved_with_a_byte_order_mark_loads(tmp_path):
    """Windows Notepad saves UTF-8 with a BOM; before, "not valid TOML ... at line 1, column 1"."""
    path = tmp_path / "p.thaw.toml"
    path.write_bytes(b"\xef\xbb\xbf" + proj.dumps(proj.Project(name="bom")).encode())
    assert proj.load(path).name == "bom"


def test_an_override_mends_a_value_the_file_has_wrong(tmp_path):
    """Before, the file's values were checked before the overrides applied: `epochs = 0` could not be mended."""
    path = tmp_path / "p.thaw.toml"
    path.write_text('name = "x"\n[train]\nepochs = 0\nlr = 0.5\n')
    with pytest.raises(ProjectError, match="train.epochs"):
        proj.load(path)
    mended = proj.load(path, ["train.epochs=3"])
    assert (mended.train.epochs, mended.train.lr) == (3, 0.5)
    with pytest.raises(ProjectError, match="train.epochs: must be >= 1"):
        proj.load(path, ["train.epochs=-1"])


@pytest.mark.parametrize("depth", [300, 5000])
def test_lists_nested_too_deep_name_the_key(tmp_path, depth, capsys):
    """Before: a RecursionError traceback (5000 deep), or a message printing all 300 levels."""
    nested = "[" * depth + "]" * depth
    path = tmp_path / "p.thaw.toml"
    path.write_text(f'name = "x"\n[head]\nkind = "mlp"\nhidden = {nested}\n')
    with pytest.raises(ProjectError) as info:
        proj.load(path)
    assert info.value.key.startswith("head.hidden") and len(str(info.value)) < 200
    good = tmp_path / "good.thaw.toml"
    good.write_text('name = "x"\n')
    assert cli.main(["train", str(good), "--set", f"head.hidden={nested}"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: head.hidden") and "Traceback" not in err and len(err) < 200


def test_saving_again_keeps_the_files_mode_and_new_files_follow_the_umask(tmp_path):
    """Before, every file was written 0600 (mkstemp's mode): a shared 0664 project file became private."""
    shared = tmp_path / "shared.thaw.toml"
    shared.write_text(proj.dumps(proj.Project()))
    os.chmod(shared, 0o664)
    proj.save(proj.Project(name="again"), shared)
    assert stat.S_IMODE(shared.stat().st_mode) == 0o664 and proj.load(shared).name == "again"
    before = os.umask(0o027)
    try:
        proj.save(proj.Project(), tmp_path / "new.thaw.toml")
    finally:
        os.umask(before)
    assert stat.S_IMODE((tmp_path / "new.thaw.toml").stat().st_mode) == 0o640
