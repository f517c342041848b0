"""No code runs from a file: a pickle that would write a marker when unpickled is refused on every path the
app reads weights or state from (weights file, checkpoint, --resume), and the marker never appears."""

from __future__ import annotations

import pickle
import re
import threading
from pathlib import Path

import pytest
import torch

from engine import events as ev
from engine import project as proj
from engine.cli import main
from engine.errors import CheckpointError, ProjectError, WeightsError
from engine.runs import checkpoint
from engine.runs import folder as run

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.filterwarnings("ignore:Detected pickle protocol")  # torch notes the plain pickle


class _Plant:
    """Unpickling this runs `exec`, which writes the marker file: what a malicious weights file does."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return exec, (f"open({str(self.marker)!r}, 'w').write('code ran')",)


def _payloads(folder: Path, marker: Path) -> dict[str, Path]:
    """The same trap as a plain pickle and as torch.save's zip format, under each name the app reads."""
    plant = {"fc.weight": _Plant(marker)}
    raw = pickle.dumps(plant)
    out = {}
    for name in ("plain.pth", "plain.pt", "plain.safetensors"):
        (folder / name).write_bytes(raw)
        out[name] = folder / name
    torch.save(plant, folder / "zipped.pth")
    out["zipped.pth"] = folder / "zipped.pth"
    return out


def test_the_trap_is_live(tmp_path):
    """Control: unpickling the payload unguarded does write the marker, so the tests below can fail."""
    marker = tmp_path / "marker"
    payloads = _payloads(tmp_path, marker)
    pickle.loads(payloads["plain.pth"].read_bytes())
    assert marker.read_text() == "code ran"
    marker.unlink()
    torch.load(payloads["zipped.pth"], weights_only=False)
    assert marker.exists()


def test_weights_files_are_refused(tmp_path, project_factory):
    marker = tmp_path / "marker"
    for name, path in _payloads(tmp_path, marker).items():
        p = project_factory(**{"model__weights": str(path)})
        with pytest.raises(ProjectError, match=re.escape(str(path))) as err:  # found before anything starts
            run.train(p, tmp_path / f"out-{name}")
        assert err.value.key == "model.weights"
        if not name.endswith(".safetensors"):
            assert "can run code" in str(err.value), name
        assert not marker.exists(), name
        assert not (tmp_path / f"out-{name}").exists()


def test_a_planted_pretrained_file_in_the_torch_hub_cache_is_refused(tmp_path, project_factory):
    """"pretrained" reads <TORCH_HOME>/hub/checkpoints/<file>: a pickle put there under that name is refused."""
    from engine.model import zoo

    marker = tmp_path / "marker"
    cached = zoo.arch_info("resnet18").weights_path
    cached.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"fc.weight": _Plant(marker)}, cached)
    p = project_factory(model__arch="resnet18", model__weights="pretrained")
    with pytest.raises(WeightsError, match="can run code"):
        run.train(p, tmp_path / "out")
    assert not marker.exists()


def _stopped_run(project_factory, tmp_path: Path) -> tuple[Path, object]:
    p = project_factory(train__epochs=2)
    stop = threading.Event()
    run_dir, _ = run.train(p, tmp_path / "run", stop=stop, callbacks=[
        lambda e: stop.set() if isinstance(e, ev.EpochEnded) else None])
    return run_dir, p


def test_checkpoint_and_resume_refuse_a_pickle(tmp_path, capsys, project_factory):
    marker = tmp_path / "marker"
    run_dir, p = _stopped_run(project_factory, tmp_path)
    for name, path in _payloads(tmp_path, marker).items():
        (run_dir / checkpoint.FILENAME).write_bytes(path.read_bytes())
        with pytest.raises(CheckpointError, match="damaged or not a Thaw checkpoint"):
            checkpoint.read(run_dir)
        with pytest.raises(CheckpointError, match="nothing in it was run"):
            run.resume(p, run_dir)
        project_file = tmp_path / "p.thaw.toml"
        proj.save(p, project_file)
        assert main(["train", str(project_file), "--resume", str(run_dir)]) == 2
        err = capsys.readouterr().err
        assert "damaged or not a Thaw checkpoint" in err and "Traceback" not in err, name
        assert not marker.exists(), name


def test_no_unsafe_load_in_the_source():
    """Every torch.load in engine/ and gui/ passes weights_only=True; nothing calls pickle's loaders."""
    for path in [*ROOT.glob("engine/**/*.py"), *ROOT.glob("gui/**/*.py"), ROOT / "main.py"]:
        text = path.read_text(encoding="utf-8")
        for call in re.finditer(r"torch\.load\(([^)]*)\)", text):
            assert "weights_only=True" in call.group(1), f"{path}: {call.group(0)}"
        assert not re.search(r"pickle\.loads?\(|\bUnpickler\(", text), path
