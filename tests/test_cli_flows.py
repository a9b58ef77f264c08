"""What a user types, with the defaults a user relies on: `matrix --train-missing`
in an empty folder (the sample is made, the missing model trained and exported),
`train` without `--data` (runs/TASK/) and `--strategy`, `evaluate` on the latest
run with `--split` and plots, `export` to saved_models/TASK/ (and a refused
`--run`), `predict` on the latest export with a bad file skipped.

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
# The plumbing, not the model: one crop per image, once, and each image segmented once (no mirror views: a
# quarter of the U-Net's work in the four evaluations below).
SHORT = ("--set", "epochs=1", "--set", "crops_per_image=1", "--set", "test_time_flips=false")


def _json_line(proc) -> dict:
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_a_session_on_the_defaults(tmp_path):
    task = TASKS[NAME]
    # matrix --train-missing in an empty folder: the sample is made, the recipe asked for is trained and
    # exported (through `runs.train_task`, as `suite train` without --data), and that export is evaluated.
    out = run_cli("matrix", "--tasks", NAME, "--train-missing", "--recipe", "smoke", *SHORT, "--limit", "1",
                  cwd=tmp_path)
    assert f"{NAME}: no export under saved_models/{NAME}/: training the smoke recipe" in out.stdout
    assert f"no data at datasets/{NAME}: making the sample dataset" in out.stdout
    images = sorted((tmp_path / "datasets" / NAME).glob("*/images/*.png"))
    assert len(images) == task.sample_size
    (first,) = (tmp_path / "runs" / NAME).iterdir()
    assert re.fullmatch(r"\d{8}-\d{6}(-\d+)?", first.name), first.name
    config = json.loads((first / "config.json").read_text())
    assert (config["recipe_name"], config["recipe"]["epochs"], config["recipe"]["crops_per_image"]) == ("smoke", 1, 1)
    (row,) = json.loads((tmp_path / "reports" / "matrix.json").read_text())["rows"]
    assert (row["task"], row["model"], row["test_examples"]) == (NAME, f"saved_models/{NAME}/1", 1)
    refused = run_cli("matrix", "--tasks", NAME, "--set", "epochs=1", cwd=tmp_path, check=False)
    assert refused.returncode == 2 and "Expected --recipe and --set only with --train-missing" in refused.stderr

    # train without --data: datasets/TASK, a new run under runs/TASK/; `--strategy mirrored` on a
    # CPU-only host mirrors over its one logical CPU, and says so.
    train = run_cli("train", NAME, "--recipe", "smoke", *SHORT, "--strategy", "mirrored", cwd=tmp_path)
    (run,) = set((tmp_path / "runs" / NAME).iterdir()) - {first}
    line = re.search(r"strategy (\w+) with (\d) replica\(s\) on (\S+); global batch (\d+) = (\d+) x (\d)", train.stdout)
    assert line and line.group(1) == "MirroredStrategy" and line.group(2) == line.group(6) == "1", train.stdout
    assert line.group(3).endswith("CPU:0") and line.group(4) == line.group(5) == str(task.recipes["smoke"].batch_size)
    config = json.loads((run / "config.json").read_text())
    assert (config["strategy"], config["replicas"], config["data_dir"]) == ("MirroredStrategy", 1, f"datasets/{NAME}")

    # evaluate: the latest run on datasets/TASK, the split asked for, plots and tables where asked.
    val = _json_line(run_cli("evaluate", NAME, "--split", "val", "--out", "plots", "--json", cwd=tmp_path))
    data = task.load_data(tmp_path / "datasets" / NAME, task.recipes["smoke"])
    assert (val["model"], val["data"], val["split"]) == ("latest run", f"datasets/{NAME}", "val")
    assert val["n"] == len(data.splits["val"]) != len(data.splits["test"])
    assert len((tmp_path / "plots" / "per_image.csv").read_text().strip().splitlines()) == 1 + val["n"]

    # export: the latest run (the mirrored one) into saved_models/TASK/2; an export is not a run.
    out = run_cli("export", NAME, cwd=tmp_path)
    export = tmp_path / "saved_models" / NAME / "2"
    assert f"exported saved_models/{NAME}/2" in out.stdout
    assert json.loads((export / "suite.json").read_text())["recipe"]["epochs"] == 1
    refused = run_cli("export", NAME, "--run", f"saved_models/{NAME}/2", cwd=tmp_path, check=False)
    assert refused.returncode == 2 and "Expected" in refused.stderr and "Received" in refused.stderr, refused.stderr
    assert sorted(p.name for p in export.parent.iterdir()) == ["1", "2"]

    # predict: the latest export; a file that is not an image is skipped with the reason.
    (tmp_path / "notes.png").write_text("not an image")
    out = run_cli("predict", NAME, str(images[0]), "notes.png", cwd=tmp_path)
    said, skipped = out.stdout.strip().splitlines()
    loaded, _ = load_export(export, NAME)
    nuclei = int(loaded.serve_bytes(tf.constant(images[0].read_bytes()))["num_nuclei"])
    assert said.startswith(f"{images[0]}: {nuclei} nuclei (")
    assert skipped.startswith("notes.png: skipped (") and "expected a PNG, JPEG, BMP or PPM image" in skipped
