"""The export's recipe is the one used: `suite predict` and `suite matrix` read
the recipe stored in an export's `suite.json`, not the task's defaults."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from conftest import run_cli


def _export_with(smoke: dict, tmp_path: Path, **changes) -> Path:
    """The smoke run's weights exported with recipe values changed, as a run
    trained with `--set key=value` would record them in its config."""
    task, work = smoke["task"], smoke["work"]
    run = tmp_path / "run"
    shutil.copytree(work / "run", run, ignore=shutil.ignore_patterns("backup", "tensorboard"))
    config = json.loads((run / "config.json").read_text())
    assert set(changes) <= set(config["recipe"])
    config["recipe"].update(changes)
    (run / "config.json").write_text(json.dumps(config))
    run_cli("export", task.name, "--run", str(run), "--out", str(tmp_path / "exports"), cwd=work)
    return tmp_path / "exports" / "1"


def _relabelled(export: Path, tmp_path: Path, **changes) -> Path:
    """A copy of an export whose `suite.json` records other recipe values. For values that act after the
    graph (a detector's `draw_threshold`: its endpoints never read it, as `_same_boxes` shows for
    machinery_proximity) this is what exporting a run trained with `--set key=value` gives, without
    tracing the detector again (~20 s)."""
    copy = tmp_path / "relabelled" / "1"
    shutil.copytree(export, copy)
    meta = json.loads((copy / "suite.json").read_text())
    assert set(changes) <= set(meta["recipe"])
    meta["recipe"].update(changes)
    (copy / "suite.json").write_text(json.dumps(meta))
    return copy


def _scores(export: Path, image: Path) -> list[float]:
    loaded = tf.saved_model.load(str(export))  # Held: its endpoints need its variables alive.
    out = loaded.serve_bytes(tf.constant(image.read_bytes()))
    return out["scores"].numpy()[: int(out["num_detections"])].tolist()


def _same_boxes(a: Path, b: Path, image: Path) -> None:
    """Two exports of the same weights find the same boxes in `image`: the recipe values changed here act
    after detection. (This is the detectors' export-twice check; see tests/test_tasks.py.)"""
    loaded = [tf.saved_model.load(str(e)) for e in (a, b)]  # Held: their endpoints need their variables alive.
    outs = [m.serve_bytes(tf.constant(image.read_bytes())) for m in loaded]
    assert int(outs[0]["num_detections"]) > 0
    for key in ("boxes", "scores", "classes", "num_detections"):
        np.testing.assert_array_equal(outs[0][key].numpy(), outs[1][key].numpy())


def _shown(line: str) -> tuple[int, float]:
    """Boxes counted by a pedestrians `predict` line, and the threshold it says it used."""
    shown, said = re.search(r": (\d+) person box\(es\) at score >= ([\d.]+) ", line).groups()
    return int(shown), float(said)


@pytest.mark.parametrize("smoke", ["pedestrians"], indirect=True)
def test_predict_counts_boxes_at_the_exports_draw_threshold(smoke, tmp_path):
    work = smoke["work"]
    image = sorted((work / "data" / "PNGImages").glob("*.png"))[0]
    counted, again = {}, _relabelled(smoke["export"], tmp_path, draw_threshold=0.0)
    for threshold, export in ((0.4, smoke["export"]), (0.0, again)):
        shown, said = _shown(run_cli("predict", "pedestrians", str(image), "--model", str(export), cwd=work).stdout)
        assert said == threshold
        assert shown == sum(s >= threshold for s in _scores(export, image))
        counted[threshold] = shown
    # The same weights: the smoke detector's boxes mostly score below the default 0.4.
    assert counted[0.0] > counted[0.4]


@pytest.mark.parametrize("smoke", ["machinery_proximity"], indirect=True)
def test_predict_and_matrix_use_the_exports_distances(smoke, tmp_path):
    work = smoke["work"]
    export = _export_with(smoke, tmp_path, danger_m=2.0, warning_m=5.0, draw_threshold=0.0)
    image = sorted((work / "data" / "test" / "images").glob("*.jpg"))[0]
    _same_boxes(smoke["export"], export, image)
    line = run_cli("predict", "machinery_proximity", str(image), "--model", str(export), cwd=work).stdout
    assert line.strip().endswith("at score >= 0.0")
    counts = [int(n) for n in re.findall(r"(\d+) (?:person|machinery|vehicle)", line.split(";")[-1])]
    assert sum(counts) == len(_scores(export, image))

    out = tmp_path / "reports"
    run_cli("matrix", "--tasks", "machinery_proximity", "--models", f"machinery_proximity={export}",
            "--data", "machinery_proximity=data", "--out", str(out), "--limit", "6", cwd=work)
    cells = json.loads((out / "matrix.json").read_text())["rows"][0]["cells"]
    bands = {c["slice"] for c in cells.values() if c.get("family") == "distance_band"}
    assert bands - {"no pair"} and bands <= {"<2 m", "2-5 m", ">=5 m", "no pair"}, bands  # Not the defaults' 3 and 8 m.
