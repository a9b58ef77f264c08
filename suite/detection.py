"""Shared detection pieces: box formats, COCO-style metrics, loaders for the
box formats people have (Pascal VOC XML, YOLO txt with data.yaml, COCO JSON),
and the YOLOv8 detector every detection task uses: its recipe values, build,
losses, tf.data pipeline, in-graph detect function, evaluation loop and box
drawing. A detection task keeps only what is its own (its loader, classes and
anything it adds to the detections, such as machinery_proximity's hazard).

keras-cv lives behind `suite/kerascv.py`, the one file that imports it; this
module imports that adapter only inside the functions that build or run a
detector, so commands that do not detect never load keras-cv.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import tensorflow as tf

from suite.config import TrainRecipe
from suite.data import (IMAGE_SUFFIXES, DataReport, check_image_file, decode_image, hash_split, progress, take,
                        usable_images)
from suite.errors import UserError

if TYPE_CHECKING:
    import keras


@dataclasses.dataclass(frozen=True)
class DetectionRecipe(TrainRecipe):
    """Values every YOLOv8 detection task has; a task subclasses it and sets its own."""

    epochs: int = 50  # YOLOv8 from scratch keeps improving for tens of epochs.
    batch_size: int = 16  # Per replica; small images, so 16 fits a CPU's memory and gives ~13 steps per 200 images.
    learning_rate: float = 2e-3  # AdamW peak, warmup, cosine decay.
    warmup_epochs: int = 2  # Box losses spike early; a longer warmup keeps them stable.
    clipnorm: float = 10.0  # keras-cv's YOLOv8 examples clip the global norm at 10.
    early_stopping_patience: int = 10  # Epochs without a better val AP; detection AP is noisy from epoch to epoch.
    image_size: int = 224  # Letterboxed input side.
    widths: tuple[int, ...] = (16, 32, 64, 128)  # Backbone stages (~1M params with fpn_depth 1).
    depths: tuple[int, ...] = (1, 1, 1, 1)  # C2f blocks per stage.
    fpn_depth: int = 1  # C2f blocks per feature-pyramid merge.
    # A keras-cv YOLOv8 backbone preset (a name such as yolo_v8_xs_backbone_coco, or a preset folder) that
    # replaces widths/depths with its own architecture and COCO-trained weights; `--from preset:NAME` sets it.
    backbone_preset: str = ""
    max_boxes: int = 16  # Padded boxes per training image.
    # Serving: what `boxes`/`scores` of an export and `suite predict` return.
    confidence_threshold: float = 0.05
    iou_threshold: float = 0.5  # NMS overlap (class-agnostic in keras-cv).
    max_detections: int = 30  # Serving: boxes returned per image.
    # Evaluation, at the detection convention (COCO keeps up to 100 per image; Ultralytics' val scores from
    # 0.001): AP needs the whole ranking, down to the lowest scores. Exports return this set as `all_*`.
    eval_confidence_threshold: float = 0.001
    eval_max_detections: int = 100  # Evaluation: COCO's 100 detections per image.
    draw_threshold: float = 0.4  # Boxes counted and drawn by `suite predict`.
    # Inference (evaluation, export, predict) also on the mirror image, scores and boxes averaged anchor by
    # anchor before NMS: 2x the detector's work; image_size a multiple of 32. Off: on the real Penn-Fudan val
    # split the fine-tuned model's AP50 moved +0.002 and 0.000 in two runs (mAP -0.035, -0.020); the
    # generated-data model's +0.074 on real val, +0.002 on generated val (bench/run.py detection_real).
    test_time_flips: bool = False
    aug_scale: float = 0.3  # Random zoom 1 +- this, then a random crop or pad.
    # Share of training images replaced by a Mosaic (YOLO's default augmentation): four zoomed and flipped
    # images tiled 2 x 2 and a random crop of 1-2 image sides of it, resized back. 0 (off) by default: the
    # generated-data recipes reach their targets without it; the `real` recipes set it.
    mosaic: float = 0.0
    # Colour jitter when training, as a share of YOLO's HSV gains (hue +-0.015 of the circle, saturation and
    # value x 1 +- 0.7 and 0.4): 1.0 is Ultralytics' default. 0 (off) everywhere: on the real Penn-Fudan val
    # split it did not pay (fine-tuned from the generated model, val AP50 0.867 and 0.852 with it against 0.877
    # and 0.925 without, from the same start models; trained on generated scenes alone, 0.319 against 0.161-0.489
    # in four runs; bench/run.py detection_real).
    hsv: float = 0.0
    # Share of training images that get objects pasted in from another training image (Simple Copy-Paste,
    # Ghiasi et al. 2021): each object of the other image, mirrored half of the time, with probability 1/2,
    # cut out by its instance mask (Penn-Fudan's PedMasks). Images without masks give none. 0 (off) everywhere:
    # at 0.5 on recipe `real` (pedestrians, from the generated-data model) real val AP50 0.938 and 0.927 against
    # 0.926 and 0.926 without, inside the run-to-run spread, at ~1.5x the training time (bench/run.py detection_real).
    copy_paste: float = 0.0
    val_percent: int = 15  # Used only for sets without their own split.
    test_percent: int = 15  # Likewise.


# COCO's object size bins, by box area in pixels of the original image.
SIZES = {"small": (0, 32**2), "medium": (32**2, 96**2), "large": (96**2, float("inf"))}


@dataclasses.dataclass
class Detections:
    """Boxed examples of one split: image paths with their boxes and classes.

    Boxes are `xyxy` in pixels of the original image, float32 `[n, 4]`.
    """

    paths: list[str]
    sizes: list[tuple[int, int]]  # (height, width)
    boxes: list[np.ndarray]
    classes: list[np.ndarray]  # int32 [n]
    extra: list[dict] = dataclasses.field(default_factory=list)  # Task facts per image (masks, distances ...).

    def __len__(self) -> int:
        return len(self.paths)

    def subset(self, keep: Sequence[int]) -> Detections:
        return take(self, keep)


# --- Boxes -----------------------------------------------------------------------


def convert(boxes: np.ndarray, source: str, target: str = "xyxy") -> np.ndarray:
    """Converts `[n, 4]` boxes between `xyxy`, `xywh` (corner + size) and `cxcywh`."""
    b = np.asarray(boxes, np.float64).reshape(-1, 4)
    if source == "xywh":
        b = np.stack([b[:, 0], b[:, 1], b[:, 0] + b[:, 2], b[:, 1] + b[:, 3]], 1)
    elif source == "cxcywh":
        b = np.stack([b[:, 0] - b[:, 2] / 2, b[:, 1] - b[:, 3] / 2, b[:, 0] + b[:, 2] / 2, b[:, 1] + b[:, 3] / 2], 1)
    elif source != "xyxy":
        raise ValueError(f"Expected a box format in ('xyxy', 'xywh', 'cxcywh'). Received: {source!r}")
    if target == "xyxy":
        return b
    if target == "xywh":
        return np.stack([b[:, 0], b[:, 1], b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]], 1)
    if target == "cxcywh":
        return np.stack([(b[:, 0] + b[:, 2]) / 2, (b[:, 1] + b[:, 3]) / 2, b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]], 1)
    raise ValueError(f"Expected a box format in ('xyxy', 'xywh', 'cxcywh'). Received: {target!r}")


def iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU matrix `[len(a), len(b)]` of `xyxy` boxes."""
    a, b = np.asarray(a, np.float64).reshape(-1, 4), np.asarray(b, np.float64).reshape(-1, 4)
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.prod(np.clip(rb - lt, 0, None), axis=2)
    area_a = np.prod(a[:, 2:] - a[:, :2], axis=1)
    area_b = np.prod(b[:, 2:] - b[:, :2], axis=1)
    union = area_a[:, None] + area_b[None, :] - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


# --- COCO-style metrics ----------------------------------------------------------------


def _area(boxes: np.ndarray) -> np.ndarray:
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    return (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])


def _match(gt: np.ndarray, pred: np.ndarray, scores: np.ndarray, threshold: float,
           gt_ignore: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """COCO's greedy matching in one image: each prediction, best score first,
    takes the unmatched ground truth it overlaps most (>= threshold); a real
    match beats a match to an ignored ground truth.

    Returns:
        Per prediction (in `scores` order given): 1 true positive, 0 false
        positive, -1 matched an ignored box; and per ground truth, matched or not.
    """
    order = np.argsort(-scores, kind="stable")
    result = np.zeros(len(pred), np.int8)
    taken = np.zeros(len(gt), bool)
    overlaps = iou(pred, gt) if len(gt) and len(pred) else np.zeros((len(pred), len(gt)))
    for i in order:
        best, best_j = threshold, -1
        for j in np.argsort(gt_ignore, kind="stable"):  # Real boxes before ignored ones.
            if taken[j]:
                continue
            if best_j >= 0 and not gt_ignore[best_j] and gt_ignore[j]:
                break
            if overlaps[i, j] < best:
                continue
            best, best_j = overlaps[i, j], j
        if best_j >= 0:
            taken[best_j] = True
            result[i] = -1 if gt_ignore[best_j] else 1
    return result, taken


def average_precision(tp: np.ndarray, scores: np.ndarray, n_gt: int) -> float:
    """COCO's 101-point interpolated AP from per-prediction TP flags and scores."""
    if n_gt == 0:
        return float("nan")
    if len(tp) == 0:
        return 0.0
    order = np.argsort(-scores, kind="stable")
    tp = tp[order].astype(np.float64)
    ctp, cfp = np.cumsum(tp), np.cumsum(1 - tp)
    recall = ctp / n_gt
    precision = ctp / np.maximum(ctp + cfp, 1e-12)
    precision = np.maximum.accumulate(precision[::-1])[::-1]  # The precision envelope.
    points = np.searchsorted(recall, np.linspace(0, 1, 101), side="left")
    return float(np.mean([precision[p] if p < len(precision) else 0.0 for p in points]))


def detection_metrics(
    truth: Sequence[tuple[np.ndarray, np.ndarray]],
    predictions: Sequence[tuple[np.ndarray, np.ndarray, np.ndarray]],
    class_names: Sequence[str],
) -> dict:
    """COCO-style AP over a set of images.

    Args:
        truth: per image, `(boxes xyxy [n, 4], classes [n])`.
        predictions: per image, `(boxes xyxy [m, 4], scores [m], classes [m])`.
        class_names: one name per class id.

    Returns:
        `ap50` (mean over classes present in the truth), `map` (mean over IoU
        0.5:0.05:0.95 too), `ap75`, `recall50` (share of true boxes matched at
        IoU 0.5 at any score), per-class `ap50_by_class`, and `ap50_small`,
        `ap50_medium`, `ap50_large` (COCO area bins; other sizes ignored, as in
        COCO; NaN when a bin has no true box).
    """
    thresholds = np.round(np.arange(0.5, 0.96, 0.05), 2)
    ranges = {"all": (0, float("inf")), **SIZES}
    ap = {r: np.full((len(thresholds), len(class_names)), np.nan) for r in ranges}
    found = total = 0
    for c in range(len(class_names)):
        for rname, (lo, hi) in ranges.items():
            for ti, t in enumerate(thresholds):
                if rname != "all" and t != 0.5:
                    continue
                flags, scores, n_gt = [], [], 0
                for (gb, gc), (pb, ps, pc) in zip(truth, predictions):
                    g = np.asarray(gb).reshape(-1, 4)[np.asarray(gc) == c]
                    sel = np.asarray(pc) == c
                    p, s = np.asarray(pb).reshape(-1, 4)[sel], np.asarray(ps)[sel]
                    area = _area(g)
                    ignore = (area < lo) | (area >= hi)
                    result, taken = _match(g, p, s, t, ignore)
                    # Unmatched predictions outside the size bin are not counted either.
                    outside = (_area(p) < lo) | (_area(p) >= hi)
                    keep = (result != -1) & ~((result == 0) & outside)
                    flags.append(result[keep] == 1)
                    scores.append(s[keep])
                    n_gt += int((~ignore).sum())
                    if rname == "all" and t == 0.5:
                        found += int(taken.sum())
                        total += len(g)
                if n_gt:
                    ap[rname][ti, c] = average_precision(np.concatenate(flags), np.concatenate(scores), n_gt)

    def mean(x):
        x = x[~np.isnan(x)]
        return float(x.mean()) if len(x) else float("nan")

    return {
        "ap50": mean(ap["all"][0]),
        "ap75": mean(ap["all"][5]),
        "map": mean(ap["all"]),
        "recall50": found / total if total else float("nan"),
        "ap50_by_class": {class_names[c]: float(ap["all"][0, c]) for c in range(len(class_names))
                          if not np.isnan(ap["all"][0, c])},
        **{f"ap50_{r}": mean(ap[r][0]) for r in SIZES},
        "n": len(truth),
        "boxes": total,
    }


def save_pr_curves(truth: Sequence[tuple[np.ndarray, np.ndarray]],
                   predictions: Sequence[tuple[np.ndarray, np.ndarray, np.ndarray]],
                   class_names: Sequence[str], out_dir: Path | None) -> None:
    """`pr_curves.png`: precision-recall at IoU 0.5, one curve per class present (nothing when `out_dir` is None)."""
    from suite.metrics import plot_pr, precision_recall

    if out_dir is None:
        return
    curves = {}
    for c, name in enumerate(class_names):
        flags, scores, n_gt = [], [], 0
        for (gb, gc), (pb, ps, pc) in zip(truth, predictions):
            g = np.asarray(gb).reshape(-1, 4)[np.asarray(gc) == c]
            sel = np.asarray(pc) == c
            s = np.asarray(ps)[sel]
            result, _ = _match(g, np.asarray(pb).reshape(-1, 4)[sel], s, 0.5, np.zeros(len(g), bool))
            flags.append(result == 1)
            scores.append(s)
            n_gt += len(g)
        if n_gt:
            curves[f"{name} ({n_gt} boxes)"] = precision_recall(np.concatenate(flags).astype(float),
                                                                np.concatenate(scores), n_gt)
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    plot_pr(curves, "Precision-recall at IoU 0.5", Path(out_dir) / "pr_curves.png")


# --- Loaders for common box formats ----------------------------------------------------


def read_voc(xml_path: Path) -> tuple[tuple[int, int], list[tuple[str, list[float]]]]:
    """A Pascal VOC annotation: `((height, width), [(name, [x1, y1, x2, y2]), ...])`.

    VOC coordinates are 1-based pixel indices; they are returned 0-based, with
    the max corner exclusive (x2 = xmax), so widths are xmax - xmin + 1.
    """
    root = ET.parse(xml_path).getroot()
    size = root.find("size")
    hw = (int(size.findtext("height") or 0), int(size.findtext("width") or 0)) if size is not None else (0, 0)
    objects = []
    for obj in root.iter("object"):
        box = obj.find("bndbox")
        coords = [box.findtext(k) for k in ("xmin", "ymin", "xmax", "ymax")] if box is not None else []
        if len(coords) != 4 or not all(coords):  # An object without a whole box has nothing to learn from.
            continue
        x1, y1, x2, y2 = (float(c or 0) for c in coords)
        objects.append(((obj.findtext("name") or "").strip(), [x1 - 1, y1 - 1, x2, y2]))
    return hw, objects


def find_data_yaml(data: Path, nested: bool = True) -> list[Path]:
    """The YOLO dataset yaml `--data` points at: the file itself (what Ultralytics
    users pass), else `data.yaml` in the folder (or, with `nested`, one level
    down), else the folder's other `*.yaml`/`*.yml` files (`coco128.yaml`, say)."""
    data = Path(data)
    if data.is_file():
        return [data] if data.suffix.lower() in (".yaml", ".yml") else []
    if not data.is_dir():
        return []
    found = sorted(data.glob("data.yaml")) + (sorted(data.glob("*/data.yaml")) if nested else [])
    return found or sorted(p for p in data.iterdir() if p.suffix.lower() in (".yaml", ".yml") and p.is_file())


def read_data_yaml(path: Path) -> dict:
    """A YOLO `data.yaml`, parsed with PyYAML's `safe_load`.

    Raises:
        UserError: when the file is not YAML or not a mapping.
    """
    import yaml

    try:
        data = yaml.safe_load(Path(path).read_text(errors="replace"))
    except yaml.YAMLError as e:
        raise UserError(f"Expected a YAML file at {path}. Received: a file YAML cannot parse ({e}).") from None
    if not isinstance(data, dict):
        raise UserError(f"Expected a mapping (`names:`, `train:` ...) in {path}. Received: {type(data).__name__}.")
    return data


def read_yaml_names(path: Path) -> list[str]:
    """Class names from a YOLO `data.yaml`, in class-id order.

    `names` may be a list (`[person, excavator]`, or a block of `- name`
    lines) or a mapping of ids to names (`{0: person, 1: excavator}`, as
    Ultralytics writes); with `nc` only, names are the ids as text.
    """
    data = read_data_yaml(path)
    names = data.get("names")
    if isinstance(names, dict):
        try:
            ids = {int(k): str(v) for k, v in names.items()}
        except (TypeError, ValueError):
            raise UserError(f"Expected `names:` ids 0, 1, ... in {path}. Received: {list(names)}.") from None
        return [ids.get(i, str(i)) for i in range(max(ids) + 1)] if ids else []
    if isinstance(names, (list, tuple)):
        return [str(n) for n in names]
    if isinstance(data.get("nc"), int):
        return [str(i) for i in range(data["nc"])]
    raise UserError(f"Expected `names:` (a list or an id: name mapping) in {path}. Received: {names!r}.")


def _lookup(mapping: dict[str, str] | None, name: str) -> str:
    """`name` renamed by `mapping` (keys compared without case or outer spaces)."""
    if not mapping:
        return name
    low = {k.strip().lower(): v for k, v in mapping.items()}
    return low.get(name.strip().lower(), name)


def label_path(image: Path) -> Path:
    """Where a YOLO label for `image` lives: Ultralytics' rule, the last `images`
    folder in the path swapped for `labels` (`images/train/a.jpg` ->
    `labels/train/a.txt`, `train/images/a.jpg` -> `train/labels/a.txt`); a
    path without an `images` folder keeps its labels beside the image."""
    parts = list(Path(image).parts)
    if "images" in parts[:-1]:
        i = len(parts) - 2 - parts[:-1][::-1].index("images")
        parts[i] = "labels"
    return Path(*parts).with_suffix(".txt")


def read_yolo(images: Path | Sequence[Path], names: Sequence[str], mapping: dict[str, str] | None,
              class_names: Sequence[str], report: DataReport) -> Detections:
    """One YOLO split: an image folder (searched recursively) or a list of image
    files, each with its label file where `label_path` says.

    Lines are `class cx cy w h`, normalised to the image; `mapping` renames
    the set's class names onto `class_names` (case-insensitive); names that
    end up outside `class_names` are dropped. Images whose label file is
    missing are kept with no boxes (YOLO's background images); the number of
    label files found is in `report.counts["label files"]`.
    """
    out = Detections([], [], [], [], [])
    if isinstance(images, (str, Path)):
        if not Path(images).is_dir():
            return out
        files: Sequence[Path] = _image_files(Path(images))
    else:
        files = [Path(p) for p in images]
    for path, w, h in usable_images(files, report):
        label = label_path(path)
        boxes, classes = [], []
        if label.exists():
            report.counts["label files"] = report.counts.get("label files", 0) + 1
            for n, line in enumerate(label.read_text(errors="replace").splitlines(), 1):
                parts = line.split()
                if not parts:
                    continue
                try:
                    cid, cx, cy, bw, bh = int(parts[0]), *map(float, parts[1:5])
                except (ValueError, TypeError):
                    report.note(label, f"bad line: {n}: {line!r}, expected `class cx cy w h`")
                    continue
                if not 0 <= cid < len(names):
                    report.note(label, f"bad class: {cid} on line {n}, expected 0-{len(names) - 1}")
                    continue
                if not all(np.isfinite([cx, cy, bw, bh])) or bw <= 0 or bh <= 0:
                    report.note(label, f"bad box: line {n}: {line!r}, expected finite cx cy and w, h > 0")
                    continue
                name = _lookup(mapping, names[cid])
                if name not in class_names:
                    continue
                boxes.append([(cx - bw / 2) * w, (cy - bh / 2) * h, (cx + bw / 2) * w, (cy + bh / 2) * h])
                classes.append(class_names.index(name))
        out.paths.append(str(path))
        out.sizes.append((h, w))
        out.boxes.append(np.clip(np.array(boxes, np.float32).reshape(-1, 4), 0, [w, h, w, h]))
        out.classes.append(np.array(classes, np.int32))
        out.extra.append({})
    return out


def _image_files(folder: Path) -> list[Path]:
    """The images below `folder`, at any depth (Ultralytics globs recursively), sorted."""
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)


def _yaml_root(yaml_path: Path, data: dict) -> Path:
    """The folder split paths are relative to: the yaml's `path:` key (absolute,
    or relative to the yaml's folder) when it exists on disk, else the yaml's folder."""
    base = Path(yaml_path).parent
    raw = data.get("path")
    if isinstance(raw, str) and raw.strip():
        for candidate in (Path(raw), base / raw):
            if candidate.is_dir():
                return candidate.resolve()
    return base


def _split_images(value: Any, root: Path, roots: Sequence[Path]) -> list[Path] | Path | None:
    """One split's images from its yaml value: a folder, a `.txt` list of images,
    or a list of either; None when nothing named exists."""
    if isinstance(value, (list, tuple)):
        found = [_split_images(v, root, roots) for v in value]
        files = [f for part in found if part is not None for f in (_image_files(part) if isinstance(part, Path) else part)]
        return files or None
    if not isinstance(value, str) or not value.strip():
        return None
    parts = [q for q in value.replace("\\", "/").split("/") if q and q != "."]
    candidates = [Path(value), root / value] + ([root / Path(*parts)] if parts else [])
    # Sets moved from another machine (even with Windows paths such as `F://set//train//images`): the last
    # two parts under the yaml's folder and its subfolders.
    candidates += [r / Path(*parts[-2:]) for r in roots] if len(parts) >= 2 else []
    for c in candidates:
        if c.suffix == ".txt" and c.is_file():  # Ultralytics: one image path per line, relative to the root.
            lines = [ln.strip() for ln in c.read_text(errors="replace").splitlines() if ln.strip()]
            return [Path(ln) if Path(ln).is_absolute() else root / ln for ln in lines]
        if c.is_dir():
            return c.resolve()
    return None


def yolo_split_dirs(yaml_path: Path) -> dict[str, list[Path] | Path]:
    """The images of each split a YOLO `data.yaml` names (`train`, `val`, `test`).

    Split values are folders, `.txt` image lists or lists of them, relative to
    the yaml's `path:` (or the yaml's folder), tried as written (Roboflow
    writes `../train/images`), then by their last two parts under the root
    and its subfolders, then the usual `train|valid|test/images` and
    `images/train|val|test` folders.
    """
    yaml_path = Path(yaml_path)
    data = read_data_yaml(yaml_path)
    root = _yaml_root(yaml_path, data)
    roots = list(dict.fromkeys([root, yaml_path.parent, *sorted(p for p in root.iterdir() if p.is_dir())]))
    found: dict[str, list[Path] | Path] = {}
    for split, folders in (("train", ("train",)), ("val", ("valid", "val")), ("test", ("test",))):
        value = data.get(split) if data.get(split) is not None else (data.get("valid") if split == "val" else None)
        hit = _split_images(value, root, roots)
        if hit is None:
            usual = [r / f / "images" for r in roots for f in folders] + [r / "images" / f for r in roots
                                                                          for f in folders]
            hit = next((c.resolve() for c in usual if c.is_dir()), None)
        if hit is not None and hit not in found.values():
            found[split] = hit
    return found


def read_yolo_set(yaml_path: Path, class_names: Sequence[str], mapping: dict[str, str] | None,
                  report: DataReport) -> dict[str, Detections]:
    """Every split a YOLO `data.yaml` names that exists on disk, read with `read_yolo`.

    Raises:
        UserError: when images load but not one label file is found: the
            labels are somewhere the loader does not look, and training on
            box-less images would teach the model that nothing is there.
    """
    names = read_yaml_names(yaml_path)
    splits = yolo_split_dirs(yaml_path)
    parts = {split: read_yolo(images, names, mapping, class_names, report) for split, images in splits.items()}
    n_images = sum(len(p) for p in parts.values())
    if n_images and not report.counts.get("label files"):
        where = sorted({str(label_path(Path(p)).parent) for part in parts.values() for p in part.paths[:1]})
        raise UserError(f"Expected YOLO label files (one .txt per image) for the {n_images} images of {yaml_path}. "
                        f"Received: none; looked in {where} (the last `images` folder of each image path swapped "
                        "for `labels`, or beside the image).")
    return parts


def merge(parts: Sequence[Detections]) -> Detections:
    """One `Detections` holding the examples of all `parts`, in order."""
    return Detections(*(sum((getattr(p, f.name) for p in parts), []) for f in dataclasses.fields(Detections)))


def split_examples(parts: dict[str, Detections], val_percent: int, test_percent: int) -> tuple[dict, str]:
    """`train`/`val`/`test`/`all` splits: the set's own when it has a val or test
    split, else a hash of each file name (stable when files are added).

    Returns:
        The splits and how they were made, in words.
    """
    everything = merge(list(parts.values()))
    if "val" in parts or "test" in parts:
        return {"train": parts.get("train", merge([])), "val": parts.get("val", parts.get("test")),
                "test": parts.get("test", parts.get("val")), "all": everything}, "the set's own split"
    split = hash_split([Path(p).stem for p in everything.paths], val_percent, test_percent)
    return ({s: everything.subset([i for i, t in enumerate(split) if t == s]) for s in ("train", "val", "test")}
            | {"all": everything}), "split by file name"


def read_coco(json_path: Path, image_dir: Path, class_names: Sequence[str],
              mapping: dict[str, str] | None, report: DataReport) -> Detections:
    """A COCO detection JSON (`images`, `annotations` with `bbox` xywh, `categories`)."""
    coco = json.loads(Path(json_path).read_text())
    categories = {c["id"]: c["name"] for c in coco.get("categories", [])}
    by_image: dict[int, list] = {}
    for a in coco.get("annotations", []):
        if a.get("iscrowd"):
            continue
        by_image.setdefault(a["image_id"], []).append(a)
    out = Detections([], [], [], [], [])
    for image in coco.get("images", []):
        path = Path(image_dir) / image["file_name"]
        report.read += 1
        problem = check_image_file(path) if path.exists() else "missing: no such file"
        if problem:
            report.skip(path, problem)
            continue
        boxes, classes = [], []
        for a in by_image.get(image["id"], []):
            name = _lookup(mapping, categories.get(a["category_id"], ""))
            if name in class_names:
                boxes.append(a["bbox"])
                classes.append(class_names.index(name))
        out.paths.append(str(path))
        out.sizes.append((int(image["height"]), int(image["width"])))
        out.boxes.append(convert(np.array(boxes, np.float32).reshape(-1, 4), "xywh").astype(np.float32))
        out.classes.append(np.array(classes, np.int32))
        out.extra.append({})
    return out


# --- tf.data for detectors ---------------------------------------------------------------


def letterbox(image: tf.Tensor, size: int) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """Resizes one `[h, w, 3]` image to fit `size x size` (aspect kept), padding
    bottom and right with grey.

    Returns:
        The float `[size, size, 3]` image in 0-255, the scale factor and the
        original `(h, w)`, to map boxes back to the original pixels.
    """
    hw = tf.cast(tf.shape(image)[:2], tf.float32)
    scale = size / tf.reduce_max(hw)
    new = tf.cast(tf.round(hw * scale), tf.int32)
    resized = tf.image.resize(tf.cast(image, tf.float32), new, antialias=True)
    padded = tf.image.pad_to_bounding_box(resized - 114.0, 0, 0, size, size) + 114.0
    return tf.clip_by_value(padded, 0.0, 255.0), scale, hw


def _box_area(q):
    """Areas of `[..., 4]` xyxy boxes (a tensor)."""
    return (q[..., 2] - q[..., 0]) * (q[..., 3] - q[..., 1])


def _load(path, boxes, classes, size: int):
    x, scale, _ = letterbox(decode_image(tf.io.read_file(path)), size)
    return x, boxes * scale, classes


def letterbox_mask(path: str | None, size: int) -> np.ndarray:
    """An instance mask (0 background, `k` the image's object `k`, 1-based) placed as `letterbox` places its
    image: resized by the nearest pixel (ids stay ids), padded with 0. No path: an empty mask."""
    from PIL import Image

    out = np.zeros((size, size), np.uint8)
    if path:
        with Image.open(path) as im:
            scale = size / max(im.height, im.width)
            # Rounded as `letterbox` rounds (half to even), so mask and image pixels line up.
            w, h = (max(1, int(np.round(v * scale))) for v in (im.width, im.height))
            out[:h, :w] = np.asarray(im.resize((w, h), Image.Resampling.NEAREST), np.uint8)
    return out


def mask_boxes(mask: tf.Tensor, k: int) -> tuple[tf.Tensor, tf.Tensor]:
    """The boxes of ids 1..`k` in a `[size, size]` instance mask: `(xyxy [k, 4], present [k])`,
    max exclusive; 0 where an id is absent."""
    hit = tf.equal(tf.cast(mask, tf.int32)[..., None], tf.range(1, k + 1))
    rows, cols = tf.reduce_any(hit, 1), tf.reduce_any(hit, 0)  # [size, k] each: which rows / columns an id fills.
    n = tf.cast(tf.shape(mask)[0], tf.float32)

    def first(a):
        return tf.cast(tf.argmax(tf.cast(a, tf.int32), 0), tf.float32)

    def end(a):
        return n - first(a[::-1])

    present = tf.reduce_any(rows, 0)
    boxes = tf.stack([first(cols), first(rows), end(cols), end(rows)], 1)
    return tf.where(present[:, None], boxes, 0.0), present


def copy_paste(target, source, max_boxes: int):
    """Simple Copy-Paste (Ghiasi et al. 2021) of two letterboxed examples `(x, mask, extent, boxes, classes)`
    (`extent`: the image's `(h, w)` inside the letterbox): each object of `source`, mirrored with it half of the
    time, is pasted into `target` with probability 1/2 where its mask is, at the same place. As in Ultralytics'
    copy-paste, an object that would cover 30% or more of a target box, or reach into the target's grey
    padding, is left out, so every target box stays visible. Mask id `k` is object `k` of `boxes`
    (Penn-Fudan's convention); an id without a box is never pasted.

    Returns:
        `(x, boxes, classes)`: the target's boxes first, then the pasted ones, the first `max_boxes` kept.
    """
    x, _, extent, b, c = target
    xs, ms, _, _, cs = source
    flip = tf.random.uniform([]) < 0.5
    xs, ms = tf.cond(flip, lambda: (xs[:, ::-1], ms[:, ::-1]), lambda: (xs, ms))
    boxes, present = mask_boxes(ms, max_boxes)

    lt = tf.maximum(boxes[:, None, :2], b[None, :, :2])
    rb = tf.minimum(boxes[:, None, 2:], b[None, :, 2:])
    inter = tf.reduce_prod(tf.maximum(rb - lt, 0.0), -1)  # [pasted, target]
    covers = tf.reduce_any((inter >= 0.3 * _box_area(b)[None]) & (c >= 0)[None], 1)
    extent = tf.cast(extent, tf.float32)
    inside = (boxes[:, 2] <= extent[1]) & (boxes[:, 3] <= extent[0])
    chosen = (present & (cs >= 0) & ~covers & inside & (_box_area(boxes) > 4.0)
              & (tf.random.uniform([max_boxes]) < 0.5))
    # Pixel -> pasted or not, by looking each (uint8) id up: 0 and ids past max_boxes are never pasted.
    lookup = tf.concat([[False], chosen, tf.zeros([256], tf.bool)], 0)
    alpha = tf.gather(lookup, tf.cast(ms, tf.int32))
    x = tf.where(alpha[..., None], xs, x)
    b = tf.concat([b, tf.where(chosen[:, None], boxes, -1.0)], 0)
    c = tf.concat([c, tf.where(chosen, cs, -1.0)], 0)
    order = tf.argsort(tf.cast(c >= 0, tf.int32), direction="DESCENDING", stable=True)[:max_boxes]
    return x, tf.gather(b, order), tf.gather(c, order)


def hsv_jitter(x, gain: float):
    """Random hue, saturation and value of one image in 0-255, at `gain` times
    YOLO's HSV gains (hue +-0.015 of the circle, saturation x 1 +- 0.7, value
    x 1 +- 0.4); boxes do not move."""
    x = x / 255.0
    x = tf.image.adjust_hue(x, tf.random.uniform([], -0.015, 0.015) * gain)
    x = tf.image.adjust_saturation(x, 1.0 + tf.random.uniform([], -0.7, 0.7) * gain)
    x = x * (1.0 + tf.random.uniform([], -0.4, 0.4) * gain)
    return tf.clip_by_value(x * 255.0, 0.0, 255.0)


def zoom_and_flip(x, b, c, size: int, scale: float, hsv: float = 0.0):
    """Box-aware augmentation of one letterboxed example: colour jitter
    (`hsv_jitter`, when `hsv` > 0), a horizontal flip, then a random zoom by
    1 +- `scale` with a random crop (zoom in) or grey pad (zoom out); boxes
    follow, and those left less than 40% inside the frame go."""
    s = size
    if hsv > 0:
        x = hsv_jitter(x, hsv)
    valid = c >= 0
    flip = tf.random.uniform([]) < 0.5
    x = tf.cond(flip, lambda: x[:, ::-1], lambda: x)
    b = tf.cond(flip, lambda: tf.stack([s - b[:, 2], b[:, 1], s - b[:, 0], b[:, 3]], 1), lambda: b)
    z = tf.random.uniform([], 1 - scale, 1 + scale)
    n = tf.cast(tf.round(s * z), tf.int32)
    x = tf.image.resize(x, [n, n])
    # Offset of the zoomed image in the frame: negative crops, positive pads.
    off = tf.random.uniform([2], tf.minimum(0, s - n), tf.maximum(0, s - n) + 1, dtype=tf.int32)
    pad = tf.maximum(off, 0)
    x = tf.image.pad_to_bounding_box(x - 114.0, pad[0], pad[1], tf.maximum(n, s) + pad[0],
                                     tf.maximum(n, s) + pad[1]) + 114.0
    x = tf.image.crop_to_bounding_box(x, tf.maximum(-off[0], 0), tf.maximum(-off[1], 0), s, s)
    shift = tf.cast(tf.stack([off[1], off[0], off[1], off[0]]), tf.float32)
    moved = b * tf.cast(n, tf.float32) / s + shift
    clipped = tf.clip_by_value(moved, 0.0, float(s))

    keep = valid & (_box_area(clipped) >= 0.4 * tf.maximum(_box_area(moved), 1e-6)) & (_box_area(clipped) > 4.0)
    return x, tf.where(keep[:, None], clipped, -1.0), tf.where(keep, c, -1.0)


def mosaic(parts, size: int, max_boxes: int):
    """Four letterboxed examples `(x, boxes, classes)` tiled 2 x 2, then a random
    square crop of 1 to 2 image sides resized to `size` (objects shrink by up to
    half); boxes follow and, as in `zoom_and_flip`, those left less than 40%
    inside go. The first `max_boxes` kept boxes are returned, padded with -1."""
    s = float(size)
    x = tf.concat([tf.concat([parts[0][0], parts[1][0]], 1), tf.concat([parts[2][0], parts[3][0]], 1)], 0)
    shifts = [(0.0, 0.0), (s, 0.0), (0.0, s), (s, s)]
    b = tf.concat([p[1] + tf.constant([dx, dy, dx, dy]) for p, (dx, dy) in zip(parts, shifts)], 0)
    c = tf.concat([p[2] for p in parts], 0)
    n = tf.random.uniform([], size, 2 * size + 1, dtype=tf.int32)
    off = tf.random.uniform([2], 0, 2 * size - n + 1, dtype=tf.int32)
    x = tf.image.resize(tf.image.crop_to_bounding_box(x, off[0], off[1], n, n), [size, size])
    k = s / tf.cast(n, tf.float32)
    moved = (b - tf.cast(tf.stack([off[1], off[0], off[1], off[0]]), tf.float32)) * k
    clipped = tf.clip_by_value(moved, 0.0, s)

    keep = (c >= 0) & (_box_area(clipped) >= 0.4 * tf.maximum(_box_area(moved), 1e-6)) & (_box_area(clipped) > 4.0)
    order = tf.argsort(tf.cast(keep, tf.int32), direction="DESCENDING", stable=True)[:max_boxes]
    keep = tf.gather(keep, order)
    return (x, tf.where(keep[:, None], tf.gather(clipped, order), -1.0),
            tf.where(keep, tf.gather(c, order), -1.0))


def box_dataset(examples: Detections, size: int, max_boxes: int, training: bool, batch_size: int,
                seed: int, aug_scale: float, mosaic_share: float = 0.0, hsv: float = 0.0,
                copy_paste_share: float = 0.0) -> tf.data.Dataset:
    """Letterboxed images with boxes padded to `max_boxes` (`classes` -1 where
    empty: keras-cv's dense format), decoded once and cached; when training, a
    `copy_paste_share` of them given objects of another image (`copy_paste`, from the
    instance masks at `extra[i]["mask"]`), colour-jittered by `hsv`, flipped and zoomed
    (`zoom_and_flip`), and a `mosaic_share` of them replaced by a `mosaic` of that image
    and three others drawn at random.

    Yields `(image float32 [size, size, 3] in 0-255, {"boxes": [max_boxes, 4]
    xyxy in letterboxed pixels, "classes": [max_boxes]})`.
    """
    boxes = np.full((len(examples), max_boxes, 4), -1, np.float32)
    classes = np.full((len(examples), max_boxes), -1, np.float32)
    for i, (b, c) in enumerate(zip(examples.boxes, examples.classes)):
        b, c = b[:max_boxes], c[:max_boxes]
        boxes[i, : len(b)], classes[i, : len(c)] = b, c
    ds = tf.data.Dataset.from_tensor_slices((np.array(examples.paths), boxes, classes))
    ds = ds.map(lambda p, b, c: _load(p, b, c, size), num_parallel_calls=tf.data.AUTOTUNE)
    pasting = training and copy_paste_share > 0
    if pasting:  # Masks letterboxed once, beside the images; the image's extent keeps pasted objects off the pad.
        extra = examples.extra if len(examples.extra) == len(examples) else [{}] * len(examples)
        masks = np.stack([letterbox_mask(e.get("mask"), size) for e in extra]) if len(examples) else (
            np.zeros((0, size, size), np.uint8))
        extents = np.array([np.round(np.array(hw) * size / max(max(hw), 1)) for hw in examples.sizes],
                           np.int32).reshape(-1, 2)
        ds = tf.data.Dataset.zip((ds, tf.data.Dataset.from_tensor_slices((masks, extents)))).map(
            lambda xbc, me: (xbc[0], me[0], me[1], xbc[1], xbc[2]))
    ds = cached = ds.cache()
    if training:
        # Every stream starts from the cached examples (`cached`: `ds` becomes the first augmented stream below, and
        # Mosaic's other three streams once drew from it, so their images were zoomed and flipped twice).
        def shuffled(k: int) -> tf.data.Dataset:
            return cached.shuffle(max(1, len(examples)), seed=seed + k, reshuffle_each_iteration=True)

        def augmented(k: int) -> tf.data.Dataset:
            stream = shuffled(k)
            if pasting:  # Each image's sources in an order of their own.
                def paste(target, source):
                    return tf.cond(tf.random.uniform([]) < copy_paste_share,
                                   lambda: copy_paste(target, source, max_boxes),
                                   lambda: (target[0], target[3], target[4]))

                stream = tf.data.Dataset.zip((stream, shuffled(100 + k))).map(paste,
                                                                              num_parallel_calls=tf.data.AUTOTUNE)
            return stream.map(lambda x, b, c: zoom_and_flip(x, b, c, size, aug_scale, hsv),
                              num_parallel_calls=tf.data.AUTOTUNE)

        ds = augmented(0)
        if mosaic_share > 0:  # Three other streams in their own orders: an epoch still has len(examples) images.
            def pick(*parts):
                return tf.cond(tf.random.uniform([]) < mosaic_share, lambda: mosaic(parts, size, max_boxes),
                               lambda: parts[0])

            ds = tf.data.Dataset.zip((ds, augmented(1), augmented(2), augmented(3))).map(
                pick, num_parallel_calls=tf.data.AUTOTUNE)
    ds = ds.map(lambda x, b, c: (x, {"boxes": b, "classes": c}))
    return ds.batch(batch_size).prefetch(tf.data.AUTOTUNE)


def dataset(examples: Detections, recipe: DetectionRecipe, training: bool, batch_size: int,
            class_names: list[str]) -> tf.data.Dataset:
    """A detection task's `dataset`: `box_dataset` sized by the recipe (copy-paste, colour, flip, zoom and Mosaic
    when training)."""
    return box_dataset(examples, recipe.image_size, recipe.max_boxes, training, batch_size, recipe.seed,
                       recipe.aug_scale, recipe.mosaic, recipe.hsv, recipe.copy_paste)


# --- The YOLOv8 detector ---------------------------------------------------------------


def build_model(recipe: DetectionRecipe, class_names: list[str]) -> keras.Model:
    """A detection task's `build_model`: YOLOv8 (keras-cv) sized by the recipe; boxes xyxy in letterboxed pixels."""
    from suite import kerascv  # Lazy: only commands that build or run a detector load keras-cv.

    return kerascv.yolo_detector(len(class_names), recipe.widths, recipe.depths, recipe.fpn_depth,
                                 recipe.iou_threshold, recipe.eval_confidence_threshold, recipe.eval_max_detections,
                                 backbone_preset=recipe.backbone_preset)


def compile_args(recipe: DetectionRecipe) -> dict[str, Any]:
    """A detection task's `compile_args`: YOLOv8's own losses."""
    from suite import kerascv

    return kerascv.yolo_compile_args()


def detect_fn(model: keras.Model, recipe: DetectionRecipe, class_names: list[str]) -> Callable[[tf.Tensor], dict]:
    """uint8 `[h, w, 3]` of any size -> boxes in its own pixels, scores, classes, names.

    NMS runs once, at the evaluation convention (`eval_confidence_threshold`,
    `eval_max_detections`); the serving outputs are its detections
    above `confidence_threshold`, the first `max_detections` by score. Greedy
    NMS keeps a box only against higher-scored ones, so these are exactly
    what NMS at the serving values would keep.

    Returns:
        A traceable function giving, for serving, `boxes` (`[max_detections,
        4]`, -1 padding), `scores`, `classes` (-1 padding), `class_names` and
        `num_detections`; and for evaluation (or a user's own threshold)
        `all_boxes` (`[eval_max_detections, 4]`), `all_scores`, `all_classes`
        and `num_all`.
    """
    from suite import kerascv

    names = tf.constant(list(class_names) + [""])

    def detect(pixels):
        x, scale, hw = letterbox(pixels, recipe.image_size)
        out = kerascv.detect(model, x[None], recipe.eval_confidence_threshold, recipe.eval_max_detections,
                             recipe.iou_threshold, flips=recipe.test_time_flips)
        boxes = out["boxes"][0] / scale
        boxes = tf.minimum(tf.maximum(boxes, 0.0), tf.stack([hw[1], hw[0], hw[1], hw[0]]))
        classes = tf.cast(out["classes"][0], tf.int32)
        scores = tf.cast(out["confidence"][0], tf.float32)
        n_all = tf.cast(out["num_detections"][0], tf.int32)
        valid = tf.range(tf.shape(classes)[0]) < n_all
        order = tf.argsort(tf.where(valid, scores, -1.0), direction="DESCENDING", stable=True)
        boxes, classes, scores = tf.gather(boxes, order), tf.gather(classes, order), tf.gather(scores, order)
        # The serving view: the leading detections above the serving threshold.
        served = valid & (scores > recipe.confidence_threshold)  # Strictly above, as TF's NMS score_threshold.
        n = tf.minimum(tf.reduce_sum(tf.cast(served, tf.int32)), recipe.max_detections)
        keep = tf.range(recipe.max_detections) < n
        pad = tf.maximum(recipe.max_detections - tf.shape(classes)[0], 0)
        head = lambda t, fill: tf.pad(t, [[0, pad]] + [[0, 0]] * (len(t.shape) - 1),  # noqa: E731
                                      constant_values=fill)[: recipe.max_detections]
        s_boxes, s_scores, s_classes = head(boxes, -1.0), head(scores, 0.0), head(classes, -1)
        return {
            "boxes": tf.where(keep[:, None], s_boxes, -1.0),
            "scores": tf.where(keep, s_scores, 0.0),
            "classes": tf.where(keep, s_classes, -1),
            "class_names": tf.gather(names, tf.where(keep, s_classes, len(class_names))),
            "num_detections": n,
            "all_boxes": tf.where(valid[:, None], boxes, -1.0),
            "all_scores": tf.where(valid, scores, 0.0),
            "all_classes": tf.where(valid, classes, -1),
            "num_all": n_all,
        }

    return detect


def convention(recipe: DetectionRecipe) -> str:
    """What a detection task's metrics say about the detections they scored (`detections_scored`)."""
    return (f"COCO convention: detections above confidence {recipe.eval_confidence_threshold:g}, up to "
            f"{recipe.eval_max_detections} per image (serving keeps > {recipe.confidence_threshold:g}, "
            f"up to {recipe.max_detections})")


def detect_all(model: Any, examples: Detections, make_detect: Callable[[], Callable[[tf.Tensor], dict]],
               keep: Callable[[dict, dict], None] | None = None) -> tuple[list, list]:
    """Runs a detector over every example: the evaluation loop of the detection tasks.

    Args:
        model: a Keras model (run through `make_detect()`, traced once) or a
            loaded export (its `serve_pixels`, the shipped graph).
        examples: the examples to detect on.
        make_detect: builds the task's detect function for a Keras model.
        keep: called with `(outputs, extra)` per example (outputs as numpy),
            for what a task reads beyond boxes.

    Returns:
        `truth` as `[(boxes, classes)]` and `predictions` as
        `[(boxes, scores, classes)]` per example (the `all_*` detections, at
        the evaluation convention; an export made before they existed gives
        its serving detections), for `detection_metrics`.
    """
    import keras

    detect = tf.function(make_detect(), reduce_retracing=True) if isinstance(model, keras.Model) \
        else model.serve_pixels
    truth, predictions = [], []
    rows = zip(examples.paths, examples.boxes, examples.classes)
    for i, (path, boxes, classes) in enumerate(progress(rows, total=len(examples), desc="detecting", unit="image")):
        out = detect(decode_image(tf.io.read_file(path)))
        prefix, count = ("all_", "num_all") if "num_all" in out else ("", "num_detections")
        n = int(out[count])
        predictions.append((out[prefix + "boxes"].numpy()[:n], out[prefix + "scores"].numpy()[:n],
                            out[prefix + "classes"].numpy()[:n]))
        truth.append((boxes, classes))
        if keep is not None:
            keep(out, examples.extra[i] if examples.extra else {})
    return truth, predictions


def detection_outputs(loaded: Any, data: bytes) -> tuple[np.ndarray, np.ndarray, list[str], dict]:
    """One image's bytes through an export's `serve_bytes`: boxes, scores and
    class names of the detections (padding dropped), and the raw outputs."""
    out = loaded.serve_bytes(tf.constant(data))
    n = int(out["num_detections"])
    names = [b.decode() for b in out["class_names"].numpy()[:n]]
    return out["boxes"].numpy()[:n], out["scores"].numpy()[:n], names, out


def draw_boxes(path: str | Path, out_path: Path, boxes: Sequence[tuple[list[float], str, tuple[int, int, int]]],
               width: int = 3, banner: tuple[str, tuple[int, int, int]] | None = None) -> Path:
    """Writes a copy of the image at `path` with labelled boxes drawn.

    Args:
        path: the input image.
        out_path: where the drawn copy goes (its folder is created).
        boxes: `(xyxy, label, outline colour)` per box to draw.
        width: outline width in pixels.
        banner: optional `(text, colour)` written in the top-left corner.

    Returns:
        `out_path`.
    """
    from PIL import Image, ImageDraw

    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    with Image.open(path) as opened:
        im = opened.convert("RGB")
    d = ImageDraw.Draw(im)
    for box, label, colour in boxes:
        d.rectangle(list(box), outline=colour, width=width)
        d.text((box[0] + width, box[1] + width - 1), label, fill=(255, 255, 0))
    if banner is not None:
        d.text((6, 4), banner[0], fill=banner[1])
    im.save(out_path)
    return out_path
