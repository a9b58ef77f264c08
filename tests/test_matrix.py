"""The evaluation matrix: corruptions on their own, then one `suite matrix` run over
every registered task's smoke export (latest exports, two models for one task; per
task: the declared columns, severity 0 equal to clean, markdown agreeing with
JSON), and a task without an export."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from conftest import run_cli, smoke_model
from suite import corruptions, matrix
from suite.config import recipe_from_dict
from suite.data import MARKER
from suite.export import load_export
from tasks import TASKS


@pytest.mark.parametrize("name", list(corruptions.IMAGE))
def test_image_corruptions_grow_with_severity(name):
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:48, 0:64]
    image = np.stack([xx * 4, yy * 5, (xx + yy) * 2], -1).clip(0, 255).astype(np.uint8)  # Smooth, with edges.
    image[10:30, 20:40] = [200, 40, 40]
    fn = corruptions.IMAGE[name]
    assert fn(image, 0, rng) is image  # Severity 0 is no corruption at all.
    errors = []
    for severity in corruptions.SEVERITIES:
        out = fn(image, severity, np.random.default_rng(1))
        assert out.dtype == np.uint8 and out.shape == image.shape
        errors.append(float(np.mean((out.astype(float) - image) ** 2)))
    assert 0 < errors[0] <= errors[1] <= errors[2], errors
    batch = fn(np.stack([image, image]), 2, np.random.default_rng(1))
    assert batch.shape == (2, *image.shape)


@pytest.mark.parametrize("name", list(corruptions.AUDIO))
def test_audio_corruptions(name):
    t = np.arange(16000) / 16000
    clips = np.stack([0.3 * np.sin(2 * np.pi * f * t) * (t > 0.2) * (t < 0.7) for f in (300, 500, 700)])
    clips = clips.astype(np.float32)
    fn = corruptions.AUDIO[name]
    assert fn(clips, 0, np.random.default_rng(0)) is clips
    for severity in corruptions.SEVERITIES:
        out = fn(clips, severity, np.random.default_rng(0))
        assert out.dtype == np.float32 and out.shape == clips.shape and np.abs(out).max() <= 1
        assert not np.allclose(out, clips)
    if name in ("white_noise", "babble_noise"):
        out = fn(clips, 2, np.random.default_rng(0))  # 10 dB.
        snr = 10 * np.log10((clips**2).mean(1) / ((out - clips) ** 2).mean(1))
        np.testing.assert_allclose(snr, 10.0, atol=0.5)


def _md_summary(text: str) -> tuple[list[str], list[list[str]]]:
    table = [line for line in text.splitlines() if line.startswith("| ")]
    header = [c.strip() for c in table[0].strip("|").split("|")]
    rows = [[c.strip() for c in line.strip("|").split("|")] for line in table[1:]
            if not line.startswith("| condition") and line.count("|") == len(header) + 1]
    return header, rows


LIMIT = 2  # Test examples per condition: every cell, slice and model still appears with two.


@pytest.fixture(scope="session")
def every_task(request, tmp_path_factory) -> dict:
    """`suite matrix` as a user runs it over every task, once: each task's smoke export as its latest
    under saved_models/, its smoke data as datasets/TASK, traffic_signs given two models and
    pedestrians two datasets: its generated smoke data and a copy the suite did not make (real, to it)."""
    smokes = {name: smoke_model(name, request.config, tmp_path_factory) for name in TASKS}
    root = tmp_path_factory.mktemp("matrix")
    for name, built in smokes.items():
        (root / "saved_models" / name).mkdir(parents=True)
        (root / "saved_models" / name / "1").symlink_to(built["export"], target_is_directory=True)
        (root / "datasets").mkdir(exist_ok=True)
        (root / "datasets" / name).symlink_to(built["work"] / "data", target_is_directory=True)
    (root / "another").symlink_to(smokes["traffic_signs"]["export"], target_is_directory=True)
    shutil.copytree(smokes["pedestrians"]["work"] / "data", root / "photos", ignore=shutil.ignore_patterns(MARKER))
    run_cli("matrix", "--models", "latest", "traffic_signs=saved_models/traffic_signs/1", "traffic_signs=another",
            "--data", "pedestrians=datasets/pedestrians", "--data", "pedestrians=photos",
            "--limit", str(LIMIT), "--out", "reports", cwd=root)
    return {"smokes": smokes, "out": root / "reports", "report": json.loads((root / "reports" / "matrix.json").read_text())}


@pytest.mark.slow
@pytest.mark.xdist_group("matrix")
def test_matrix_rows_are_every_tasks_latest_export_and_each_model_given(every_task):
    rows = every_task["report"]["rows"]
    assert [(r["task"], r["model"]) for r in rows] == [
        (name, model) for name in TASKS
        for model in (["saved_models/traffic_signs/1", "another"] if name == "traffic_signs" else
                      [f"saved_models/{name}/1"] * (2 if name == "pedestrians" else 1))]
    # Two paths to the same weights: the same numbers in every cell.
    first, second = rows[0]["cells"], rows[1]["cells"]
    assert {k: c["metrics"] for k, c in first.items()} == {k: c["metrics"] for k, c in second.items()}
    # One model on two datasets: each row says which, and whether the suite generated it.
    made, real = [r for r in rows if r["task"] == "pedestrians"]
    assert (made["data"], made["data_kind"], real["data"], real["data_kind"]) == (
        "datasets/pedestrians", "generated", "photos", "real")
    assert made["generated_by"].startswith("tasks/samples/pedestrians.py size=") and real["generated_by"] == ""
    text = (every_task["out"] / "matrix.md").read_text()
    assert f"| {matrix._row_name(made)} |" in text and f"| {matrix._row_name(real)} |" in text
    assert "on generated `pedestrians`" in matrix._row_name(made) and "on real `photos`" in matrix._row_name(real)
    assert made["report_dir"] != real["report_dir"]


@pytest.mark.slow
@pytest.mark.xdist_group("matrix")
@pytest.mark.parametrize("name", list(TASKS))
def test_matrix_on_the_smoke_export(every_task, name, tmp_path):
    task, work = TASKS[name], every_task["smokes"][name]["work"]
    smoke, out, report = every_task["smokes"][name], every_task["out"], every_task["report"]
    row = next(r for r in report["rows"] if r["task"] == name)
    cells = row["cells"]
    declared = {f"{c}@{s}" for c in task.corruptions for s in corruptions.SEVERITIES}
    assert task.corruptions and {n for n, c in cells.items() if c["kind"] == "corruption"} == declared
    assert cells["clean"]["n"] == row["test_examples"] <= LIMIT
    loaded, meta = load_export(smoke["export"], task.name)
    recipe = recipe_from_dict(type(task.recipes["default"]), meta["recipe"])
    test = matrix._limited(task.load_data(work / "data", recipe).splits["test"], LIMIT)
    families = {c["family"] for c in cells.values() if c["kind"] == "slice"}
    assert task.slices and families == set(task.slices(test, recipe, meta["class_names"]))
    # Slices partition the evaluated examples, family by family.
    for family in families:
        assert sum(c["n"] for c in cells.values() if c.get("family") == family) == row["test_examples"]
    assert row["params"] > 0 and row["size_mb"] > 0 and row["latency_p50_ms"] > 0 and row["throughput_per_s_batch32"] > 0
    assert 8 <= row["latency_calls"] <= 32
    # Some corruption at severity 3 changes the metrics: the corruption reached the model.
    assert any(cells[f"{c}@3"]["metrics"] != cells["clean"]["metrics"] for c in task.corruptions)

    # The markdown says what the JSON says.
    header, rows = _md_summary((out / "matrix.md").read_text())
    columns = header[2 : header.index("params")]
    assert columns == report["columns"] and columns[0] == "clean" and columns[-1] == "worst slice"
    assert set(task.corruptions) <= set(columns)  # The union over tasks, in first-seen order.
    summary = matrix.summary(row)
    (line,) = [r for r in rows if r[0] == matrix._row_name(row)]
    assert line[2 : 2 + len(columns)] == [matrix._fmt(summary.get(c)) for c in columns]
    assert float(line[2]) == pytest.approx(cells["clean"]["value"], abs=5e-4 + 1e-9)  # 0.1875 shows as 0.188.
    assert (out / "matrix.png").stat().st_size > 0
    assert (out / "matrix.csv").read_text().count("\n") == 1 + sum(len(r["cells"]) for r in report["rows"])
    card = (out.parent / row["report_dir"] / "model_card.md").read_text()
    assert "## Known limits" in card and task.known_limits[0] in card

    # A corruption at severity 0 gives exactly the clean result (in-process, same examples).
    for corruption in task.corruptions[:1]:
        metrics, _ = matrix.evaluate_condition(task, loaded, test, recipe, meta["class_names"], corruption, 0, tmp_path)
        assert matrix._numbers(metrics) == cells["clean"]["metrics"]


def test_a_task_without_export_is_skipped_with_its_reason(tmp_path):
    run_cli("matrix", "--tasks", "traffic_signs", "--out", "reports", cwd=tmp_path)
    report = json.loads((tmp_path / "reports" / "matrix.json").read_text())
    assert report["rows"] == [{"task": "traffic_signs", "skipped": report["rows"][0]["skipped"]}]
    assert "--train-missing" in report["rows"][0]["skipped"]
    assert "skipped: no export under saved_models/traffic_signs/" in (tmp_path / "reports" / "matrix.md").read_text()
    proc = run_cli("matrix", "--tasks", "traffic_signs", "--models", "traffic_signs", cwd=tmp_path, check=False)
    assert proc.returncode == 2 and "Expected --models as TASK=PATH. Received: 'traffic_signs'" in proc.stderr
