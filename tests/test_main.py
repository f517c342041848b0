"""The command line: help for every command, headless commands reachable without Qt."""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def run(*args, timeout=300):
    return subprocess.run([sys.executable, "main.py", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout)


def test_help_lists_commands():
    out = run("--help")
    assert out.returncode == 0
    for word in ("train", "layers", "models"):
        assert word in out.stdout


@pytest.mark.parametrize("command", ["train", "layers", "models"])
def test_each_command_has_help(command):
    out = run(command, "--help")
    assert out.returncode == 0, out.stderr
    assert "usage:" in out.stdout


def test_a_closed_pipe_is_not_a_traceback():
    proc = subprocess.Popen([sys.executable, "main.py", "models"], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    proc.stdout.close()  # the reader leaves at once, like `| head -0`
    err = proc.stderr.read()
    assert proc.wait(timeout=300) == 1
    assert "Traceback" not in err and "BrokenPipeError" not in err
