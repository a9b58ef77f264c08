"""Several machines through TF_CONFIG, run the way a cluster runs them: a chief and a
worker process on 127.0.0.1 (free ports), each `suite train` with its own TF_CONFIG,
MultiWorkerMirroredStrategy between them."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from conftest import ROOT, run_cli
from loopback import free_ports
from suite.export import load_export
from suite.runs import load_model


def _start(role: str, ports: list[int], args: list[str], cwd: Path, log: Path) -> subprocess.Popen:
    cluster = {"chief": [f"127.0.0.1:{ports[0]}"], "worker": [f"127.0.0.1:{ports[1]}"]}
    config = {"cluster": cluster, "task": {"type": role, "index": 0}}
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CONFIG": json.dumps(config)}
    return subprocess.Popen([sys.executable, "-m", "suite.cli", "train", *args], cwd=cwd, env=env,
                            stdout=log.open("w"), stderr=subprocess.STDOUT, text=True)


def _both(ports, args, cwd, tag) -> tuple[subprocess.Popen, subprocess.Popen]:
    # The worker first: the chief's collectives wait for it either way.
    worker = _start("worker", ports, args, cwd, cwd / f"worker-{tag}.log")
    chief = _start("chief", ports, args, cwd, cwd / f"chief-{tag}.log")
    return chief, worker


def _wait(proc: subprocess.Popen, log: Path, timeout: float = 400) -> None:
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise AssertionError(f"still running after {timeout} s:\n{log.read_text()[-3000:]}") from None
    assert proc.returncode == 0, log.read_text()[-3000:]


def _epochs(run: Path) -> list[int]:
    with (run / "history.csv").open() as f:
        return [int(r["epoch"]) for r in csv.DictReader(f)]


def _check_finished_job(task, smoke, run: Path, epochs: int, tmp_path: Path, worker_killed: bool = False) -> None:
    """What both processes left behind, checked as the issue states it."""
    worker_dir = run / "worker-0"
    # The chief's run directory has the checkpoints, history and metrics; the worker wrote only to its own area.
    assert {"best.keras", "last.keras", "history.csv", "metrics.json", "config.json"} <= {p.name for p in run.iterdir()}
    assert not (worker_dir / "metrics.json").exists() and (worker_dir / "last.keras").exists()
    assert [p.name for p in run.iterdir() if "worker" in p.name] == ["worker-0"]  # Nothing of the worker's outside.
    assert (worker_dir / ".lock").exists() and (worker_dir / "shard.json").exists()
    assert _epochs(run) == list(range(epochs))
    worker_epochs = _epochs(worker_dir)  # A killed worker may die before logging the epoch it finished.
    assert worker_epochs == (sorted(set(worker_epochs)) if worker_killed else list(range(epochs)))
    assert worker_epochs[-1] == epochs - 1
    chief_cfg = json.loads((run / "config.json").read_text())
    worker_cfg = json.loads((worker_dir / "config.json").read_text())
    batch = task.recipes["smoke"].batch_size
    for cfg in (chief_cfg, worker_cfg):
        assert cfg["replicas"] == 2 and cfg["global_batch"] == 2 * batch  # 2 x per-replica.
        assert cfg["strategy"] in ("MultiWorkerMirroredStrategy", "CollectiveAllReduceStrategy")
    assert chief_cfg["devices"][0].startswith("/job:chief") and worker_cfg["devices"][0].startswith("/job:worker")
    # Each process read its own shard of the training data, and together they read all of it, once.
    shards = [set(json.loads((d / "shard.json").read_text())["digests"]) for d in (run, worker_dir)]
    data = task.load_data(smoke["work"] / "data", task.recipes["smoke"])
    assert shards[0] and not shards[0] & shards[1]
    assert len(shards[0] | shards[1]) == len(data.splits["train"])
    # Synchronous training: the chief's final weights are the worker's.
    chief_w, worker_w = (load_model(d / "last.keras").get_weights() for d in (run, worker_dir))
    assert len(chief_w) == len(worker_w)
    for a, b in zip(chief_w, worker_w):
        np.testing.assert_allclose(a, b, atol=1e-6)
    # `suite export` of the chief's run: the SavedModel gives the Keras model's predictions.
    run_cli("export", task.name, "--run", str(run), "--out", str(tmp_path / "exports"), cwd=tmp_path)
    loaded, meta = load_export(tmp_path / "exports" / "1", task.name)
    model = load_model(run / "best.keras")
    examples = task.dataset(data.splits["test"], task.recipes["smoke"], False, 8, data.class_names)
    x, _ = next(iter(examples))
    want = model.predict(x, verbose=0)
    endpoint = loaded.serve_waveform if task.name == "speech_commands" else None
    if endpoint is None:  # traffic_signs' serve_pixels resizes: feed it the pixels the model saw.
        got = loaded.serve_pixels(tf.cast(tf.round(x), tf.uint8))["probabilities"].numpy()
        want = model.predict(tf.round(x), verbose=0)
    else:
        got = endpoint(x)["probabilities"].numpy()
    np.testing.assert_allclose(got, want, atol=1e-4)


@pytest.mark.parametrize("smoke", ["speech_commands"], indirect=True)
def test_chief_and_worker_train_one_model(smoke, tmp_path):
    task, epochs = smoke["task"], 1
    args = [task.name, "--data", str(smoke["work"] / "data"), "--recipe", "smoke", "--run-dir", "run",
            "--set", f"epochs={epochs}", "--set", "early_stopping_patience=100"]
    chief, worker = _both(free_ports(2), args, tmp_path, "a")
    _wait(chief, tmp_path / "chief-a.log")
    _wait(worker, tmp_path / "worker-a.log")
    _check_finished_job(task, smoke, tmp_path / "run", epochs, tmp_path)


@pytest.mark.parametrize("smoke", ["traffic_signs"], indirect=True)
def test_a_killed_worker_restarts_and_the_job_resumes(smoke, tmp_path):
    """SIGKILL the worker after an epoch: the chief stops with an error within seconds (TensorFlow's
    coordination service notices the missing peer), and both restarted with `--resume` continue
    from the last finished epoch, each epoch logged once. Then the finished job is checked."""
    task, epochs, run = smoke["task"], 2, tmp_path / "run"
    ports = free_ports(2)
    args = [task.name, "--data", str(smoke["work"] / "data"), "--recipe", "smoke", "--run-dir", "run",
            "--set", f"epochs={epochs}", "--set", "early_stopping_patience=100"]
    chief, worker = _both(ports, args, tmp_path, "a")
    deadline = time.time() + 300
    while time.time() < deadline and chief.poll() is None:
        if (run / "history.csv").exists() and len(_epochs(run)) >= 1:
            break
        time.sleep(0.05)
    assert chief.poll() is None and worker.poll() is None, (tmp_path / "chief-a.log").read_text()[-3000:]
    worker.send_signal(signal.SIGKILL)
    worker.wait()
    try:
        chief.wait(timeout=120)
    except subprocess.TimeoutExpired:
        chief.kill()
        raise AssertionError("the chief did not notice its worker was gone") from None
    assert chief.returncode != 0
    done = len(_epochs(run))
    assert 1 <= done < epochs and (run / "backup").exists() and not (run / "metrics.json").exists()

    chief, worker = _both(ports, [task.name, "--resume", "--run-dir", "run"], tmp_path, "b")
    _wait(chief, tmp_path / "chief-b.log")
    _wait(worker, tmp_path / "worker-b.log")
    for log in ("chief-b.log", "worker-b.log"):
        text = (tmp_path / log).read_text()
        assert f"Epoch {done + 1}/{epochs}" in text and f"Epoch {done}/{epochs}" not in text, log
    _check_finished_job(task, smoke, run, epochs, tmp_path, worker_killed=True)
