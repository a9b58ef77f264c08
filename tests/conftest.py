"""Shared fixtures. Two logical CPU devices are made before TensorFlow starts,
so the trainer can be tested under MirroredStrategy on a CPU-only machine
(Keras' own trick); the default strategy still uses one device.

`make test` runs three pytest-xdist workers (`-n 3 --dist loadgroup`) on the 2
cores: the tests wait on subprocesses, locks and TensorFlow start-ups as well as
compute, and a third worker fills those gaps (measured on the same tree: 965 s at
169% CPU with two workers, 877 s at 190% with three; 781-828 s at 32bc828 and after). The tests
of one task's smoke model form one group, and a smoke model is built once per
test session, by whichever worker needs it first, under a file lock.
`SUITE_REQUIRE_REALDATA=1` (set by `.ci/run`) turns a missing
`../shared/realdata` from a skip into a failure. `run_cli` runs `suite train` in a
fresh process and the other commands in the test's own process (see its docstring). `--zero-weights` zeroes every
smoke model's weights after training, to show the smoke and parity tests fail
on a broken model.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import suite  # noqa: E402,F401  TensorFlow's environment defaults (log level, CPU allocator), set before it starts.

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


def run_cli(*args: str, cwd: Path, check: bool = True, env: dict[str, str] | None = None,
            fresh: bool | None = None) -> subprocess.CompletedProcess:
    """Runs `suite ARGS` from `cwd` as a user would, and returns its exit code and output.

    `suite train`, a call with `env` added to the environment, and `fresh=True` run in a new
    process (a training run's numbers and a process's environment are what they would be for a
    user). `fresh=False` keeps a `train` in this process: one refused before it starts, or an
    approach's run (transfer, features) whose plumbing the test checks; smoke recipes are
    deterministic and seeded, so its numbers are a fresh process's. Every other command runs in
    this process through `suite.cli.main`, the same code behind the same argument parser, which
    saves a TensorFlow start (seconds) per call.
    """
    if fresh or env or (args[0] == "train" and fresh is None):
        proc = subprocess.run(
            [sys.executable, "-m", "suite.cli", *args],
            cwd=cwd,
            capture_output=True,
            text=True,
            env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})},
        )
    else:
        proc = _in_process(list(args), Path(cwd))
    if check and proc.returncode != 0:
        raise AssertionError(f"suite {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc


def _in_process(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    """`suite.cli.main(args)` run from `cwd`, its stdout and stderr captured, as a finished process."""
    import contextlib
    import io

    import keras

    from suite import cli

    out, err, back = io.StringIO(), io.StringIO(), os.getcwd()
    os.chdir(cwd)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = cli.main(args)
            except SystemExit as e:  # argparse's usage errors exit 2, as the command line does.
                code = e.code if isinstance(e.code, int) else 1
    finally:
        os.chdir(back)
        keras.backend.clear_session()
    return subprocess.CompletedProcess(["suite", *args], code, out.getvalue(), err.getvalue())


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
        if not done.exists():  # A build that failed in another worker starts again from nothing.
            shutil.rmtree(work, ignore_errors=True)
            work.mkdir()
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


# The order the workers take work in (`make test` runs `--no-loadscope-reorder`): the costliest
# smoke groups first, then the matrix over every task (it needs every smoke model: its worker
# waits on the last builds' locks while the other two keep both cores busy; run last, it was the tail
# of the run, one worker busy), then other slow tests, then the quick ones.
_SMOKE_ORDER = ["machinery_proximity", "pedestrians", "speech_commands", "voice_commands", "cell_microscopy",
                "traffic_signs"]


@pytest.hookimpl(tryfirst=True)  # Before xdist's own hook reads the `xdist_group` marks added here.
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests that need a trained smoke model are `slow` (`pytest -m "not slow"` runs the rest in
    seconds) and share an xdist group per task, so one worker runs them one after another (they
    write beside the smoke model); items are then ordered as `_SMOKE_ORDER` says."""
    rank = {}
    for index, item in enumerate(items):
        group = None
        if "smoke" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.slow)
            callspec = getattr(item, "callspec", None)
            group = f"smoke-{callspec.params.get('smoke') if callspec else None}"
            item.add_marker(pytest.mark.xdist_group(group))
        marker = item.get_closest_marker("xdist_group")
        if group is None and marker is not None:
            group = marker.args[0] if marker.args else marker.kwargs.get("name")
        if group and group.startswith("smoke-") and group[6:] in _SMOKE_ORDER:
            rank[item.nodeid] = (_SMOKE_ORDER.index(group[6:]), index)
        elif group == "matrix":
            rank[item.nodeid] = (len(_SMOKE_ORDER) - 0.5, index)
        else:
            rank[item.nodeid] = (len(_SMOKE_ORDER) + (0 if item.get_closest_marker("slow") else 1), index)
    items.sort(key=lambda item: rank[item.nodeid])


def pytest_runtest_setup(item: pytest.Item) -> None:
    """Under `--dist loadgroup` a grouped test's id carries its group ("@GROUP", added by
    pytest-xdist's collection hook); without it the workers share a smoke model's tests and wait on
    its lock, which pytest 9 with pytest-xdist 3.8 silently did. Such a test fails here instead."""
    if getattr(item.config.option, "loadgroup", False) and item.get_closest_marker("xdist_group") and "@" not in item.nodeid:
        pytest.fail(f"Expected pytest-xdist to tag grouped tests with '@GROUP' under --dist loadgroup. Received: "
                    f"{item.nodeid} untagged (pytest and pytest-xdist versions that do not work together; see "
                    f"setup.cfg).", pytrace=False)
