"""The layout the contributors' guide promises, held by reading the source:
tasks depend only on the core, task files hold no sample-data synthesis, the
core never imports `tasks`, and keras-cv loads only when something detects."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT

from tasks import TASKS

TASK_DIR = ROOT / "tasks"
SOURCES = sorted(p for p in TASK_DIR.rglob("*.py") if p != TASK_DIR / "__init__.py")  # The registry imports them all.


def _imports(path: Path) -> set[str]:
    """Every module `path` imports, as dotted names (`from tasks import x` gives `tasks.x`)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names |= {f"{node.module}.{a.name}" for a in node.names}
    return names


def _owner(path: Path) -> str | None:
    """The task a file belongs to: `tasks/<t>.py` and `tasks/samples/<t>.py` are `t`'s."""
    return path.stem if path.stem in TASKS else None


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_module_under_tasks_imports_another_task(path):
    own = _owner(path)
    for name in _imports(path):
        parts = name.split(".")
        for other in TASKS:
            if other == own:
                continue
            # tasks.<other>, tasks.samples.<other>, and the names in them.
            assert parts[:2] != ["tasks", other] and parts[:3] != ["tasks", "samples", other], (
                f"{path.relative_to(ROOT)} imports {name}: a task may depend on the core (suite/) only")


def test_the_import_check_catches_a_cross_task_import(tmp_path):
    """The reader above is not blind: the import machinery's forms are all seen."""
    bad = tmp_path / "pedestrians.py"
    bad.write_text("from tasks import machinery_proximity\nimport tasks.traffic_signs as ts\n"
                   "from tasks.samples.speech_commands import Espeak\n")
    assert {"tasks.machinery_proximity", "tasks.traffic_signs", "tasks.samples.speech_commands"} <= _imports(bad)


@pytest.mark.parametrize("name", list(TASKS))
def test_task_files_read_like_an_example(name):
    """Recipe, data (with its public sources), model, evaluation, export: no drawing or synthesis code,
    450 lines at most (about 400 plus the declared sources `suite data fetch` reads)."""
    path = TASK_DIR / f"{name}.py"
    text = path.read_text()
    assert len(text.splitlines()) <= 450, f"{path.name} has {len(text.splitlines())} lines"
    drawing = {"PIL.ImageDraw", "PIL.ImageFont", "PIL.ImageFilter", "ctypes", "espeakng_loader"}
    assert not drawing & _imports(path), f"{path.name} imports {drawing & _imports(path)}"
    assert (TASK_DIR / "samples" / f"{name}.py").exists()
    assert text.index("RECIPES =") < text.index("# === Data ===") < text.index("# === Model ===") \
        < text.index("TASK = Task(")


def test_the_core_never_imports_tasks():
    for path in sorted((ROOT / "suite").glob("*.py")):
        if path.name == "cli.py":  # The one place the registry is read.
            continue
        assert not any(n == "tasks" or n.startswith("tasks.") for n in _imports(path)), path.name


def _modules_after(code: str) -> set[str]:
    out = subprocess.run([sys.executable, "-c", f"{code}\nimport sys\nprint(' '.join(sys.modules))"],
                         cwd=ROOT, capture_output=True, text=True, check=True)
    return set(out.stdout.split())


def test_keras_cv_and_generators_load_only_when_needed():
    """The registry and the CLI load neither keras-cv nor any generator; building a detector loads keras-cv."""
    loaded = _modules_after("import tasks, suite.cli")
    assert "keras_cv" not in loaded
    assert not {m for m in loaded if m.startswith("tasks.samples.")}
    loaded = _modules_after("from tasks import TASKS\nt = TASKS['pedestrians']\nt.build_model(t.recipes['smoke'], ['person'])")
    assert "keras_cv" in loaded


def test_a_saved_detector_loads_in_a_fresh_process(tmp_path):
    """keras-cv is imported lazily, so loading a saved YOLOv8 must register it first (`suite.runs.load_model`)."""
    from tasks import TASKS

    task = TASKS["pedestrians"]
    model = task.build_model(task.recipes["smoke"], ["person"])
    model.save(tmp_path / "best.keras")
    out = subprocess.run([sys.executable, "-c", "import sys\nfrom suite.runs import load_model\n"
                          f"m = load_model({str(tmp_path / 'best.keras')!r})\nprint(type(m).__name__)"],
                         cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == "YOLOV8Detector"


@pytest.mark.parametrize("setting, pooled", [(None, True), ("false", False)])
def test_importing_suite_pools_cpu_memory_unless_the_user_says_not(setting, pooled):
    """`import suite` before TensorFlow turns on its BFC CPU allocator (only a pooling allocator keeps
    statistics, so `get_memory_info` answers only then); a user's TF_CPU_ALLOCATOR_USE_BFC stands.
    oneDNN's kernels are off here: with them on (TensorFlow's own default on AVX-512 VNNI CPUs) CPU tensors
    come from TensorFlow's MklCPUAllocator, which keeps statistics whatever this setting says."""
    env = {k: v for k, v in os.environ.items() if k != "TF_CPU_ALLOCATOR_USE_BFC"}
    env["TF_ENABLE_ONEDNN_OPTS"] = "0"
    if setting is not None:
        env["TF_CPU_ALLOCATOR_USE_BFC"] = setting
    code = ("import suite, tensorflow as tf\nx = tf.ones([256, 256])\n"
            "try:\n    print(tf.config.experimental.get_memory_info('CPU:0')['current'] > 0)\n"
            "except ValueError:\n    print('no statistics')")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, env=env)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == ("True" if pooled else "no statistics")
