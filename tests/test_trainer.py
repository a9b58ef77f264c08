"""The shared trainer: MirroredStrategy on two logical CPUs, and kill-and-resume."""

from __future__ import annotations

import csv
import dataclasses
import json
import os
import signal
import subprocess
import sys
import time

import pytest

from conftest import ROOT
from suite import trainer
from suite.data import take
from tasks import TASKS


def _history(run_dir):
    with (run_dir / "history.csv").open() as f:
        return list(csv.DictReader(f))


# One task per distinct training path (pipeline, model, losses): tasks sharing all three
# (machinery_proximity trains pedestrians' YOLOv8 pipeline) would repeat the same run.
_PATHS = {}
for _name, _task in TASKS.items():
    _PATHS.setdefault((_task.dataset, _task.build_model, _task.compile_args), _name)


@pytest.mark.parametrize("name", list(_PATHS.values()))
def test_mirrored_strategy_on_two_cpus_trains(name, tmp_path):
    task = TASKS[name]
    recipe = dataclasses.replace(task.recipes["smoke"], epochs=3, early_stopping_patience=100)
    task.make_data(tmp_path / "data", task.smoke_size, 0)
    data = task.load_data(tmp_path / "data", recipe)
    # A slice of the data is enough to see both replicas train; it keeps the detectors' run short.
    data.splits["train"] = take(data.splits["train"], range(min(48, len(data.splits["train"]))))
    data.splits["val"] = take(data.splits["val"], range(min(8, len(data.splits["val"]))))
    model = trainer.train(task, recipe, data, tmp_path / "run", strategy="mirrored", verbose=0)

    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["strategy"] == "MirroredStrategy"
    assert config["replicas"] == 2
    assert config["global_batch"] == 2 * recipe.batch_size
    losses = [float(r["loss"]) for r in _history(tmp_path / "run")]
    assert len(losses) == 3
    assert min(losses[1:]) < losses[0] * 0.95, losses
    assert model.count_params() > 0


def test_default_strategy_on_cpu_only_hosts():
    strategy = trainer.make_strategy("auto")
    assert strategy.num_replicas_in_sync == 1
    assert trainer.describe(strategy)["strategy"] == "_DefaultDistributionStrategy"
    with pytest.raises(ValueError, match="Expected strategy"):
        trainer.make_strategy("tpu")


def test_killed_run_resumes_to_the_full_epoch_count(tmp_path):
    """SIGKILL mid-run, then `--resume` ends with every epoch logged once."""
    name, epochs = "traffic_signs", 12
    task = TASKS[name]
    task.make_data(tmp_path / "data", task.smoke_size, 0)
    cmd = [sys.executable, "-m", "suite.cli", "train", name, "--data", "data", "--recipe", "smoke",
           "--run-dir", "run", "--set", f"epochs={epochs}", "--set", "early_stopping_patience=100"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(cmd, cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    history = tmp_path / "run" / "history.csv"
    deadline = time.time() + 240
    while time.time() < deadline and proc.poll() is None:
        if history.exists() and len(history.read_text().splitlines()) >= 3:  # Header + 2 epochs.
            break
        time.sleep(0.05)
    assert proc.poll() is None, "training ended before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done = len(_history(tmp_path / "run"))
    assert 2 <= done < epochs
    assert not (tmp_path / "run" / "metrics.json").exists()
    assert (tmp_path / "run" / "backup").exists()

    resumed = subprocess.run([sys.executable, "-m", "suite.cli", "train", name, "--run-dir", "run", "--resume"],
                             cwd=tmp_path, env=env, capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr
    rows = _history(tmp_path / "run")
    assert [int(r["epoch"]) for r in rows] == list(range(epochs))
    assert (tmp_path / "run" / "metrics.json").exists()
    assert f"Epoch {done + 1}/{epochs}" in resumed.stdout  # It did not start over.
