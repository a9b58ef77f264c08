"""Shared fixtures. Two logical CPU devices are made before TensorFlow starts,
so the trainer can be tested under MirroredStrategy on a CPU-only machine
(Keras' own trick); the default strategy still uses one device.

`make test` runs two pytest-xdist workers (`-n 2 --dist loadgroup`): the tests
of one task's smoke model form one group, and a smoke model is built once per
test session, by whichever worker needs it first, under a file lock.
`SUITE_REQUIRE_REALDATA=1` (set by `.ci/run`) turns a missing
`../shared/realdata` from a skip into a failure. `--zero-weights` zeroes every
smoke model's weights after training, to show the smoke and parity tests fail
on a broken model.
"""

from __future__ import annotations

import fcntl
import json
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
        if os.environ.get("SUITE_REQUIRE_REALDATA") == "1":
            pytest.fail(f"Expected the real sample data at {path} (SUITE_REQUIRE_REALDATA=1). Received: no such folder.")
        pytest.skip(f"real sample data not present at {path}")
    return path


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--zero-weights", action="store_true",
                     help="zero every smoke model's weights after training (the smoke and parity tests must fail)")


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


def _shared_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder every xdist worker of this session sees (the workers' common base temp)."""
    base = tmp_path_factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


def _zero_weights(run: Path) -> None:
    """Every weight of the run's checkpoints set to zero: a model that is present but broken."""
    from suite.runs import load_model

    for name in ("best.keras", "last.keras"):
        model = load_model(run / name)
        model.set_weights([w * 0 for w in model.get_weights()])
        model.save(run / name)


def smoke_model(name: str, config: pytest.Config, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """`name`'s smoke data made, trained and exported through the CLI, once per test session.

    Under xdist the first worker to ask builds it (a file lock keeps the others
    waiting) and all read the same folder. Returns the task, its work folder
    (`data/`, `run/`, `exports/1`), the export and the train and export logs.
    """
    task = TASKS[name]
    root = _shared_root(tmp_path_factory)
    work, done = root / f"smoke-{name}", root / f"smoke-{name}" / "smoke.json"
    with open(root / f"smoke-{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not done.exists():
            work.mkdir(exist_ok=True)
            run_cli("data", "make", name, "--out", "data", "--size", str(task.smoke_size), cwd=work)
            train = run_cli("train", name, "--data", "data", "--recipe", "smoke", "--run-dir", "run", cwd=work)
            if config.getoption("--zero-weights"):
                _zero_weights(work / "run")
            export = run_cli("export", name, "--run", "run", "--out", "exports", cwd=work)
            done.write_text(json.dumps({"train_log": train.stdout, "export_log": export.stdout}))
    return {"task": task, "work": work, **json.loads(done.read_text()), "export": work / "exports" / "1"}


@pytest.fixture(scope="session")
def smoke(request, tmp_path_factory) -> dict:
    """One task's smoke model (`smoke_model`), the task chosen by the test, so a test trains
    only the tasks it names: `@pytest.mark.parametrize("smoke", ["traffic_signs"], indirect=True)`,
    or `ALL_TASKS` for every registered one."""
    name = getattr(request, "param", None)
    if name not in TASKS:
        raise pytest.UsageError(f"Expected `smoke` parametrized indirectly with a task name in {list(TASKS)}. "
                                f"Received: {name!r}")
    return smoke_model(name, request.config, tmp_path_factory)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests that need a trained smoke model are `slow` (`pytest -m "not slow"` runs the rest in
    seconds) and share an xdist group per task, so one worker runs them one after another
    (they write beside the smoke model); other slow tests get a group of their own."""
    for item in items:
        if "smoke" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.slow)
            callspec = getattr(item, "callspec", None)
            name = callspec.params.get("smoke") if callspec else None
            item.add_marker(pytest.mark.xdist_group(f"smoke-{name}"))
