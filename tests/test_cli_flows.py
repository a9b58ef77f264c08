"""What a user types, with the defaults a user relies on: `train` without `--data`
(the sample is made, the run goes to runs/TASK/), `--strategy`, `evaluate` on the
latest run with `--split` and plots, `export` to saved_models/TASK/ (and a refused
`--run`), `predict` on the latest export with a bad file skipped, and `matrix`
training what is missing and making the data it lacks.

cell_microscopy is the task these run on: its default sample (240 images) is the
quickest to make."""

from __future__ import annotations

import json
import re

import pytest
import tensorflow as tf

from conftest import run_cli
from suite.export import load_export
from tasks import TASKS

NAME = "cell_microscopy"


def _json_line(proc) -> dict:
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_a_session_on_the_defaults(tmp_path):
    task = TASKS[NAME]
    train = run_cli("train", NAME, "--recipe", "smoke", "--set", "epochs=2", "--strategy", "mirrored", cwd=tmp_path)
    assert f"no data at datasets/{NAME}: making the sample dataset" in train.stdout
    images = sorted((tmp_path / "datasets" / NAME).glob("*/images/*.png"))
    assert len(images) == task.sample_size
    (run,) = (tmp_path / "runs" / NAME).iterdir()
    assert re.fullmatch(r"\d{8}-\d{6}(-\d+)?", run.name), run.name
    # `--strategy mirrored` on a CPU-only host mirrors over its one logical CPU, and says so.
    line = re.search(r"strategy (\w+) with (\d) replica\(s\) on (\S+); global batch (\d+) = (\d+) x (\d)", train.stdout)
    assert line and line.group(1) == "MirroredStrategy" and line.group(2) == line.group(6) == "1", train.stdout
    assert line.group(3).endswith("CPU:0") and line.group(4) == line.group(5) == str(task.recipes["smoke"].batch_size)
    config = json.loads((run / "config.json").read_text())
    assert (config["strategy"], config["replicas"], config["recipe"]["epochs"]) == ("MirroredStrategy", 1, 2)
    assert config["data_dir"] == f"datasets/{NAME}" and config["recipe_name"] == "smoke"

    # evaluate: the latest run on datasets/TASK, the split asked for, plots and tables where asked.
    val = _json_line(run_cli("evaluate", NAME, "--split", "val", "--out", "plots", "--json", cwd=tmp_path))
    data = task.load_data(tmp_path / "datasets" / NAME, task.recipes["smoke"])
    assert (val["model"], val["data"], val["split"]) == ("latest run", f"datasets/{NAME}", "val")
    assert val["n"] == len(data.splits["val"]) != len(data.splits["test"])
    per_image = (tmp_path / "plots" / "per_image.csv").read_text().strip().splitlines()
    assert len(per_image) == 1 + val["n"]

    # export: the latest run into saved_models/TASK/1; an export is not a run.
    out = run_cli("export", NAME, cwd=tmp_path)
    export = tmp_path / "saved_models" / NAME / "1"
    assert f"exported saved_models/{NAME}/1" in out.stdout and (export / "saved_model.pb").exists()
    refused = run_cli("export", NAME, "--run", f"saved_models/{NAME}/1", cwd=tmp_path, check=False)
    assert refused.returncode == 2 and "Expected" in refused.stderr and "Received" in refused.stderr, refused.stderr
    assert sorted(p.name for p in export.parent.iterdir()) == ["1"]

    # predict: the latest export; a file that is not an image is skipped with the reason.
    (tmp_path / "notes.png").write_text("not an image")
    out = run_cli("predict", NAME, str(images[0]), "notes.png", cwd=tmp_path)
    first, second = out.stdout.strip().splitlines()
    loaded, _ = load_export(export, NAME)
    nuclei = int(loaded.serve_bytes(tf.constant(images[0].read_bytes()))["num_nuclei"])
    assert first.startswith(f"{images[0]}: {nuclei} nuclei (")
    assert second.startswith("notes.png: skipped (") and "expected a PNG, JPEG, BMP or PPM image" in second


@pytest.mark.slow
def test_matrix_trains_what_is_missing_on_data_it_makes(tmp_path):
    """`suite matrix --train-missing` in an empty folder: the sample is made, the recipe asked for
    is trained and exported, and the new export is the one evaluated."""
    out = run_cli("matrix", "--tasks", NAME, "--train-missing", "--recipe", "smoke", "--set", "epochs=1",
                  "--limit", "4", cwd=tmp_path)
    assert f"{NAME}: no export under saved_models/{NAME}/: training the smoke recipe" in out.stdout
    assert len(list((tmp_path / "datasets" / NAME).glob("*/images/*.png"))) == TASKS[NAME].sample_size
    (run,) = (tmp_path / "runs" / NAME).iterdir()
    config = json.loads((run / "config.json").read_text())
    assert (config["recipe_name"], config["recipe"]["epochs"]) == ("smoke", 1)
    report = json.loads((tmp_path / "reports" / "matrix.json").read_text())
    (row,) = report["rows"]
    assert row["task"] == NAME and row["model"] == f"saved_models/{NAME}/1" and row["test_examples"] == 4
    refused = run_cli("matrix", "--tasks", NAME, "--set", "epochs=1", cwd=tmp_path, check=False)
    assert refused.returncode == 2 and "Expected --recipe and --set only with --train-missing" in refused.stderr
