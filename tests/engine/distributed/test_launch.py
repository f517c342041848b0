"""The launcher's side of a distributed run: what it checks before starting, the commands it builds, and the
one failure it tells the person about; a worker's environment and how it words its end."""

from __future__ import annotations

import json

import pytest
import torch
from torch.distributed.elastic.multiprocessing.errors import ProcessFailure

from engine.cli import main
from engine.distributed import launch, worker
from engine.distributed.launch import Launch, first_failure, train_command
from engine.distributed.world import RankFailed, World, timeout_seconds
from engine.errors import DataError, ThawError
from tests.engine.test_cli import project_file


@pytest.mark.parametrize("how, says", [
    (Launch(0), "at least 1"),
    (Launch(2, nnodes=2, node_rank=2, rdzv_endpoint="h:29400"), "--node-rank 2 must be from 0 to 1"),
    (Launch(2, nnodes=2), "--rdzv-endpoint HOST:PORT"),
    (Launch(2, nnodes=2, rdzv_endpoint="10.0.0.1"), "--rdzv-endpoint HOST:PORT"),
])
def test_a_launch_torchrun_could_not_run_is_refused(how, says):
    with pytest.raises(ThawError, match=says):
        how.check()


def test_commands_for_one_machine_and_for_each_of_several(tmp_path):
    one = Launch(4)
    assert one.torchrun_args() == ["--standalone", "--nnodes", "1", "--nproc-per-node", "4"]
    assert train_command("p.thaw.toml", one, out="RUN", python="python")[2:] == [
        "train", "p.thaw.toml", "--out", "RUN", "--nproc-per-node", "4"]
    several = Launch(2, nnodes=3, rdzv_endpoint="10.0.0.1:29400")
    several.check()
    assert train_command("p.thaw.toml", several, node_rank=2, python="python")[2:] == [
        "train", "p.thaw.toml", "--nproc-per-node", "2", "--nnodes", "3", "--node-rank", "2",
        "--rdzv-endpoint", "10.0.0.1:29400"]
    assert several.torchrun_args()[:6] == ["--nnodes", "3", "--node-rank", "0", "--rdzv-backend", "static"]
    assert launch.worker_argv("p.thaw.toml", None, "run", ["train.epochs=3"])[2:] == [
        "--resume", str((tmp_path.cwd() / "run").absolute()), "--set", "train.epochs=3"]


def _failure(tmp_path, monkeypatch, rank: int, exc: BaseException | None, exitcode: int = 1) -> ProcessFailure:
    """A failed worker as torchrun reports it, with the error file `worker.record` wrote (none for `exc` None)."""
    path = tmp_path / f"error-{rank}.json"
    if exc is not None:
        monkeypatch.setenv(worker.ERROR_FILE, str(path))
        monkeypatch.setenv(worker.LAUNCHED, "1")
        worker.record(World(rank=rank, size=3), *worker.describe(exc))
    return ProcessFailure(local_rank=rank, pid=100 + rank, exitcode=exitcode, error_file=str(path))


def test_the_first_cause_is_told_not_its_consequences(tmp_path, monkeypatch):
    lost = RuntimeError("[../third_party/gloo/gloo/transport/tcp/pair.cc:545] Read error: Connection reset by peer")
    consequence = _failure(tmp_path, monkeypatch, 0, lost)
    cause = _failure(tmp_path, monkeypatch, 2, torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2 GiB"))
    told = _failure(tmp_path, monkeypatch, 1, RankFailed(0, "no room"))
    rank, message, status = first_failure({0: consequence, 1: told, 2: cause})
    assert rank == 2 and status == 1
    assert message.startswith("rank 2 of 3: out of memory (CUDA out of memory.") and "more processes" in message
    assert json.loads((tmp_path / "error-0.json").read_text())["thaw"]["cause"] is False


def test_a_worker_ended_by_a_signal_is_named(tmp_path, monkeypatch):
    lost = _failure(tmp_path, monkeypatch, 0, RuntimeError("/gloo/ Connection closed by peer"))
    killed = _failure(tmp_path, monkeypatch, 1, None, exitcode=-9)
    assert first_failure({0: lost, 1: killed}) == (1, "rank 1 was ended by SIGKILL (process 101)", 1)


def test_how_a_rank_words_its_end():
    assert worker.describe(DataError("no images")) == ("no images", 2, True)
    assert worker.describe(KeyboardInterrupt()) == ("aborted without saving", 130, True)
    assert worker.describe(ValueError("bad")) == ("training failed: ValueError: bad", 1, True)
    assert worker.describe(RankFailed(0, "x"))[1:] == (2, False)


def test_a_bare_torchrun_worker_prints_its_cause_once(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv(worker.LAUNCHED, raising=False)
    monkeypatch.delenv(worker.ERROR_FILE, raising=False)
    worker.record(World(rank=1, size=2), "out of memory", 1, True)
    worker.record(World(rank=0, size=2), "lost the other processes", 1, False)
    assert capsys.readouterr().err == "error: rank 1 of 2: out of memory\n"


def test_the_world_is_read_from_torchruns_environment(monkeypatch):
    assert World.from_env({}) == World()
    w = World.from_env({"WORLD_SIZE": "4", "RANK": "3", "LOCAL_RANK": "1"})
    assert (w.rank, w.local_rank, w.size, w.distributed, w.is_main) == (3, 1, 4, True, False)
    for bad in ({"WORLD_SIZE": "two"}, {"WORLD_SIZE": "2", "RANK": "2"}):
        with pytest.raises(ThawError):
            World.from_env(bad)
    assert timeout_seconds({"THAW_DIST_TIMEOUT": "30"}) == 30.0
    with pytest.raises(ThawError, match="THAW_DIST_TIMEOUT"):
        timeout_seconds({"THAW_DIST_TIMEOUT": "soon"})
    with pytest.raises(ThawError, match="MPS cannot train in several processes"):
        World.backend_for(torch.device("mps"))


def test_the_collectives_of_one_process_return_their_input():
    w = World()
    rows = torch.arange(6.0).reshape(3, 2)
    assert w.any(True) and not w.all(False) and w.batch(0.25, 3, 8) == (0.25, 3, 8)
    assert w.table(rows) is rows and w.cat(rows) is rows and w.share("x") == "x" and w.gather(1) == [1]
    assert w.main_does(lambda: 5) == 5


@pytest.mark.parametrize("flags, says", [
    (["--nproc-per-node", "3"], "8 images per step do not divide among 3 processes; use a multiple of 3 (6 or 9)"),
    (["--nproc-per-node", "2", "--nnodes", "2"], "--rdzv-endpoint HOST:PORT"),
    (["--nproc-per-node", "2", "--set", "train.device=mps"], "train.device"),
])
def test_the_launcher_refuses_bad_input_before_starting_anything(tmp_path, capsys, flags, says):
    path = project_file(tmp_path)
    assert main(["train", str(path), "--out", str(tmp_path / "run"), *flags]) == 2
    assert says in capsys.readouterr().err
    assert not (tmp_path / "run").exists()
