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
from suite.data import DataReport, check_image_file, decode_image, hash_split, take, usable_images
from suite.errors import UserError

if TYPE_CHECKING:
    import keras


@dataclasses.dataclass(frozen=True)
class DetectionRecipe(TrainRecipe):
    """Values every YOLOv8 detection task has; a task subclasses it and sets its own."""

    epochs: int = 50  # YOLOv8 from scratch keeps improving for tens of epochs.
    batch_size: int = 16
    learning_rate: float = 2e-3  # AdamW peak, warmup, cosine decay.
    warmup_epochs: int = 2  # Box losses spike early; a longer warmup keeps them stable.
    clipnorm: float = 10.0  # keras-cv's YOLOv8 examples clip the global norm at 10.
    early_stopping_patience: int = 10
    image_size: int = 224  # Letterboxed input side.
    widths: tuple[int, ...] = (16, 32, 64, 128)  # Backbone stages (~1M params with fpn_depth 1).
    depths: tuple[int, ...] = (1, 1, 1, 1)  # C2f blocks per stage.
    fpn_depth: int = 1
    # A keras-cv YOLOv8 backbone preset (a name such as yolo_v8_xs_backbone_coco, or a preset folder) that
    # replaces widths/depths with its own architecture and COCO-trained weights; `--from preset:NAME` sets it.
    backbone_preset: str = ""
    max_boxes: int = 16  # Padded boxes per training image.
    confidence_threshold: float = 0.05  # Low, so AP sees the whole ranking; the export returns these too.
    iou_threshold: float = 0.5  # NMS overlap (class-agnostic in keras-cv).
    max_detections: int = 30
    draw_threshold: float = 0.4  # Boxes counted and drawn by `suite predict`.
    aug_scale: float = 0.3  # Random zoom 1 +- this, then a random crop or pad.
    val_percent: int = 15  # Used only for sets without their own split.
    test_percent: int = 15


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
                   class_names: Sequence[str], out_dir: Path) -> None:
    """`pr_curves.png`: precision-recall at IoU 0.5, one curve per class present."""
    from suite.metrics import plot_pr, precision_recall

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


def read_yaml_names(path: Path) -> list[str]:
    """Class names from a YOLO `data.yaml` (`names: [...]`, or a `names:` mapping/list block)."""
    text = Path(path).read_text()
    lines = text.splitlines()
    for i, line in enumerate(lines):
        key, _, rest = line.partition(":")
        if key.strip() != "names":
            continue
        rest = rest.strip()
        if rest.startswith("["):  # A flow list, quoted or bare: [a, 'b c', "d"].
            block, j = rest, i
            while "]" not in block and j + 1 < len(lines):
                j += 1
                block += lines[j]
            inner = block[1 : block.index("]")]
            return [n.strip().strip("'\"") for n in inner.split(",") if n.strip()]
        names = []
        for follow in lines[i + 1 :]:
            if not follow.startswith((" ", "\t", "-")) or not follow.strip():
                break
            item = follow.strip().lstrip("-").strip()
            if ":" in item and item.split(":")[0].strip().isdigit():  # `0: person`
                item = item.split(":", 1)[1].strip()
            names.append(item.strip("'\""))
        return names
    raise UserError(f"Expected `names:` in {path}. Received: a data.yaml without class names.")


def _lookup(mapping: dict[str, str] | None, name: str) -> str:
    """`name` renamed by `mapping` (keys compared without case or outer spaces)."""
    if not mapping:
        return name
    low = {k.strip().lower(): v for k, v in mapping.items()}
    return low.get(name.strip().lower(), name)


def read_yolo(images: Path, names: Sequence[str], mapping: dict[str, str] | None,
              class_names: Sequence[str], report: DataReport) -> Detections:
    """One YOLO/Roboflow split: `.../images/*` with labels in the sibling `.../labels/*.txt`.

    Lines are `class cx cy w h`, normalised to the image; `mapping` renames
    the set's class names onto `class_names` (case-insensitive); names that
    end up outside `class_names` are dropped.
    """
    images = Path(images)
    labels = images.parent / "labels" if images.name == "images" else images
    out = Detections([], [], [], [], [])
    if not images.is_dir():
        return out
    for path, w, h in usable_images(images, report):
        label = labels / f"{path.stem}.txt"
        boxes, classes = [], []
        if label.exists():
            for n, line in enumerate(label.read_text().splitlines(), 1):
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


def _yaml_value(text: str, key: str) -> str | None:
    for line in text.splitlines():
        k, sep, v = line.partition(":")
        if sep and k.strip() == key and v.strip() and not v.strip().startswith("["):
            return v.strip().strip("'\"")
    return None


def yolo_split_dirs(yaml_path: Path) -> dict[str, Path]:
    """The image folder of each split a YOLO `data.yaml` names (`train`, `val`, `test`).

    Paths in the yaml are tried as written (relative to the yaml, as Roboflow
    writes `../train/images`), then by their last two parts under the yaml's
    folder and its subfolders (sets moved from another machine, even with
    Windows paths such as `F://set//train//images`), then the usual
    `train|valid|test/images` folders.
    """
    yaml_path = Path(yaml_path)
    base = yaml_path.parent
    text = yaml_path.read_text(errors="replace")
    roots = [base, *sorted(p for p in base.iterdir() if p.is_dir())]
    found: dict[str, Path] = {}
    for split, folders in (("train", ("train",)), ("val", ("valid", "val")), ("test", ("test",))):
        raw = _yaml_value(text, split) or (_yaml_value(text, "valid") if split == "val" else None)
        candidates = []
        if raw:
            parts = [q for q in raw.replace("\\", "/").split("/") if q and q not in (".",)]
            candidates += [base / raw, base / Path(*parts)] if parts else []
            candidates += [r / Path(*parts[-2:]) for r in roots] if len(parts) >= 2 else []
        candidates += [r / f / "images" for r in roots for f in folders]
        hit = next((c.resolve() for c in candidates if c.is_dir()), None)
        if hit is not None and hit not in found.values():
            found[split] = hit
    return found


def read_yolo_set(yaml_path: Path, class_names: Sequence[str], mapping: dict[str, str] | None,
                  report: DataReport) -> dict[str, Detections]:
    """Every split a YOLO `data.yaml` names that exists on disk, read with `read_yolo`."""
    names = read_yaml_names(yaml_path)
    return {split: read_yolo(images, names, mapping, class_names, report)
            for split, images in yolo_split_dirs(yaml_path).items()}


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


def _load(path, boxes, classes, size: int):
    x, scale, _ = letterbox(decode_image(tf.io.read_file(path)), size)
    return x, boxes * scale, classes


def zoom_and_flip(x, b, c, size: int, scale: float):
    """Box-aware augmentation of one letterboxed example: horizontal flip, then
    a random zoom by 1 +- `scale` with a random crop (zoom in) or grey pad (zoom
    out); boxes follow, and those left less than 40% inside the frame go."""
    s = size
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

    def area(q):
        return (q[:, 2] - q[:, 0]) * (q[:, 3] - q[:, 1])

    keep = valid & (area(clipped) >= 0.4 * tf.maximum(area(moved), 1e-6)) & (area(clipped) > 4.0)
    return x, tf.where(keep[:, None], clipped, -1.0), tf.where(keep, c, -1.0)


def box_dataset(examples: Detections, size: int, max_boxes: int, training: bool, batch_size: int,
                seed: int, aug_scale: float) -> tf.data.Dataset:
    """Letterboxed images with boxes padded to `max_boxes` (`classes` -1 where
    empty: keras-cv's dense format), decoded once and cached.

    Yields `(image float32 [size, size, 3] in 0-255, {"boxes": [max_boxes, 4]
    xyxy in letterboxed pixels, "classes": [max_boxes]})`.
    """
    boxes = np.full((len(examples), max_boxes, 4), -1, np.float32)
    classes = np.full((len(examples), max_boxes), -1, np.float32)
    for i, (b, c) in enumerate(zip(examples.boxes, examples.classes)):
        b, c = b[:max_boxes], c[:max_boxes]
        boxes[i, : len(b)], classes[i, : len(c)] = b, c
    ds = tf.data.Dataset.from_tensor_slices((np.array(examples.paths), boxes, classes))
    ds = ds.map(lambda p, b, c: _load(p, b, c, size), num_parallel_calls=tf.data.AUTOTUNE).cache()
    if training:
        ds = ds.shuffle(max(1, len(examples)), seed=seed, reshuffle_each_iteration=True)
        ds = ds.map(lambda x, b, c: zoom_and_flip(x, b, c, size, aug_scale), num_parallel_calls=tf.data.AUTOTUNE)
    ds = ds.map(lambda x, b, c: (x, {"boxes": b, "classes": c}))
    return ds.batch(batch_size).prefetch(tf.data.AUTOTUNE)


def dataset(examples: Detections, recipe: DetectionRecipe, training: bool, batch_size: int,
            class_names: list[str]) -> tf.data.Dataset:
    """A detection task's `dataset`: `box_dataset` sized by the recipe (flip and zoom when training)."""
    return box_dataset(examples, recipe.image_size, recipe.max_boxes, training, batch_size, recipe.seed,
                       recipe.aug_scale)


# --- The YOLOv8 detector ---------------------------------------------------------------


def build_model(recipe: DetectionRecipe, class_names: list[str]) -> keras.Model:
    """A detection task's `build_model`: YOLOv8 (keras-cv) sized by the recipe; boxes xyxy in letterboxed pixels."""
    from suite import kerascv  # Lazy: only commands that build or run a detector load keras-cv.

    return kerascv.yolo_detector(len(class_names), recipe.widths, recipe.depths, recipe.fpn_depth,
                                 recipe.iou_threshold, recipe.confidence_threshold, recipe.max_detections,
                                 backbone_preset=recipe.backbone_preset)


def compile_args(recipe: DetectionRecipe) -> dict[str, Any]:
    """A detection task's `compile_args`: YOLOv8's own losses."""
    from suite import kerascv

    return kerascv.yolo_compile_args()


def detect_fn(model: keras.Model, recipe: DetectionRecipe, class_names: list[str]) -> Callable[[tf.Tensor], dict]:
    """uint8 `[h, w, 3]` of any size -> boxes in its own pixels, scores, classes, names.

    Returns:
        A traceable function giving `boxes` (`[max_detections, 4]`, -1
        padding), `scores`, `classes` (-1 padding), `class_names` and
        `num_detections`, after letterboxing, YOLOv8 and NMS.
    """
    from suite import kerascv

    names = tf.constant(list(class_names) + [""])

    def detect(pixels):
        x, scale, hw = letterbox(pixels, recipe.image_size)
        out = kerascv.detect(model, x[None])
        boxes = out["boxes"][0] / scale
        boxes = tf.minimum(tf.maximum(boxes, 0.0), tf.stack([hw[1], hw[0], hw[1], hw[0]]))
        classes = tf.cast(out["classes"][0], tf.int32)
        n = tf.cast(out["num_detections"][0], tf.int32)
        valid = tf.range(tf.shape(classes)[0]) < n
        return {
            "boxes": tf.where(valid[:, None], boxes, -1.0),
            "scores": tf.where(valid, out["confidence"][0], 0.0),
            "classes": tf.where(valid, classes, -1),
            "class_names": tf.gather(names, tf.where(valid, classes, len(class_names))),
            "num_detections": n,
        }

    return detect


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
        `[(boxes, scores, classes)]`, per example, for `detection_metrics`.
    """
    import keras

    detect = tf.function(make_detect(), reduce_retracing=True) if isinstance(model, keras.Model) \
        else model.serve_pixels
    truth, predictions = [], []
    for i, (path, boxes, classes) in enumerate(zip(examples.paths, examples.boxes, examples.classes)):
        out = detect(decode_image(tf.io.read_file(path)))
        n = int(out["num_detections"])
        predictions.append((out["boxes"].numpy()[:n], out["scores"].numpy()[:n], out["classes"].numpy()[:n]))
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
