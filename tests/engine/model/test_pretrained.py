"""Pretrained weights onto an offline machine: imported from a downloaded file, or downloaded when asked, from a
real HTTP server on 127.0.0.1 (torchvision's URL injected: its file name, whose hex digits are the start of the
file's SHA-256, is made here for a file of our own). A wrong hash, a cancel or a broken download keeps nothing."""

import socket
import threading

import pytest
import torch
from torchvision.models import mobilenet_v3_small

from engine import cli
from engine.errors import ThawError, WeightsError
from engine.io.download import Cancelled
from engine.model import pretrained, zoo
from tests.published import publish, serve_published, weights_file

ARCH = "squeezenet1_1"


def cache_files():
    folder = zoo.checkpoints_dir()
    return sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []


def test_download_with_progress_then_it_loads(weights_server, monkeypatch):
    base, served = weights_server
    name = serve_published(monkeypatch, ARCH, base, served)
    assert "python main.py fetch-weights squeezenet1_1" in zoo.weights_problem(ARCH, "pretrained")
    events = []
    target = pretrained.fetch(ARCH, progress=events.append)
    assert target == zoo.pretrained_path(ARCH) and target.name == name and cache_files() == [name]
    size = (served / name).stat().st_size
    assert len(events) >= 3 and [e.done for e in events] == sorted(e.done for e in events)
    assert events[-1].done == events[-1].total == size and events[-1].eta_seconds == 0
    assert all(e.bytes_per_second > 0 and e.total == size for e in events)
    assert zoo.weights_problem(ARCH, "pretrained") is None and zoo.arch_info(ARCH).weights_cached
    model = zoo.build_model(ARCH, "pretrained")
    assert torch.equal(model.features[0].weight, torch.load(target, weights_only=True)["features.0.weight"])


def test_a_cancel_keeps_nothing(weights_server, monkeypatch):
    base, served = weights_server
    serve_published(monkeypatch, ARCH, base, served)
    stop = threading.Event()
    with pytest.raises(Cancelled, match="nothing was kept"):
        pretrained.fetch(ARCH, progress=lambda p: stop.set(), stop=stop)
    assert cache_files() == []  # neither the file nor its temporary part


def test_a_wrong_hash_keeps_nothing(weights_server, monkeypatch):
    base, served = weights_server
    path, digest = weights_file(served)
    wrong = "0" * 8 if not digest.startswith("0" * 8) else "1" * 8
    path.rename(served / f"{ARCH}-{wrong}.pth")
    publish(monkeypatch, ARCH, base, f"{ARCH}-{wrong}.pth")
    with pytest.raises(ThawError, match=f"has SHA-256 {digest[:8]}..., not {wrong}..."):
        pretrained.fetch(ARCH)
    assert cache_files() == []


def test_a_file_that_does_not_load_is_not_kept(weights_server, monkeypatch):
    base, served = weights_server
    serve_published(monkeypatch, ARCH, base, served, mobilenet_v3_small())
    with pytest.raises(WeightsError, match="does not fit this architecture"):
        pretrained.fetch(ARCH)
    assert cache_files() == []


def test_offline_and_missing_files_are_said(weights_server, monkeypatch):
    base, _ = weights_server
    publish(monkeypatch, ARCH, base, f"{ARCH}-12345678.pth")
    with pytest.raises(ThawError, match="answered 404"):
        pretrained.fetch(ARCH)
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(ThawError, match="is this machine offline"):
        pretrained.fetch(ARCH, source=f"http://127.0.0.1:{port}/{ARCH}-12345678.pth")
    assert cache_files() == []


def test_import_checks_the_hash_in_the_name(tmp_path, monkeypatch):
    path, digest = weights_file(tmp_path, name="resnet18-f37072fd.pth")  # named right, but not that file
    with pytest.raises(WeightsError, match=f"SHA-256 starts with {digest[:8]}, resnet18-f37072fd.pth's with f37072fd"):
        pretrained.import_file(path, "resnet18")
    with pytest.raises(WeightsError, match="is no torchvision architecture's pretrained file"):
        pretrained.import_file(path)
    assert cache_files() == []
    publish(monkeypatch, ARCH, "https://example.org", f"{ARCH}-{digest[:8]}.pth")
    with pytest.raises(WeightsError, match=rf"it is squeezenet1_1's \({ARCH}-{digest[:8]}.pth\)"):
        pretrained.import_file(path, "resnet18")
    arch, target = pretrained.import_file(path)  # the hash says whose it is
    assert arch == ARCH and target.name == f"{ARCH}-{digest[:8]}.pth" and target.read_bytes() == path.read_bytes()
    assert pretrained.import_file(path, ARCH) == (ARCH, target) and cache_files() == [target.name]


def test_the_command_line(weights_server, monkeypatch, capsys):
    base, served = weights_server
    path, digest = weights_file(served)
    name = f"{ARCH}-{digest[:8]}.pth"
    publish(monkeypatch, ARCH, "https://download.example.org/models", name)
    assert cli.main(["fetch-weights", ARCH, "--from", f"{base}/nothing-here.pth"]) == 2
    assert "answered 404" in capsys.readouterr().err
    assert cli.main(["fetch-weights", ARCH, "--from", f"{base}/download.pth"]) == 0
    out = capsys.readouterr().out
    assert f"downloading {base}/download.pth" in out and f"checked and kept: {zoo.pretrained_path(ARCH)}" in out
    assert "100%" in out and "MB/s" in out
    assert cli.main(["fetch-weights", ARCH]) == 0
    assert "already on this machine" in capsys.readouterr().out
    zoo.pretrained_path(ARCH).unlink()
    assert cli.main(["fetch-weights", "--file", str(path)]) == 0
    assert f"squeezenet1_1's pretrained weights are in {zoo.pretrained_path(ARCH)}" in capsys.readouterr().out
