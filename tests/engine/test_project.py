"""The project file: round trip, defaults, and a message naming the key for each kind of bad value."""

from pathlib import Path

import pytest

from engine import project as proj
from engine.errors import ProjectError


def write(tmp_path: Path, text: str) -> Path:
    (tmp_path / "data").mkdir(exist_ok=True)
    p = tmp_path / "p.thaw.toml"
    p.write_text(text)
    return p


def test_round_trip(tmp_path):
    p = write(tmp_path, 'name = "x"\n[data]\ntrain = "data"\n[head]\nkind = "mlp"\nhidden = [64, 32]\n')
    first = proj.load(p)
    assert first.head.hidden == [64, 32]
    assert first.resolve(first.data.train) == tmp_path / "data"
    proj.save(first, tmp_path / "again.thaw.toml")
    second = proj.load(tmp_path / "again.thaw.toml")
    assert second == first
    assert proj.dumps(second) == proj.dumps(first)


def test_save_elsewhere_keeps_relative_paths_valid(tmp_path):
    p = write(tmp_path, '[data]\ntrain = "data"\ntest = "held/out"\n')
    other = tmp_path / "sub" / "deeper"
    other.mkdir(parents=True)
    saved = proj.save(proj.load(p), other / "moved.thaw.toml")
    again = proj.load(other / "moved.thaw.toml")
    assert again.resolve(again.data.train).resolve() == (tmp_path / "data").resolve()
    assert again.resolve(again.data.test).resolve() == (tmp_path / "held" / "out").resolve()
    assert saved.data.train == again.data.train and saved.data.test == again.data.test


def test_a_file_without_the_test_keys_loads_as_before(tmp_path):
    """Files written before the test split: no test folder, no test share."""
    p = proj.load(write(tmp_path, '[data]\ntrain = "data"\nval_fraction = 0.3\n'))
    assert (p.data.test, p.data.test_fraction, p.data.val_fraction) == ("", 0.0, 0.3)
    p.set("data.test_fraction", 0.2)
    assert proj.loads(proj.dumps(p)).data.test_fraction == 0.2


@pytest.mark.parametrize(
    "text, key",
    [
        ("[train]\nlr = -1.0\n", "train.lr"),
        ("[train]\nepochs = 0\n", "train.epochs"),
        ('[train]\nepochs = "ten"\n', "train.epochs"),
        ("[train]\nepochs = 2.5\n", "train.epochs"),
        ("[train]\namp = 1\n", "train.amp"),
        ('[train]\noptimizer = "adam"\n', "train.optimizer"),
        ("[train]\nbogus = 1\n", "train.bogus"),
        ("[data]\nval_fraction = 1.0\n", "data.val_fraction"),
        ("[data]\ntest_fraction = 1.0\n", "data.test_fraction"),
        ("[data]\ntest_fraction = -0.1\n", "data.test_fraction"),
        ('[data]\ntest = 3\n', "data.test"),
        ('[head]\nhidden = [0]\n', "head.hidden[0]"),
        ('[head]\nhidden = "256"\n', "head.hidden"),
        ("[weird]\nx = 1\n", "weird"),
        ("train = 3\n", "train"),
        ('[freeze]\npreset = "most"\n', "freeze.preset"),
        ("[head]\ndropout = nan\n", "head.dropout"),
    ],
)
def test_bad_values_name_the_key(tmp_path, text, key):
    if text.startswith("[data]"):
        p = write(tmp_path, text)
    elif text.startswith("["):
        p = write(tmp_path, '[data]\ntrain = "data"\n' + text)
    else:  # a top-level key goes before the tables
        p = write(tmp_path, text + '[data]\ntrain = "data"\n')
    with pytest.raises(ProjectError) as info:
        proj.load(p)
    assert info.value.key == key
    assert key in str(info.value)


def test_invalid_toml(tmp_path):
    p = write(tmp_path, "name = \n")
    with pytest.raises(ProjectError, match="not valid TOML"):
        proj.load(p)


def test_overrides():
    base = proj.Project()
    out = proj.apply_overrides(base, ["train.epochs=3", "train.optimizer=sgd", "head.hidden=[8, 4]"])
    assert (out.train.epochs, out.train.optimizer, out.head.hidden) == (3, "sgd", [8, 4])
    assert base.train.epochs == 10
    with pytest.raises(ProjectError, match="train.epochs"):
        proj.apply_overrides(base, ["train.epochs=-3"])
    with pytest.raises(ProjectError):
        proj.apply_overrides(base, ["no-equals-sign"])


def test_a_schedules_stages_round_trip_and_their_rules_name_the_stage(tmp_path):
    p = proj.Project()
    stages = [{"start": 0, "backbone_lr_mult": 0.75, "layer_decay": 0.75}, {"start": 2, "unfreeze": 1},
              {"start": 5, "frozen": [], "lr_mult": 0.5, "growth": 2.0}]
    p.set("freeze.stages", stages)
    text = proj.dumps(p)
    assert "    {start = 2, unfreeze = 1},\n" in text
    assert proj.loads(text).freeze.stages == stages
    assert proj.loads("[[freeze.stages]]\nstart = 3\nunfreeze = 2\n").freeze.stages == [{"start": 3, "unfreeze": 2}]
    for bad, key, words in (
            ([{"start": 2, "unfreeze": 1, "frozen": []}], "freeze.stages[0].unfreeze", "not both"),
            ([{"start": 2}, {"start": 2}], "freeze.stages[1].start", "after the stage before"),
            ([{"unfreeze": 1}], "freeze.stages[0].start", "missing"),
            ([{"start": 0, "unfreeze": 1}], "freeze.stages[0].start", "rates only"),
            ([{"start": 1, "layer_decay": 2.0}], "freeze.stages[0].layer_decay", "<= 1.0"),
            ([{"start": 1, "frozen": "stem"}], "freeze.stages[0].frozen", "list of strings"),
            ([{"start": 1, "speed": 2}], "freeze.stages[0].speed", "unknown key"),
            ([3], "freeze.stages[0]", "table")):
        with pytest.raises(ProjectError, match=words) as caught:
            p.set("freeze.stages", bad)
        assert caught.value.key == key
    assert p.freeze.stages == stages  # a refused value leaves the old one
