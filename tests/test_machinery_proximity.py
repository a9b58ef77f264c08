"""machinery_proximity: the YOLO loader on the real construction-site set and the
class mapping, the hazard rule on hand-placed boxes with known answers, the
generator's truth files, and SavedModel parity (boxes and hazard)."""

from __future__ import annotations

import csv
import dataclasses
import json
import math

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from conftest import realdata, run_cli
from suite import detection as det
from suite.errors import UserError
from suite.export import load_export
from suite.runs import load_model
from tasks import machinery_proximity as mp
from tasks.samples import machinery_proximity as mp_samples

RECIPE = mp.RECIPES["default"]


def test_loader_maps_the_real_ten_class_set_onto_ours():
    root = realdata("machinery_proximity")
    # The set's data.yaml names Windows paths (F://PPE detection//css-data//train//images).
    dirs = det.yolo_split_dirs(root / "data.yaml")
    assert list(dirs) == ["train"] and dirs["train"] == (root / "css-data" / "train" / "images").resolve()
    data = mp.load_data(root, RECIPE)
    everything = data.splits["all"]
    assert len(everything) == 291 and not data.report.skipped
    assert data.layout == "YOLO layout (split by file name)"
    # The raw label files: Person is 5, machinery 8, vehicle 9 in the set's names; the other 7 are dropped.
    raw = np.concatenate([np.loadtxt(p, ndmin=2)[:, 0] for p in sorted((root / "css-data/train/labels").glob("*.txt"))])
    counts = np.bincount(np.concatenate(everything.classes), minlength=3)
    assert counts.tolist() == [int((raw == 5).sum()), int((raw == 8).sum()), int((raw == 9).sum())]
    assert all((c == 0).any() for c in everything.classes)  # Every image has a person (MANIFEST).
    assert sum(len(data.splits[s]) for s in ("train", "val", "test")) == 291


def _yolo_set(root, names, lines):
    (root / "train" / "images").mkdir(parents=True)
    (root / "train" / "labels").mkdir()
    (root / "valid" / "images").mkdir(parents=True)
    (root / "data.yaml").write_text(f"train: ../train/images\nval: ../valid/images\nnames: {names}\n")
    Image.new("RGB", (100, 100)).save(root / "train" / "images" / "a.jpg")
    Image.new("RGB", (100, 100)).save(root / "valid" / "images" / "b.jpg")
    (root / "train" / "labels" / "a.txt").write_text("".join(f"{c} 0.5 0.5 0.2 0.2\n" for c in lines))


def test_class_map_from_the_recipe(tmp_path):
    _yolo_set(tmp_path, "['Worker', 'Digger', 'Dump Truck', 'Safety Cone']", [0, 1, 2, 3])
    data = mp.load_data(tmp_path, RECIPE)
    assert data.layout == "YOLO layout (the set's own split)"
    assert data.splits["train"].classes[0].tolist() == [0, 2]  # Worker -> person, Dump Truck -> vehicle.
    mapped = mp.load_data(tmp_path, dataclasses.replace(RECIPE, class_map=("Digger:machinery", "worker:")))
    assert mapped.splits["train"].classes[0].tolist() == [1, 2]  # Digger mapped in, workers dropped.
    with pytest.raises(UserError, match="Expected class_map entries 'TheirName:ours'.*Received: 'Digger:crane'"):
        mp.load_data(tmp_path, dataclasses.replace(RECIPE, class_map=("Digger:crane",)))
    with pytest.raises(UserError, match="Expected a YOLO set"):
        mp.load_data(tmp_path / "train", RECIPE)
    # `--data path/to/data.yaml`, as Ultralytics users pass it, reads the same set.
    by_file = mp.load_data(tmp_path / "data.yaml", RECIPE)
    assert by_file.splits["train"].paths == data.splits["train"].paths


def _camera() -> mp_samples.Camera:
    """The camera the recipe assumes: 5 m up, 65 degrees wide, 640 x 480."""
    focal = 320 / math.tan(math.radians(RECIPE.camera_fov_deg) / 2)
    return mp_samples.Camera(640, 480, focal, RECIPE.camera_height_m, 200.0)


def _person(cam, x, z):
    fx, fy = cam.ground(x, z)
    h = RECIPE.person_height_m * cam.scale(z)
    return [fx - h * 0.12, fy - h, fx + h * 0.12, fy]


def _machine(cam, x0, x1, z):
    (a, y), (b, _) = cam.ground(x0, z), cam.ground(x1, z)
    return [a, y - 3.0 * cam.scale(z), b, y]


@pytest.mark.parametrize("machine, distance, level", [
    ((1.0, 6.0, 10.0), 1.0, "danger"),      # Beside the person, 1 m to the side.
    ((5.0, 10.0, 10.0), 5.0, "warning"),    # 5 m to the side.
    ((12.0, 16.0, 10.0), 12.0, "safe"),     # 12 m to the side.
    ((-3.0, 3.0, 15.0), 5.0, "warning"),    # Straight ahead of the person, 5 m further away.
    ((-3.0, 3.0, 7.0), 0.5, "danger"),      # The person is 0.5 m behind the machine's assumed 2.5 m footprint.
])
def test_hazard_rule_on_hand_placed_boxes(machine, distance, level):
    cam = _camera()
    boxes = np.array([_person(cam, 0.0, 10.0), _machine(cam, *machine)], np.float32)
    out = mp.hazard_rule(boxes, [0, 1], [0.9, 0.9], (480, 640), RECIPE, mp.CLASS_NAMES)
    assert out["hazard"].numpy().decode() == level
    assert out["pair_machine"].numpy().tolist() == [1, -1]
    np.testing.assert_allclose(out["pair_distance_m"].numpy()[0], distance, atol=1e-3)
    # A vehicle counts as a machine; a second, farther machine does not change the nearest pair.
    far = np.concatenate([boxes, [_machine(cam, 20.0, 24.0, 10.0)]]).astype(np.float32)
    out = mp.hazard_rule(far, [0, 2, 1], [0.9, 0.9, 0.9], (480, 640), RECIPE, mp.CLASS_NAMES)
    assert out["hazard"].numpy().decode() == level and int(out["pair_machine"][0]) == 1


def test_hazard_rule_ignores_unsure_boxes_and_lone_people():
    cam = _camera()
    boxes = np.array([_person(cam, 0.0, 10.0), _machine(cam, 1.0, 6.0, 10.0)], np.float32)
    low = mp.hazard_rule(boxes, [0, 1], [0.9, RECIPE.hazard_score / 2], (480, 640), RECIPE, mp.CLASS_NAMES)
    assert low["hazard"].numpy().decode() == "safe" and low["pair_distance_m"].numpy().tolist() == [-1, -1]
    alone = mp.hazard_rule(boxes[:1], [0], [0.9], (480, 640), RECIPE, mp.CLASS_NAMES)
    assert int(alone["hazard_level"]) == 0
    empty = mp.hazard_rule(np.zeros((0, 4), np.float32), np.zeros(0, int), np.zeros(0), (480, 640), RECIPE,
                           mp.CLASS_NAMES)
    assert int(empty["hazard_level"]) == 0
    metrics = mp.hazard_metrics([2, 2, 1, 0, 0], [2, 1, 2, 0, 2])
    assert metrics["danger_missed"] == 1 and metrics["danger_recall"] == 0.5
    assert metrics["danger_false_alarm_rate"] == pytest.approx(2 / 3)
    assert list(metrics)[:2] == ["danger_missed", "danger_recall"]  # The costly error first.


def test_generated_sites_carry_their_true_distances(tmp_path):
    mp.TASK.make_data(tmp_path, 30, seed=3)
    data = mp.load_data(tmp_path, RECIPE)
    everything = data.splits["all"]
    assert len(everything) == 30 and data.layout == "YOLO layout (the set's own split)"
    rows = {r["image"].split("/")[-1][:-4]: r for r in csv.DictReader((tmp_path / "hazards.csv").open())}
    levels, errors = [], []
    for path, boxes, classes, extra, (h, w) in zip(everything.paths, everything.boxes, everything.classes,
                                                    everything.extra, everything.sizes):
        row = rows[path.split("/")[-1][:-4]]
        assert int(row["people"]) == int((classes == 0).sum()) and int(row["machines"]) == int((classes > 0).sum())
        pairs = extra["pairs"]
        assert len(pairs) == int(row["people"]) * int(row["machines"])
        for q in pairs:
            assert classes[q["person"]] == 0 and mp.CLASS_NAMES[classes[q["machine"]]] == q["machine_class"]
        nearest = min((q["distance_m"] for q in pairs), default=math.inf)
        assert row["hazard"] == mp.LEVELS[mp.level_of(nearest, RECIPE)]
        levels.append(row["hazard"])
        # The rule on the true boxes with this scene's true camera lands near the true distance.
        fov = math.degrees(2 * math.atan(w / 2 / float(row["focal_px"])))
        true_camera = dataclasses.replace(RECIPE, camera_height_m=float(row["camera_height_m"]), camera_fov_deg=fov)
        out = mp.hazard_rule(boxes, classes, np.ones(len(classes)), (h, w), true_camera, mp.CLASS_NAMES)
        estimate = out["pair_distance_m"].numpy()
        if pairs and (estimate >= 0).any():
            errors.append(abs(estimate[estimate >= 0].min() - nearest))
    assert set(levels) == {"safe", "warning", "danger"}
    assert np.median(errors) < 0.5, errors


@pytest.mark.parametrize("smoke", ["machinery_proximity"], indirect=True)
def test_export_matches_the_keras_model_and_reports_the_hazard(smoke, tmp_path):
    work = smoke["work"]
    config = json.loads((work / "run" / "config.json").read_text())
    recipe = mp.Recipe(**{k: tuple(v) if isinstance(v, list) else v for k, v in config["recipe"].items()})
    model = load_model(work / "run" / "best.keras")
    loaded, meta = load_export(smoke["export"], "machinery_proximity")
    detect = mp._detect_fn(model, recipe, meta["class_names"])
    images = sorted((work / "data" / "test" / "images").glob("*.jpg"))[:3]
    found = []
    for path in images:
        want = detect(tf.io.decode_jpeg(tf.io.read_file(str(path)), channels=3))
        got = loaded.serve_bytes(tf.constant(path.read_bytes()))
        assert int(got["num_detections"]) == int(want["num_detections"])
        found += got["scores"].numpy()[: int(got["num_detections"])].tolist()
        np.testing.assert_allclose(got["boxes"].numpy(), want["boxes"].numpy(), atol=1e-3)
        np.testing.assert_allclose(got["scores"].numpy(), want["scores"].numpy(), atol=1e-4)
        np.testing.assert_allclose(got["pair_distance_m"].numpy(), want["pair_distance_m"].numpy(), atol=1e-2)
        assert int(got["hazard_level"]) == int(want["hazard_level"])
        assert got["hazard"].numpy().decode() == mp.LEVELS[int(got["hazard_level"])]
    # Parity over boxes that exist, from a live model: an empty or constant output would compare equal too.
    assert found and np.ptp(found) > 1e-3, found
    metrics = json.loads((work / "run" / "metrics.json").read_text())
    confusion = np.array(metrics["hazard_confusion"]["counts"])
    assert confusion.sum() == metrics["n"] and set(metrics["ap50_by_class"]) <= set(mp.CLASS_NAMES)
    out = run_cli("predict", "machinery_proximity", str(images[0]), "--model", str(smoke["export"]),
                  "--out", str(tmp_path / "drawn"), cwd=work)
    assert any(level in out.stdout for level in ("SAFE", "WARNING", "DANGER"))
    assert (tmp_path / "drawn" / f"{images[0].stem}.hazard.png").exists()
