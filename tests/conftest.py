"""Shared fixtures. Two logical CPU devices are made before TensorFlow starts,
so the trainer can be tested under MirroredStrategy on a CPU-only machine
(Keras' own trick); the default strategy still uses one device."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import pytest
import tensorflow as tf

_cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(
    _cpu, [tf.config.LogicalDeviceConfiguration(), tf.config.LogicalDeviceConfiguration()]
)

from tasks import TASKS  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
ALL_TASKS = list(TASKS)  # For `@pytest.mark.parametrize("smoke", ALL_TASKS, indirect=True)`.
REALDATA = Path(os.environ.get("SUITE_REALDATA", ROOT.parent / "shared" / "realdata"))


def realdata(*parts: str) -> Path:
    """A folder of ../shared/realdata, or a clean skip when it is absent."""
    path = REALDATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"real sample data not present at {path}")
    return path


def run_cli(*args: str, cwd: Path, check: bool = True, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """Runs `suite ARGS` in a fresh process, as a user would (with `env` added to the environment)."""
    proc = subprocess.run(
        [sys.executable, "-m", "suite.cli", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})},
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"suite {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc


@pytest.fixture(scope="session")
def smoke(request, tmp_path_factory) -> dict:
    """One task's smoke data made, trained and exported through the CLI, once per session.

    The task is chosen by the test, so a test trains only the tasks it names:
    `@pytest.mark.parametrize("smoke", ["traffic_signs"], indirect=True)`, or
    `ALL_TASKS` for every registered one.
    """
    name = getattr(request, "param", None)
    if name not in TASKS:
        raise pytest.UsageError(f"Expected `smoke` parametrized indirectly with a task name in {list(TASKS)}. "
                                f"Received: {name!r}")
    task = TASKS[name]
    work = tmp_path_factory.mktemp(name)
    run_cli("data", "make", name, "--out", "data", "--size", str(task.smoke_size), cwd=work)
    train = run_cli("train", name, "--data", "data", "--recipe", "smoke", "--run-dir", "run", cwd=work)
    export = run_cli("export", name, "--run", "run", "--out", "exports", cwd=work)
    return {"task": task, "work": work, "train_log": train.stdout, "export_log": export.stdout,
            "export": work / "exports" / "1"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests that need a trained smoke model are `slow` (`pytest -m "not slow"` runs the rest in seconds)."""
    for item in items:
        if "smoke" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.slow)
