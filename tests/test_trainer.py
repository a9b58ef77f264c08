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

import keras
import numpy as np
import pytest
import tensorflow as tf

from conftest import ROOT
from suite import trainer
from suite.errors import UserError
from suite.runs import run_lock
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


@pytest.mark.slow  # 30-110 s each: among the other slow tests, not in the quick tail the workers end on.
@pytest.mark.parametrize("name", list(_PATHS.values()))
def test_mirrored_strategy_on_two_cpus_trains(name, tmp_path):
    task = TASKS[name]
    recipe = dataclasses.replace(task.recipes["smoke"], epochs=3, early_stopping_patience=100)
    # Only a slice is trained on: the detector's scenes (the slowest to draw) are made for it alone.
    task.make_data(tmp_path / "data", 48 if name == "pedestrians" else task.smoke_size, 0)
    data = task.load_data(tmp_path / "data", recipe)
    # A slice of the data is enough to see both replicas train; it keeps the detectors' run short.
    data.splits["train"] = take(data.splits["train"], range(min(24, len(data.splits["train"]))))
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


class _CountedCosine(keras.optimizers.schedules.CosineDecay):
    """A warmup-cosine schedule that counts how often a graph asks it for the rate."""

    traced = 0

    def __call__(self, step):
        if not tf.executing_eagerly():
            type(self).traced += 1
        return super().__call__(step)


@pytest.mark.parametrize("strategy", ["default", "mirrored"])
def test_a_traced_step_computes_the_scheduled_rate_once_and_trains_the_same(strategy):
    """AdamW's weight decay reads the scheduled rate once per variable (Keras 3.15); with
    `rate_once_per_step` one rate per graph serves them all, and the weights come out the same."""
    x = np.random.default_rng(0).normal(size=(16, 4)).astype("float32")
    y = x.sum(axis=1, keepdims=True)
    weights, counts = [], []
    for once in (False, True):
        keras.utils.set_random_seed(0)
        _CountedCosine.traced = 0
        with trainer.make_strategy(strategy).scope():
            model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(8), keras.layers.Dense(8),
                                      keras.layers.Dense(1)])
            schedule = _CountedCosine(0.0, decay_steps=8, warmup_target=0.05, warmup_steps=2)
            model.compile(keras.optimizers.AdamW(schedule, weight_decay=0.1), loss="mse")
            model.optimizer.build(model.trainable_variables)
            if once:
                trainer.rate_once_per_step(model.optimizer)
        model.fit(x, y, batch_size=8, epochs=2, shuffle=False, verbose=0)
        weights.append(model.get_weights())
        counts.append(_CountedCosine.traced)
    assert counts[0] >= 6 and counts[1] == 1, counts  # 6 variables (3 kernels, 3 biases), one traced step.
    for before, after in zip(*weights):
        np.testing.assert_allclose(after, before, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("strategy", ["default", "mirrored"])
def test_averaged_weights_are_validated_saved_and_kept_when_early_stopping_ends_the_run(strategy, tmp_path):
    """`ema_momentum`: validation and the epoch-end checkpoint see the optimizer's moving average; the raw weights
    train on unchanged; the model `fit` leaves is that average even when early stopping ends the run. Keras' own
    `SwapEMAWeights(swap_on_epoch=True)` leaves the raw weights there then, unlike its last checkpoint."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(32, 4)).astype("float32")
    y = x @ np.array([[1.0], [-2.0], [0.5], [3.0]], "float32")

    def fit(callback, epochs=5, stop_after=None):
        keras.utils.set_random_seed(0)
        with trainer.make_strategy(strategy).scope():
            model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(8), keras.layers.Dense(1)])
            model.compile(keras.optimizers.AdamW(0.05, use_ema=True, ema_momentum=0.8), loss="mse")
        path = tmp_path / f"{type(callback).__name__}-{epochs}-{stop_after}.weights.h5"
        callbacks = [*([callback] if callback else []), keras.callbacks.ModelCheckpoint(str(path), save_weights_only=True)]
        if stop_after:  # As EarlyStopping ends a run: `stop_training` set at an epoch's end.
            callbacks.append(keras.callbacks.LambdaCallback(
                on_epoch_end=lambda epoch, logs: setattr(model, "stop_training", epoch + 1 >= stop_after)))
        history = model.fit(x, y, validation_data=(x, y), batch_size=8, epochs=epochs, shuffle=False, verbose=0,
                            callbacks=callbacks)
        saved = keras.models.clone_model(model)
        saved.load_weights(path)
        return model, saved, history.history

    plain, _, plain_logs = fit(None)
    averaged, saved, logs = fit(trainer.AveragedWeights())
    # The raw weights trained as without the callback, so their average (what `fit` leaves) is the same.
    for a, b in zip(plain.get_weights(), averaged.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    assert logs["loss"] == pytest.approx(plain_logs["loss"], rel=1e-5)
    # Validated and checkpointed: the average, whose val loss differs from the raw weights' after the last step.
    assert logs["val_loss"][-1] == pytest.approx(averaged.evaluate(x, y, verbose=0), rel=1e-4)
    assert logs["val_loss"][-1] != pytest.approx(plain_logs["val_loss"][-1], rel=1e-3)
    for a, b in zip(saved.get_weights(), averaged.get_weights()):
        np.testing.assert_array_equal(a, b)

    stopped, saved, logs = fit(trainer.AveragedWeights(), stop_after=2)
    assert len(logs["loss"]) == 2
    for a, b in zip(saved.get_weights(), stopped.get_weights()):
        np.testing.assert_array_equal(a, b)
    swapped, saved, _ = fit(keras.callbacks.SwapEMAWeights(swap_on_epoch=True), stop_after=2)
    assert not all(np.array_equal(a, b) for a, b in zip(saved.get_weights(), swapped.get_weights()))


@pytest.mark.parametrize("smoke", ["traffic_signs"], indirect=True)
def test_killed_transfer_run_resumes_through_both_phases(smoke, tmp_path):
    """SIGKILL during the head phase of a transfer run (`--from MODEL.keras`), then `suite train
    --resume` without `--run-dir` finds the newest run and finishes both phases, every epoch logged once."""
    name, head_epochs, epochs = "traffic_signs", 4, 2
    source = smoke["work"] / "run" / "best.keras"
    cmd = [sys.executable, "-m", "suite.cli", "train", name, "--data", str(smoke["work"] / "data"),
           "--recipe", "smoke", "--approach", "transfer", "--from", str(source),
           "--set", f"head_epochs={head_epochs}", "--set", f"epochs={epochs}", "--set", "early_stopping_patience=100"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(cmd, cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 240
    while time.time() < deadline and proc.poll() is None:
        history = list((tmp_path / "runs" / name).glob("*/head/history.csv"))
        if history and len(history[0].read_text().splitlines()) >= 3:  # Header + 2 epochs of the head phase.
            break
        time.sleep(0.05)
    assert proc.poll() is None, "training ended before it could be killed"
    # Another process (this one) training into the same run is refused while the first holds it.
    (run,) = (tmp_path / "runs" / name).iterdir()
    with pytest.raises(UserError, match=rf"Expected no other training in {run}\. Received: .*pid {proc.pid}"):
        with run_lock(run):
            pass
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done = len(_history(run / "head"))
    assert 2 <= done < head_epochs
    assert not (run / "history.csv").exists() and not (run / "metrics.json").exists()
    assert (run / "head" / "backup").exists()

    # The killed process's lock file is still there, unlocked by the kernel: it blocks nothing.
    assert (run / ".lock").exists()
    resumed = subprocess.run([sys.executable, "-m", "suite.cli", "train", name, "--resume"],
                             cwd=tmp_path, env=env, capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr
    assert f"resuming runs/{name}/{run.name} (transfer)" in resumed.stdout
    assert f"Epoch {done + 1}/{head_epochs}" in resumed.stdout  # The head phase did not start over.
    assert [int(r["epoch"]) for r in _history(run / "head")] == list(range(head_epochs))
    assert [int(r["epoch"]) for r in _history(run)] == list(range(epochs))
    config = json.loads((run / "config.json").read_text())
    assert config["approach"] == "transfer" and config["source"] == str(source)
    assert json.loads((run / "metrics.json").read_text())["accuracy"] > 0
    assert not list(run.rglob("backup"))


@pytest.mark.parametrize("smoke", ["traffic_signs"], indirect=True)
def test_sigterm_stops_promptly_and_the_run_resumes(smoke, tmp_path):
    """SIGTERM (what a scheduler sends before preempting) during the second epoch: the process
    exits 143 within seconds, saying how to resume; `--resume` finishes with every epoch logged once."""
    name, epochs, run = "traffic_signs", 2, tmp_path / "run"
    cmd = [sys.executable, "-m", "suite.cli", "train", name, "--data", str(smoke["work"] / "data"),
           "--recipe", "smoke", "--run-dir", str(run), "--set", f"epochs={epochs}",
           "--set", "early_stopping_patience=100"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(cmd, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 240
    while time.time() < deadline and proc.poll() is None:
        if (run / "history.csv").exists() and len((run / "history.csv").read_text().splitlines()) >= 2:
            break
        time.sleep(0.05)
    assert proc.poll() is None, "training ended before SIGTERM"
    sent = time.time()
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 143, err[-2000:]
    assert time.time() - sent < 30  # Promptly: at the next batch, not at the end of the run.
    assert "stopped by SIGTERM during epoch 2" in err and f"--resume --run-dir {run}" in err
    assert len(_history(run)) == 1 and (run / "backup").exists() and not (run / "metrics.json").exists()
    resumed = subprocess.run([sys.executable, "-m", "suite.cli", "train", name, "--resume", "--run-dir", str(run)],
                             cwd=tmp_path, env=env, capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert [int(r["epoch"]) for r in _history(run)] == list(range(epochs))
    assert (run / "metrics.json").exists() and not (run / "backup").exists()
