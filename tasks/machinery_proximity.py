"""Machinery proximity: people and machines on a worksite, and a hazard alert
when a person is too close to a machine.

Run:

    suite train machinery_proximity        # makes datasets/machinery_proximity first if absent
    suite export machinery_proximity
    suite predict machinery_proximity site.jpg --out drawn/   # boxes, distances and the alert drawn

Expected result with the default recipe on 2 CPU cores: the targets are mAP50
of at least 0.85 over person / machinery / vehicle on the generated test split
and danger recall of at least 0.95 (many non-danger images are called danger
too: the price of not missing dangers), within 15 minutes end to end, data
generation included; docs/benchmarks.md (entry `machinery`) has what was
measured. On ~200 real construction-site photos from scratch, `--recipe real`
(a step budget and Mosaic) takes mAP50 from 0.06 to 0.15 on the real val split
(test 0.06 to 0.10; 1,246 s; entry `detection_real`): far from usable on real
photos without pretrained weights (see the known limits).

Data: YOLO sets as downloaded (`data.yaml` with `names`, read with PyYAML;
Roboflow's `train|valid|test/images` or Ultralytics' `images/train|val` with
the labels where the last `images` folder becomes `labels`; `--data` may name
the folder or the yaml itself, whose `path:` is honoured), including sets with more
classes: their names are mapped onto ours (`person`, `machinery`, `vehicle`) by
`CLASS_MAP` plus the recipe's `class_map` ("TheirName:ours" entries), and the
rest are ignored. The generator (`tasks/samples/machinery_proximity.py`) writes worksite scenes in that layout, drawn
through a pinhole camera over a ground plane, and also `pairs.csv` (the true
ground distance of every person-machine pair) and `hazards.csv` (each scene's
nearest distance and hazard level).

Hazard: for each detected person and each detected machine or vehicle, the
ground distance is estimated from the boxes alone, with the person as the
ruler: a standing adult is `person_height_m` tall, so with an assumed camera
height and field of view (`camera_height_m`, `camera_fov_deg`; a level pinhole
camera) the person's box places the horizon and the person on the ground, and
the machine's box bottom places its near edge (its footprint reaching
`machine_depth_m` behind). The image is `danger` when a person is estimated
within `danger_m` + `alert_margin_m` (the margin because a missed danger is
the costly error), `warning` within `warning_m`, else `safe`. It is an
estimate from boxes, not a calibration: the evaluation reports how far off it
is (the median error of the nearest distance, in docs/benchmarks.md), on
generated scenes whose cameras vary from 3 to 7 m high and 55 to 75 degrees
wide.
"""

from __future__ import annotations

import csv
import dataclasses
import math
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from suite import corruptions
from suite import detection as det
from suite.data import DataReport, check_image_file, single_image_endpoints
from suite.errors import UserError
from suite.fetch import Remote, Source
from suite.metrics import usable_files
from suite.task import LoadedData, Task
from tasks import samples


@dataclasses.dataclass(frozen=True)
class Recipe(det.DetectionRecipe):
    # YOLOv8 values not set here are the core's (`suite.detection.DetectionRecipe`, reasons beside them).
    epochs: int = 55  # Still underfitting at 40 (train loss = val loss); 55 fits the 15-minute budget.
    image_size: int = 256  # Letterboxed side; the farthest workers are ~60 px tall in a 480 px scene, ~30 px here.
    max_boxes: int = 16  # Padded boxes per training image (scenes hold up to ~10).
    iou_threshold: float = 0.5  # NMS overlap (class-agnostic in keras-cv: a person in front of a machine overlaps little).
    aug_scale: float = 0.3  # Random zoom 1 +- this; it changes apparent size, not the ground geometry.
    class_map: tuple[str, ...] = ()  # Extra "TheirName:ours" renames, e.g. "Digger:machinery".
    hazard_classes: tuple[str, ...] = ("machinery", "vehicle")  # What a person must keep away from.
    hazard_score: float = 0.05  # Detections at or above this take part in the hazard rule; chosen on val for recall.
    person_height_m: float = 1.7  # The ruler: a standing adult.
    camera_height_m: float = 5.0  # Assumed (pole or mast camera); with the ruler it places the horizon.
    camera_fov_deg: float = 65.0  # Assumed horizontal field of view; sets metres per pixel.
    machine_depth_m: float = 2.5  # Assumed footprint depth behind a machine's near edge.
    danger_m: float = 3.0  # True distance below this is danger (a swing radius / blind zone).
    warning_m: float = 8.0  # Below this is warning.
    alert_margin_m: float = 0.5  # Estimates below danger_m + this alert danger: misses cost more than alarms.


RECIPES = {
    "default": Recipe(),
    # Real photos (~200 training images): a budget of optimizer steps, not epochs (150 epochs of ~13 batches,
    # ~2,000 steps, where the default makes ~700), Mosaic on half the images, and room for its tiled boxes.
    "real": Recipe(epochs=150, mosaic=0.5, max_boxes=48, early_stopping_patience=40),
    "smoke": Recipe(  # The tests' run on 100 sites: the plumbing works and boxes start to land.
        # 20 epochs: AP50 0.114, recall50 0.18 (30 gave 0.114 and 0.21, 25% slower).
        epochs=20, widths=(8, 16, 32, 64), image_size=160, batch_size=8, early_stopping_patience=20,
        learning_rate=3e-3, warmup_epochs=1, confidence_threshold=0.001,  # A young model's scores are low.
        deterministic=True,  # Reproducible, so the tests' floors hold on every run.
    ),
}

CLASS_NAMES = ["person", "machinery", "vehicle"]
LEVELS = ["safe", "warning", "danger"]
# Names seen in public construction-site sets, compared without case.
CLASS_MAP = {
    **{n: "person" for n in ("person", "people", "worker", "workers", "pedestrian", "human")},
    **{n: "machinery" for n in ("machinery", "machine", "excavator", "loader", "wheel loader", "bulldozer", "dozer",
                                "crane", "mobile crane", "tower crane", "forklift", "backhoe", "roller", "grader",
                                "heavy equipment", "construction machine")},
    **{n: "vehicle" for n in ("vehicle", "truck", "dump truck", "dumper", "car", "van", "pickup", "mixer truck",
                              "concrete mixer")},
}
LAYOUT_HELP = (
    "a YOLO set: DIR/data.yaml (or --data path/to/data.yaml) with `names`, and its images in Roboflow's "
    "train|valid|test/images/ or Ultralytics' images/train|val/ (labels where the last `images` folder becomes "
    "`labels`, one `class cx cy w h` .txt per image, normalised). Make a sample with "
    "`suite data make machinery_proximity --out DIR`"
)

# `suite data fetch machinery_proximity --archive FILE`: Construction Site Safety is hosted where an account
# is needed, so the suite never downloads it; no public record pins a checksum, so the first fetch records it.
SOURCES = (
    Source(
        name="css",
        title="Construction Site Safety (Roboflow Universe v28, Kaggle 'Construction Site Safety Image Dataset')",
        files=(Remote("https://www.kaggle.com/datasets/snehilsanyal/construction-site-safety-image-dataset-roboflow/"
                      "archive.zip", None, None, None, "none published; recorded on first use"),),
        licence="CC BY 4.0 (as listed by Roboflow)",
        manual="sign in at https://www.kaggle.com/datasets/snehilsanyal/construction-site-safety-image-dataset-"
               "roboflow, press Download (a file named archive.zip, holding css-data/ and data.yaml) and pass "
               "that file",
    ),
)

# === Data ===


def class_mapping(recipe: Recipe) -> dict[str, str]:
    """`CLASS_MAP` with the recipe's `class_map` entries ("TheirName:ours") on top.

    Raises:
        UserError: for an entry without `:` or mapping onto a class we do not have.
    """
    mapping = dict(CLASS_MAP)
    for entry in recipe.class_map:
        theirs, sep, ours = entry.rpartition(":")
        if not sep or ours.strip() not in CLASS_NAMES + [""]:
            raise UserError(f"Expected class_map entries 'TheirName:ours' with ours in {CLASS_NAMES} (or empty to "
                            f"drop). Received: {entry!r}")
        mapping[theirs.strip().lower()] = ours.strip()
    return mapping


def _read_truth(root: Path) -> dict[str, list[dict]]:
    """`pairs.csv` of a generated set: image stem -> [{person, machine, machine_class, distance_m}]."""
    path = root / "pairs.csv"
    truth: dict[str, list[dict]] = {}
    if not path.exists():
        return truth
    with path.open() as f:
        for row in csv.DictReader(f):
            pairs = truth.setdefault(Path(row["image"]).stem, [])
            if row["person"] != "":
                pairs.append({"person": int(row["person"]), "machine": int(row["machine"]),
                              "machine_class": row["machine_class"], "distance_m": float(row["distance_m"])})
    return truth


def load_data(data_dir: Path, recipe: Recipe) -> LoadedData:
    """Reads a YOLO/Roboflow set, mapping its class names onto ours.

    Returns:
        `LoadedData` with `train`, `val`, `test` and `all` splits of
        `Detections`; for generated sets each example's `extra` holds the true
        person-machine pairs (`pairs`) from `pairs.csv`.

    Raises:
        UserError: when no `data.yaml` with readable images is found.
    """
    data_dir = Path(data_dir)
    report = DataReport()
    yamls = det.find_data_yaml(data_dir)
    parts = det.read_yolo_set(yamls[0], CLASS_NAMES, class_mapping(recipe), report) if yamls else {}
    if not sum(len(p) for p in parts.values()):
        listing = sorted(p.name for p in data_dir.iterdir())[:8] if data_dir.is_dir() else "nothing (no such folder)"
        raise UserError(f"Expected {LAYOUT_HELP}. Received: {data_dir} holding {listing} ({report.summary()}).")
    truth = _read_truth(yamls[0].parent)
    for part in parts.values():
        part.extra = [{"pairs": truth[Path(p).stem]} if Path(p).stem in truth else {} for p in part.paths]
    splits, how = det.split_examples(parts, recipe.val_percent, recipe.test_percent)
    return LoadedData(splits, list(CLASS_NAMES), report, f"YOLO layout ({how})")


def level_of(distance: float, recipe: Recipe) -> int:
    """0 safe, 1 warning, 2 danger for a true ground distance in metres."""
    return 2 if distance < recipe.danger_m else 1 if distance < recipe.warning_m else 0


# === Model ===

# YOLOv8 and its pipeline are the core's (suite/detection.py); what is ours is the hazard.


def hazard_rule(boxes, classes, scores, image_hw, recipe: Recipe, class_names: list[str]) -> dict:
    """The image's hazard level from its detections (see the module docstring).

    Args:
        boxes: `[n, 4]` xyxy pixels; `classes` `[n]` ids (-1 for padding);
            `scores` `[n]`; `image_hw` the image's `(height, width)`.

    Returns:
        `hazard_level` (0 safe, 1 warning, 2 danger), `hazard` (its name), and
        per detection (aligned with `boxes`; -1 where the detection is not a
        person taking part): `pair_machine` (index of the nearest machine),
        `pair_distance_m` (estimated ground distance) and `pair_level`.
    """
    boxes = tf.cast(boxes, tf.float32)
    classes = tf.cast(classes, tf.int32)
    scores = tf.cast(scores, tf.float32)
    width = tf.cast(image_hw[1], tf.float32)
    sure = scores >= recipe.hazard_score
    person = sure & tf.equal(classes, class_names.index("person"))
    hazard_ids = tf.constant([class_names.index(c) for c in recipe.hazard_classes if c in class_names] or [-2])
    machine = sure & tf.reduce_any(tf.equal(classes[:, None], hazard_ids[None, :]), axis=1)
    p, m = boxes[:, None, :], boxes[None, :, :]
    focal = width / 2 / math.tan(math.radians(recipe.camera_fov_deg) / 2)
    cam_h, tall = recipe.camera_height_m, recipe.person_height_m
    height_px = tf.maximum(p[..., 3] - p[..., 1], 1.0)
    horizon = p[..., 3] - height_px * cam_h / tall  # Where the ground meets the sky, seen from this person.
    z_person = focal * tall / height_px
    x_person = ((p[..., 0] + p[..., 2]) / 2 - width / 2) * z_person / focal
    below = m[..., 3] - horizon
    z_near = tf.where(below > 0.5, focal * cam_h / tf.maximum(below, 0.5), np.inf)
    z_far = z_near + recipe.machine_depth_m
    x_left = (m[..., 0] - width / 2) * z_near / focal
    x_right = (m[..., 2] - width / 2) * z_near / focal
    dx = tf.maximum(0.0, tf.maximum(x_left - x_person, x_person - x_right))
    dz = tf.maximum(0.0, tf.maximum(z_near - z_person, z_person - z_far))
    distance = tf.where(tf.math.is_finite(z_near), tf.sqrt(dx**2 + dz**2), np.inf)
    distance = tf.where(person[:, None] & machine[None, :], distance, np.inf)
    distance = tf.pad(distance, [[0, 0], [0, 1]], constant_values=np.inf)  # argmin needs a column, even for n = 0.
    nearest = tf.reduce_min(distance, axis=1)
    paired = tf.math.is_finite(nearest)
    level = tf.where(nearest < recipe.danger_m + recipe.alert_margin_m, 2, tf.where(nearest < recipe.warning_m, 1, 0))
    level = tf.where(paired, level, -1)
    image_level = tf.maximum(tf.reduce_max(tf.concat([level, [-1]], 0)), 0)
    return {
        "hazard_level": image_level,
        "hazard": tf.gather(tf.constant(LEVELS), image_level),
        "pair_machine": tf.where(paired, tf.cast(tf.argmin(distance, axis=1), tf.int32), -1),
        "pair_distance_m": tf.where(paired, nearest, -1.0),
        "pair_level": level,
    }


def _detect_fn(model: keras.Model, recipe: Recipe, class_names: list[str]):
    """uint8 `[h, w, 3]` -> boxes in its own pixels, scores, classes, names, and the hazard."""
    boxes_of = det.detect_fn(model, recipe, class_names)

    def detect(pixels):
        out = boxes_of(pixels)
        hazard = hazard_rule(out["boxes"], out["classes"], out["scores"], tf.shape(pixels)[:2], recipe, class_names)
        return {**out, **hazard}

    return detect


def hazard_metrics(truth_levels: list[int], predicted: list[int]) -> dict:
    """Missed dangers first: recall of danger, the false alarms it costs, and the 3x3 table."""
    t, p = np.asarray(truth_levels, int), np.asarray(predicted, int)
    danger, calm = t == 2, t != 2
    confusion = np.zeros((3, 3), int)
    np.add.at(confusion, (t, p), 1)
    return {
        "danger_missed": int((danger & (p != 2)).sum()),
        "danger_recall": float((p[danger] == 2).mean()) if danger.any() else float("nan"),
        "danger_false_alarm_rate": float((p[calm] == 2).mean()) if calm.any() else float("nan"),
        "danger_precision": float((t[p == 2] == 2).mean()) if (p == 2).any() else float("nan"),
        "hazard_accuracy": float((t == p).mean()) if len(t) else float("nan"),
        "hazard_images": {LEVELS[k]: int((t == k).sum()) for k in range(3)},
        "hazard_confusion": {"rows_truth_cols_predicted": LEVELS, "counts": confusion.tolist()},
    }


def evaluate(model, examples: det.Detections, recipe: Recipe, class_names: list[str], out_dir: Path | None) -> dict:
    """mAP50 over classes (primary), per-class AP, and for sets with true
    distances the hazard: danger recall, false-alarm rate, distance error."""
    levels, said, errors = [], [], []

    def keep(out: dict, extra: dict) -> None:
        if "pairs" in extra:
            near = [q["distance_m"] for q in extra["pairs"] if q["machine_class"] in recipe.hazard_classes]
            nearest = min(near, default=float("inf"))
            levels.append(level_of(nearest, recipe))
            said.append(int(out["hazard_level"]))
            estimate = out["pair_distance_m"].numpy()
            estimate = estimate[estimate >= 0]
            if near and len(estimate):
                errors.append(abs(float(estimate.min()) - nearest))

    truth, predictions = det.detect_all(model, examples, lambda: _detect_fn(model, recipe, class_names), keep)
    metrics = {**det.detection_metrics(truth, predictions, class_names), "detections_scored": det.convention(recipe)}
    det.save_pr_curves(truth, predictions, class_names, out_dir)
    if levels:
        metrics = {**hazard_metrics(levels, said),
                   "distance_error_m_median": float(np.median(errors)) if errors else float("nan"),
                   **metrics}
    return metrics


def slices(examples: det.Detections, recipe: Recipe, class_names: list[str]) -> dict[str, list[str]]:
    """For the evaluation matrix: the true nearest person-machine distance band
    (generated sets; bands from the export's `danger_m` and `warning_m`), and
    how many machines or vehicles share the scene."""
    bands = []
    for extra in examples.extra or [{}] * len(examples):
        if "pairs" not in extra:
            bands.append("unknown")
            continue
        nearest = min((q["distance_m"] for q in extra["pairs"]), default=math.inf)
        bands.append("no pair" if nearest == math.inf else f"<{recipe.danger_m:g} m" if nearest < recipe.danger_m
                     else f"{recipe.danger_m:g}-{recipe.warning_m:g} m" if nearest < recipe.warning_m
                     else f">={recipe.warning_m:g} m")
    machines = ["0" if n == 0 else "1" if n == 1 else "2+" for n in (int((c > 0).sum()) for c in examples.classes)]
    return {"distance_band": bands, "machines": machines}


def export_endpoints(model: keras.Model, recipe: Recipe, class_names: list[str]) -> dict:
    """One image of any size in; boxes, classes, scores, hazard level and the pairs behind it out."""
    return single_image_endpoints(_detect_fn(model, recipe, class_names), recipe.max_image_pixels)


def predict_files(loaded, paths: list[Path], recipe: Recipe, class_names: list[str],
                  out_dir: Path | None = None) -> list[str]:
    """`file: DANGER (person 2 at ~1.4 m from machinery 0) ...`; with `out_dir`, also
    writes each image with its boxes, distances and the alert drawn (at the export's `draw_threshold`)."""
    threshold = recipe.draw_threshold
    colours = {"person": (40, 220, 40), "machinery": (255, 170, 0), "vehicle": (60, 140, 255)}
    alert = {"danger": (255, 0, 0), "warning": (255, 200, 0)}
    lines: list[str] = []
    for path, data in usable_files(paths, check_image_file, "a PNG, JPEG, BMP or PPM image", lines):
        boxes, scores, names, out = det.detection_outputs(loaded, data)
        n = len(scores)
        partner, dist = out["pair_machine"].numpy()[:n], out["pair_distance_m"].numpy()[:n]
        hazard = out["hazard"].numpy().decode()
        pairs = [f"{names[i]} {i} at ~{dist[i]:.1f} m from {names[partner[i]]} {partner[i]}"
                 for i in np.argsort(dist) if dist[i] >= 0][:3]
        counts = {c: sum(1 for nm, s in zip(names, scores) if nm == c and s >= threshold) for c in class_names}
        lines.append(f"{path}: {hazard.upper()} ({'; '.join(pairs) or 'no person-machine pair'}); "
                     + ", ".join(f"{v} {k}" for k, v in counts.items()) + f" at score >= {threshold}")
        if out_dir is not None:
            drawn = [(b, f"{nm} {s:.2f}" + (f" {dist[i]:.1f}m" if dist[i] >= 0 else ""), colours.get(nm, (255, 255, 255)))
                     for i, (nm, s, b) in enumerate(zip(names, scores, boxes)) if s >= threshold or dist[i] >= 0]
            det.draw_boxes(path, Path(out_dir) / f"{Path(path).stem}.hazard.png", drawn, width=2,
                           banner=(hazard.upper(), alert.get(hazard, (0, 255, 0))))
    return lines


TASK = Task(
    name="machinery_proximity",
    summary="Find people, machines and vehicles on a worksite; alert when a person is too close to one.",
    data_format="YOLO/Roboflow: data.yaml (names) + train|valid|test/images and labels/*.txt "
    "(class cx cy w h); other class names mapped onto person/machinery/vehicle, the rest ignored",
    model_summary="YOLOv8 (keras-cv, from scratch, ~1M params) on 256 px letterboxed images; NMS and the "
    "hazard rule in the graph",
    recipes=RECIPES,
    primary_metric="ap50",
    higher_is_better=True,
    monitor="val_loss",
    sample_size=1000,
    smoke_size=100,
    # Half the lowest the deterministic smoke run measured: mAP50 0.114 and recall50 0.205 with TensorFlow's
    # default threads on 2 cores, 0.070 and 0.180 with one thread; 0.034 and 0.231 on another 2-core machine
    # (2026-12-04: op determinism holds per thread count and CPU, not across machines).
    smoke_floors={"ap50": 0.015, "recall50": 0.09},
    make_data=samples.writer("machinery_proximity"),  # Generator: tasks/samples/machinery_proximity.py.
    load_data=load_data,
    dataset=det.dataset,  # The core's letterboxed boxes pipeline (flip, zoom) ...
    build_model=det.build_model,  # ... YOLOv8 sized by our recipe ...
    compile_args=det.compile_args,  # ... and its own losses.
    evaluate=evaluate,
    export_endpoints=export_endpoints,
    predict_files=predict_files,
    corruptions=tuple(corruptions.IMAGE),  # All of them: noise, blur, light, contrast, JPEG, occlusion.
    slices=slices,
    known_limits=(
        "Generated sites are drawn side views of seven machine types on flat ground under a level camera; "
        "front views, cranes from below, slopes, night, rain and real clutter are not represented.",
        "The hazard is an estimate from boxes with an assumed camera (5 m high, 65 degrees wide) and a "
        "1.7 m person: wrong for other cameras by the ratio of the assumptions; it is an aid, not a safety system.",
        "A person hidden behind a machine is not detected, so not counted in the hazard (generated truth counts "
        "only people visible enough to annotate).",
        "The hazard's camera assumptions fail on photos not taken by a fixed site camera: the shared real "
        "Construction Site Safety images are close-ups, phone shots and 2 x 2 tiles (the publisher's Mosaic), where "
        "a masked face filling half the frame reads as a person about a metre away; that set has no distances, so "
        "the hazard on real photos is unmeasured. Fed that set's true boxes, the rule calls 272 of its 291 images "
        "danger, 156 only through a person and a machine in different tiles (282 images are tiled); and a person "
        "inside a machine's box, an operator in the cab as often as a worker in front, reads as danger in 96 of 158 "
        "pairs: a manned machine alarms (docs/benchmarks.md, hazard_real). Real-photo AP: the same file.",
    ),
    sources=SOURCES,
)
