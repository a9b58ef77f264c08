"""A quiet, informative CLI: no TensorFlow start-up noise, help that names the
tasks with an example, versions, every recipe value with its reason, progress."""

from __future__ import annotations

import json
import re
import os
import subprocess
import sys
from pathlib import Path

import pytest

from suite import cli
from tasks import TASKS

SUITE = [sys.executable, "-m", "suite.cli"]


def _run(*argv: str, **env: str) -> subprocess.CompletedProcess:
    environment = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"} | env
    return subprocess.run([*SUITE, *argv], capture_output=True, text=True, timeout=120, env=environment,
                          cwd=Path(__file__).resolve().parents[1])


def test_help_names_every_task_with_examples_and_no_startup_noise():
    out = _run("--help")
    assert out.returncode == 0
    for name in TASKS:
        assert name in out.stdout
    assert "examples:" in out.stdout and "suite train traffic_signs" in out.stdout
    # A fresh process: TensorFlow was imported (the help lists the registry) and said nothing.
    assert out.stderr == "", out.stderr


def test_command_help_and_version(capsys):
    """In this process (the same parser): each command's help names the tasks and gives an example."""
    for argv, expected in ((["train", "--help"], "example:\n  suite train"), (["recipe", "--help"], "suite recipe"),
                           (["--version"], "suite 0.")):
        with pytest.raises(SystemExit) as stop:
            cli.main(argv)
        assert stop.value.code == 0
        out = capsys.readouterr().out
        assert expected in out, (argv, out)
        if argv[0] != "--version":
            assert "tasks: " + ", ".join(TASKS) in out
    for library in ("tensorflow 2.", "keras 3.", "keras-cv", "tensorflow-text"):
        assert library in out


def test_real_errors_survive_the_filter():
    captured = ("WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n"
                "I0000 00:00:1.0 1 cudart_stub.cc:31] Could not find cuda drivers on your machine, GPU will not be used.\n"
                "E0000 00:00:1.0 1 cuda_platform.cc:52] failed call to cuInit: INTERNAL: CUDA error\n"
                "E0000 00:00:1.0 1 op_kernel.cc:1] OP_REQUIRES failed: out of memory\n")
    assert cli.not_noise(captured) == ["E0000 00:00:1.0 1 op_kernel.cc:1] OP_REQUIRES failed: out of memory"]


def test_recipe_shows_every_value_with_default_and_reason(capsys):
    assert cli.main(["recipe", "machinery_proximity", "--recipe", "smoke", "--set", "epochs=3", "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    rows = {r["key"]: r for r in shown["values"]}
    recipe = TASKS["machinery_proximity"].recipes["smoke"]
    assert set(rows) == set(recipe.__dataclass_fields__)
    assert rows["epochs"]["value"] == 3 and rows["epochs"]["default"] == TASKS["machinery_proximity"].recipes[
        "default"].epochs
    assert "swing radius" in rows["danger_m"]["reason"]  # Read from the comment beside the field.
    assert rows["seed"]["reason"].startswith("Seeds Python")  # Inherited from the shared TrainRecipe.
    assert cli.main(["recipe", "traffic_signs"]) == 0
    text = capsys.readouterr().out
    assert "learning_rate" in text and "AdamW" in text
    assert cli.main(["recipe", "traffic_signs", "--set", "epoch=3"]) == 2  # Checked as `suite train` checks.
    assert "Unknown recipe key 'epoch'" in capsys.readouterr().err


@pytest.mark.parametrize("name", list(TASKS))
def test_every_recipe_value_has_a_reason(name):
    from suite.config import describe_recipe

    for recipe_name, recipe in TASKS[name].recipes.items():
        missing = [r["key"] for r in describe_recipe(recipe, TASKS[name].recipes["default"]) if not r["reason"]]
        assert not missing, f"{name} {recipe_name}: no reason beside {missing}"


def test_data_make_shows_progress_with_counts(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("SUITE_PROGRESS", "1")  # As on a terminal.
    assert cli.main(["data", "make", "traffic_signs", "--size", "43", "--out", str(tmp_path / "signs")]) == 0
    err = capsys.readouterr().err
    # Counts of tracks (43 signs + 20% test: 172 tracks here), their rate and an ETA (`<`).
    assert re.search(r"traffic_signs sample: +\d+%\|.*\| \d+/172 \[\d\d:\d\d<\d\d:\d\d", err), err[-300:]
