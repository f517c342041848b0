"""`python main.py advise` and `python main.py study`: what they print and write, and their exit status."""

from __future__ import annotations

import json

from engine import project as proj
from engine.cli import main


def project_file(project_factory, tmp_path, **kw):
    proj.save(project_factory(model__weights="pretrained", train__epochs=1, **kw), tmp_path / "p.thaw.toml")
    return tmp_path / "p.thaw.toml"


def test_advise_prints_the_depths_the_evidence_and_the_settings(project_factory, tmp_path, capsys):
    path = project_file(project_factory, tmp_path)
    assert main(["advise", str(path)]) == 0
    out = capsys.readouterr().out
    assert "head's input (block3)" in out and "after stem" in out and "\u2588" in out
    assert "thuml/LogME#28" in out and "[freeze]\npreset = " in out and "[train]\nlr = " in out


def test_advise_json_has_the_settings_scores_and_probes(project_factory, tmp_path, capsys):
    path = project_file(project_factory, tmp_path)
    assert main(["advise", str(path), "--json"]) == 0
    got = json.loads(capsys.readouterr().out)
    assert set(got["recommended"]) == {"freeze", "train", "label"}
    assert got["recommended"]["freeze"]["preset"] in ("feature_extraction", "last_blocks", "full")
    depths = got["measured"]["depths"]
    assert len(depths) == 4 and all({"logme", "h_score", "probe", "after", "trained"} <= set(d) for d in depths)


def test_study_writes_the_folder_and_prints_the_table(project_factory, tmp_path, capsys):
    path = project_file(project_factory, tmp_path)
    out = tmp_path / "study"
    assert main(["study", str(path), "--recipes", "scratch,fe", "--seeds", "1", "--per-class", "3", "--out", str(out)]) == 0
    printed = capsys.readouterr()
    assert "| from scratch |" in printed.out and f"study saved in {out}" in printed.out
    lines = printed.err.splitlines()  # one line per run (the advisor's pick is run too, if not among them)
    assert lines[0].startswith("[0/") and lines[1].endswith("3 per class, seed 0: feature extraction")
    state = json.loads((out / "study.json").read_text())
    assert state["settings"]["recipes"] == ["scratch", "fe"] and state["settings"]["per_class"] == [3]


def test_bad_study_options_are_refused_before_anything_is_written(project_factory, tmp_path, capsys):
    path = project_file(project_factory, tmp_path)
    for args in (["--recipes", "fe,last9"], ["--per-class", "0"], ["--per-class", "5,5"], ["--seeds", "0"]):
        assert main(["study", str(path), *args, "--out", str(tmp_path / "s")]) == 2
        assert "error: " in capsys.readouterr().err
    assert not (tmp_path / "s").exists()


def test_advise_on_a_missing_project_is_a_clear_error(tmp_path, capsys):
    assert main(["advise", str(tmp_path / "nope.thaw.toml")]) == 2
    assert "does not exist" in capsys.readouterr().err
