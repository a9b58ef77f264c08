"""Traffic sign classification, GTSRB style (43 German traffic sign classes).

Run:

    suite train traffic_signs            # makes datasets/traffic_signs first if absent
    suite export traffic_signs
    suite predict traffic_signs some_sign.ppm

Expected result with the default recipe on 2 CPU cores: about 98.5% accuracy
on the generated test split in about 7 minutes end to end, data generation
included (see docs/benchmarks.md for the measured numbers and for real GTSRB
images).

Data: the loader reads GTSRB's own layouts, so the real dataset works as
downloaded: `Final_Training/Images/000NN/*.ppm` with `GT-000NN.csv` and,
optionally, `Final_Test/Images/*.ppm` with `GT-final_test.csv`. Each image is
cropped to its ROI plus a margin. Without a test layout, whole tracks (one
physical sign, `TTTTT_FFFFF.ppm`) go to validation and test, so no sign is
seen in two splits. The generator renders all 43 classes procedurally and
writes them in that same layout.
"""

from __future__ import annotations

import csv
import dataclasses
import math
import zlib
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf
from PIL import Image, ImageDraw, ImageFilter, ImageFont

from suite import corruptions
from suite.config import TrainRecipe
from suite.data import DataReport, check_image_file, decode_image, pipeline, resize
from suite.errors import UserError
from suite.metrics import classification_compile_args, classifier_outputs, evaluate_classifier, predict_lines
from suite.task import LoadedData, Task


@dataclasses.dataclass(frozen=True)
class Recipe(TrainRecipe):
    epochs: int = 30  # Val accuracy plateaus near epoch 15; the low-rate cosine tail adds ~0.5%.
    early_stopping_patience: int = 10  # Long enough to reach that tail; stops runs that diverge.
    batch_size: int = 64  # Small batches regularise; 2 CPU cores run ~1,200 images/s.
    learning_rate: float = 3e-3  # AdamW peak; stable thanks to BatchNorm and warmup.
    image_size: int = 40  # At 32 px the errors left were numerals (20/30, 80/60); 40 costs 1.5x.
    widths: tuple[int, ...] = (32, 64, 128)  # Filters per conv block (two convs each).
    block_dropout: float = 0.1  # Light dropout after each block.
    dropout: float = 0.4  # Before the classifier: the main guard against overfitting.
    roi_margin: float = 0.1  # GTSRB's ROI excludes a ~10% border; keep some context.
    aug_rotation: float = 0.03  # Fraction of a full turn (about 11 degrees).
    aug_zoom: float = 0.12  # Signs appear at many distances.
    aug_shift: float = 0.08  # ROIs are not perfectly centred.
    aug_contrast: float = 0.3  # Night, glare and faded paint.
    aug_brightness: float = 0.3  # Fraction of the 0-255 range.
    val_percent: int = 10  # Share of training tracks held out for validation.
    test_percent: int = 20  # Share of tracks for test when there is no Final_Test.


RECIPES = {
    "default": Recipe(),
    "smoke": Recipe(  # ~10 s on 860 images; proves the plumbing and that it learns.
        epochs=12, batch_size=32, image_size=32, widths=(16, 32, 64), learning_rate=5e-3,
        dropout=0.2, block_dropout=0.0, early_stopping_patience=12,
    ),
}

# The official GTSRB class names, by ClassId.
CLASS_NAMES = [
    "Speed limit (20km/h)", "Speed limit (30km/h)", "Speed limit (50km/h)",
    "Speed limit (60km/h)", "Speed limit (70km/h)", "Speed limit (80km/h)",
    "End of speed limit (80km/h)", "Speed limit (100km/h)", "Speed limit (120km/h)",
    "No passing", "No passing for vehicles over 3.5 metric tons",
    "Right-of-way at the next intersection", "Priority road", "Yield", "Stop",
    "No vehicles", "Vehicles over 3.5 metric tons prohibited", "No entry",
    "General caution", "Dangerous curve to the left", "Dangerous curve to the right",
    "Double curve", "Bumpy road", "Slippery road", "Road narrows on the right",
    "Road work", "Traffic signals", "Pedestrians", "Children crossing",
    "Bicycles crossing", "Beware of ice/snow", "Wild animals crossing",
    "End of all speed and passing limits", "Turn right ahead", "Turn left ahead",
    "Ahead only", "Go straight or right", "Go straight or left", "Keep right",
    "Keep left", "Roundabout mandatory", "End of no passing",
    "End of no passing by vehicles over 3.5 metric tons",
]

# Each class as (plate, pictogram); the renderer below draws both.
SIGNS = [
    *[("prohibitory", f"text:{v}") for v in (20, 30, 50, 60, 70, 80)],
    ("end", "end80"), ("prohibitory", "text:100"), ("prohibitory", "text:120"),
    ("prohibitory", "no_passing"), ("prohibitory", "no_passing_trucks"),
    ("warning", "crossroads"), ("priority", ""), ("yield", ""), ("stop", ""),
    ("prohibitory", ""), ("prohibitory", "truck"), ("no_entry", ""),
    ("warning", "exclamation"), ("warning", "curve_left"), ("warning", "curve_right"),
    ("warning", "double_curve"), ("warning", "bumpy"), ("warning", "slippery"),
    ("warning", "narrows_right"), ("warning", "road_work"), ("warning", "signals"),
    ("warning", "pedestrian"), ("warning", "children"), ("warning", "bicycle"),
    ("warning", "snow"), ("warning", "deer"), ("end", "end_all"),
    ("mandatory", "turn_right"), ("mandatory", "turn_left"), ("mandatory", "ahead"),
    ("mandatory", "straight_right"), ("mandatory", "straight_left"),
    ("mandatory", "keep_right"), ("mandatory", "keep_left"), ("mandatory", "roundabout"),
    ("end", "end_no_passing"), ("end", "end_no_passing_trucks"),
]
assert len(SIGNS) == len(CLASS_NAMES) == 43

# === Data ===

GT_COLUMNS = ["Filename", "Width", "Height", "Roi.X1", "Roi.Y1", "Roi.X2", "Roi.Y2", "ClassId"]
LAYOUT_HELP = (
    "the GTSRB layout: DIR/Final_Training/Images/000NN/*.ppm with GT-000NN.csv "
    "(';'-separated: Filename;Width;Height;Roi.X1;Roi.Y1;Roi.X2;Roi.Y2;ClassId), "
    "optionally DIR/Final_Test/Images/*.ppm with GT-final_test.csv. Make a sample "
    "with `suite data make traffic_signs --out DIR` or download GTSRB from "
    "https://benchmark.ini.rub.de/gtsrb_dataset.html"
)


@dataclasses.dataclass
class Signs:
    """Examples of one split: image paths, ROIs, labels and track groups."""

    paths: np.ndarray  # str [n]
    rois: np.ndarray  # int32 [n, 4]: x1, y1, x2, y2 (inclusive)
    labels: np.ndarray  # int32 [n]
    groups: np.ndarray  # str [n]: "class/track"; one physical sign

    def __len__(self) -> int:
        return len(self.labels)

    def subset(self, mask: np.ndarray) -> Signs:
        return Signs(self.paths[mask], self.rois[mask], self.labels[mask], self.groups[mask])

    @staticmethod
    def concat(parts: list[Signs]) -> Signs:
        return Signs(*(np.concatenate([getattr(p, f.name) for p in parts]) for f in dataclasses.fields(Signs)))


def _read_gt(csv_path: Path, image_dir: Path, report: DataReport, group_prefix: str | None) -> list:
    """Rows of one GT csv whose image exists and decodes; the rest go to the report."""
    rows = []
    with csv_path.open(newline="") as f:
        reader = csv.DictReader(f, delimiter=";")
        missing = [c for c in GT_COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise UserError(
                f"Expected GT csv columns {';'.join(GT_COLUMNS)}. Received: {csv_path} "
                f"with columns {reader.fieldnames}, missing {missing}."
            )
        for row in reader:
            path = image_dir / row["Filename"]
            report.read += 1
            try:
                roi = [int(row[c]) for c in GT_COLUMNS[3:7]]
                label = int(row["ClassId"])
            except ValueError:
                report.skip(path, f"bad csv row: {dict(row)}")
                continue
            if not 0 <= label < len(CLASS_NAMES):
                report.skip(path, f"bad label: ClassId {label}, expected 0-42")
                continue
            if not path.exists():
                report.skip(path, "missing: listed in the GT csv but absent")
                continue
            problem = check_image_file(path)
            if problem:
                report.skip(path, problem)
                continue
            track = row["Filename"].split("_")[0] if group_prefix is None else group_prefix + row["Filename"]
            rows.append((str(path), roi, label, f"{label}/{track}"))
    return rows


def _signs(rows: list) -> Signs:
    if not rows:
        return Signs(np.array([], str), np.zeros((0, 4), np.int32), np.zeros(0, np.int32), np.array([], str))
    paths, rois, labels, groups = zip(*rows)
    return Signs(np.array(paths), np.array(rois, np.int32), np.array(labels, np.int32), np.array(groups))


def _find_root(data_dir: Path) -> Path | None:
    """Accepts the folder holding Final_Training, its parent (GTSRB/), or Images/."""
    for candidate in (data_dir, data_dir / "GTSRB"):
        if (candidate / "Final_Training" / "Images").is_dir():
            return candidate
    if data_dir.name == "Images" and data_dir.parent.name == "Final_Training":
        return data_dir.parent.parent
    return None


def load_data(data_dir: Path, recipe: Recipe) -> LoadedData:
    """Reads GTSRB's training and (optional) test layouts from `data_dir`.

    Args:
        data_dir: a folder holding `Final_Training/` (or `GTSRB/Final_Training/`).
        recipe: supplies `val_percent` and `test_percent`.

    Returns:
        `LoadedData` with `train`, `val`, `test` and `all` splits of `Signs`.

    Raises:
        UserError: when no GTSRB layout or no usable image is found.
    """
    data_dir = Path(data_dir)
    root = _find_root(data_dir)
    if root is None:
        found = sorted(p.name for p in data_dir.iterdir())[:8] if data_dir.is_dir() else "nothing (no such folder)"
        raise UserError(f"Expected {LAYOUT_HELP}. Received: {data_dir} holding {found}.")
    report = DataReport()
    train_rows = []
    for class_dir in sorted((root / "Final_Training" / "Images").iterdir()):
        gt = class_dir / f"GT-{class_dir.name}.csv"
        if class_dir.is_dir() and gt.exists():
            train_rows += _read_gt(gt, class_dir, report, None)
    test_rows = []
    test_images = root / "Final_Test" / "Images"
    for gt in (test_images / "GT-final_test.csv", root / "Final_Test" / "GT-final_test.csv", root / "GT-final_test.csv"):
        if gt.exists():
            # Test images are single frames: each is its own group.
            test_rows = _read_gt(gt, test_images, report, "test-")
            break
    if not train_rows and not test_rows:
        raise UserError(f"Expected {LAYOUT_HELP}. Received: {root} with no usable image ({report.summary()}).")
    train = _signs(train_rows)
    # Hash whole tracks into splits: frames of one physical sign never straddle splits.
    bucket = np.array([zlib.crc32(g.encode()) % 100 for g in train.groups], dtype=np.int64)
    val_mask = bucket < recipe.val_percent
    if test_rows:
        test, test_mask = _signs(test_rows), np.zeros(len(train), bool)
        layout = "GTSRB training + test layout"
    else:
        test_mask = (bucket >= recipe.val_percent) & (bucket < recipe.val_percent + recipe.test_percent)
        test = train.subset(test_mask)
        layout = "GTSRB training layout (val/test split by track)"
    splits = {
        "train": train.subset(~val_mask & ~test_mask),
        "val": train.subset(val_mask),
        "test": test,
        "all": Signs.concat([train, _signs(test_rows)]),
    }
    return LoadedData(splits, list(CLASS_NAMES), report, layout)


def crop_roi(image: tf.Tensor, roi: tf.Tensor, margin: float) -> tf.Tensor:
    """Crops `image` to `roi` (x1, y1, x2, y2, inclusive) grown by `margin` per side."""
    shape = tf.shape(image)
    roi = tf.cast(roi, tf.float32)
    pad_x = (roi[2] - roi[0] + 1.0) * margin
    pad_y = (roi[3] - roi[1] + 1.0) * margin
    x1 = tf.clip_by_value(tf.cast(tf.round(roi[0] - pad_x), tf.int32), 0, shape[1] - 1)
    y1 = tf.clip_by_value(tf.cast(tf.round(roi[1] - pad_y), tf.int32), 0, shape[0] - 1)
    x2 = tf.clip_by_value(tf.cast(tf.round(roi[2] + pad_x), tf.int32), x1, shape[1] - 1)
    y2 = tf.clip_by_value(tf.cast(tf.round(roi[3] + pad_y), tf.int32), y1, shape[0] - 1)
    return image[y1 : y2 + 1, x1 : x2 + 1]


def augmenter(recipe: Recipe) -> keras.Sequential:
    """Batched training augmentation. No flips: left and right arrows differ."""
    return keras.Sequential(
        [
            keras.layers.RandomRotation(recipe.aug_rotation, fill_mode="reflect"),
            keras.layers.RandomZoom(recipe.aug_zoom, fill_mode="reflect"),
            keras.layers.RandomTranslation(recipe.aug_shift, recipe.aug_shift, fill_mode="reflect"),
            keras.layers.RandomContrast(recipe.aug_contrast, value_range=(0, 255)),
            keras.layers.RandomBrightness(recipe.aug_brightness, value_range=(0, 255)),
        ]
    )


def dataset(
    examples: Signs, recipe: Recipe, training: bool, batch_size: int, class_names: list[str] = CLASS_NAMES
) -> tf.data.Dataset:
    """Batched `(pixels float32 [b, s, s, 3] in 0-255, class ids)`; GTSRB ids are fixed."""

    def decode(path, roi, label):
        image = crop_roi(decode_image(tf.io.read_file(path)), roi, recipe.roi_margin)
        return resize(image, recipe.image_size), label

    layers = augmenter(recipe)

    def augment(x, y):
        return layers(x, training=True), y

    ds = tf.data.Dataset.from_tensor_slices((examples.paths, examples.rois, examples.labels))
    return pipeline(ds, decode, training=training, batch_size=batch_size, seed=recipe.seed, augment=augment)


# --- Sample data: procedural GTSRB-like signs ---------------------------------
# Each sign is drawn at 128 px on a transparent canvas (plate + pictogram),
# then placed into cluttered scenes under random perspective, rotation, scale,
# lighting, blur, noise and occlusion, with a GTSRB-like ~10% border.

RED, BLUE, YELLOW, BLACK, WHITE, GREY = (200, 20, 30), (20, 70, 170), (250, 190, 20), (20, 20, 20), (245, 245, 240), (120, 120, 120)
S = 128  # Sign canvas size.


def _font(size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.load_default(size=size)


def _arrow(d: ImageDraw.ImageDraw, pts: list, width: int, fill, head: int = 16) -> None:
    """A polyline with a triangular head at its last point."""
    d.line(pts, fill=fill, width=width, joint="curve")
    (x0, y0), (x1, y1) = pts[-2], pts[-1]
    a = math.atan2(y1 - y0, x1 - x0)
    tip = (x1 + head * 0.6 * math.cos(a), y1 + head * 0.6 * math.sin(a))
    left = (x1 + head * math.cos(a + 2.4), y1 + head * math.sin(a + 2.4))
    right = (x1 + head * math.cos(a - 2.4), y1 + head * math.sin(a - 2.4))
    d.polygon([tip, left, right], fill=fill)


def _car(d, x, y, w, fill):
    h = w * 0.55
    d.rounded_rectangle([x, y + h * 0.35, x + w, y + h], radius=w * 0.1, fill=fill)
    d.polygon([(x + w * 0.18, y + h * 0.4), (x + w * 0.3, y), (x + w * 0.72, y), (x + w * 0.85, y + h * 0.4)], fill=fill)
    for cx in (x + w * 0.25, x + w * 0.75):
        d.ellipse([cx - w * 0.1, y + h * 0.85, cx + w * 0.1, y + h * 1.05], fill=fill)


def _truck(d, x, y, w, fill):
    h = w * 0.6
    d.rectangle([x, y, x + w * 0.68, y + h * 0.8], fill=fill)
    d.polygon([(x + w * 0.72, y + h * 0.25), (x + w * 0.9, y + h * 0.25), (x + w, y + h * 0.5), (x + w, y + h * 0.8), (x + w * 0.72, y + h * 0.8)], fill=fill)
    for cx in (x + w * 0.18, x + w * 0.5, x + w * 0.85):
        d.ellipse([cx - w * 0.08, y + h * 0.75, cx + w * 0.08, y + h * 0.95], fill=fill)


def _person(d, x, y, h, fill, stride=0.25):
    """A walking figure, head at (x, y), height h."""
    r = h * 0.1
    d.ellipse([x - r, y - r, x + r, y + r], fill=fill)
    hip = (x, y + h * 0.55)
    w = max(2, int(h * 0.09))
    d.line([(x, y + r), hip], fill=fill, width=w + 2)
    d.line([hip, (x - h * stride, y + h)], fill=fill, width=w)
    d.line([hip, (x + h * stride, y + h)], fill=fill, width=w)
    d.line([(x, y + h * 0.25), (x - h * 0.22, y + h * 0.45)], fill=fill, width=w)
    d.line([(x, y + h * 0.25), (x + h * 0.2, y + h * 0.5)], fill=fill, width=w)


def _pictogram(d: ImageDraw.ImageDraw, kind: str, color) -> None:
    """Draws the pictogram `kind` centred on the 128 px canvas."""
    c = S / 2
    if kind.startswith("text:"):
        text = kind[5:]
        size = 50 if len(text) == 2 else 38
        d.text((c, c + 2), text, fill=color, font=_font(size), anchor="mm", stroke_width=2, stroke_fill=color)
    elif kind == "end80":
        d.text((c, c + 2), "80", fill=GREY, font=_font(48), anchor="mm", stroke_width=2, stroke_fill=GREY)
        for k in (-8, 0, 8):
            d.line([(30 + k, 98 + k), (98 + k, 30 + k)], fill=(70, 70, 70), width=3)
    elif kind in ("no_passing", "end_no_passing"):
        left = RED if kind == "no_passing" else GREY
        _car(d, 30, 50, 32, left)
        _car(d, 66, 50, 32, BLACK if kind == "no_passing" else GREY)
    elif kind in ("no_passing_trucks", "end_no_passing_trucks"):
        _truck(d, 26, 50, 38, RED if kind == "no_passing_trucks" else GREY)
        _car(d, 68, 52, 32, BLACK if kind == "no_passing_trucks" else GREY)
    elif kind == "truck":
        _truck(d, 34, 46, 60, BLACK)
    elif kind == "crossroads":
        d.line([(c, 50), (c, 104)], fill=BLACK, width=10)
        d.line([(c - 22, 80), (c + 22, 80)], fill=BLACK, width=5)
    elif kind == "exclamation":
        d.line([(c, 52), (c, 88)], fill=BLACK, width=10)
        d.ellipse([c - 6, 94, c + 6, 106], fill=BLACK)
    elif kind in ("curve_left", "curve_right"):
        s = -1 if kind == "curve_left" else 1
        _arrow(d, [(c - 8 * s, 104), (c - 8 * s, 84), (c - 2 * s, 70), (c + 14 * s, 60)], 8, BLACK, 14)
    elif kind == "double_curve":
        d.line([(c + 8, 106), (c + 8, 94), (c - 10, 80), (c - 10, 70), (c + 6, 58)], fill=BLACK, width=8, joint="curve")
        _arrow(d, [(c - 10, 70), (c + 6, 56)], 8, BLACK, 12)
    elif kind == "bumpy":
        d.chord([34, 74, 64, 110], 180, 360, fill=BLACK)
        d.chord([64, 74, 94, 110], 180, 360, fill=BLACK)
        d.rectangle([32, 92, 96, 98], fill=BLACK)
    elif kind == "slippery":
        _car(d, 44, 52, 40, BLACK)
        for k in (0, 1):
            x = 50 + k * 22
            d.line([(x, 104), (x + 6, 96), (x - 2, 90), (x + 6, 82)], fill=BLACK, width=3)
    elif kind == "narrows_right":
        d.line([(c - 14, 106), (c - 14, 58)], fill=BLACK, width=7)
        d.line([(c + 16, 106), (c + 16, 86), (c + 4, 74), (c + 4, 58)], fill=BLACK, width=7)
    elif kind == "road_work":
        _person(d, c - 6, 62, 40, BLACK, 0.2)
        d.line([(c + 2, 84), (c + 18, 102)], fill=BLACK, width=4)
        d.polygon([(c + 8, 106), (c + 32, 106), (c + 22, 94)], fill=BLACK)
    elif kind == "signals":
        d.rectangle([c - 11, 50, c + 11, 108], fill=BLACK)
        for k, col in enumerate((RED, YELLOW, (20, 160, 60))):
            d.ellipse([c - 7, 54 + 18 * k, c + 7, 68 + 18 * k], fill=col)
    elif kind == "pedestrian":
        _person(d, c, 58, 46, BLACK)
    elif kind == "children":
        _person(d, c - 10, 62, 40, BLACK, 0.2)
        _person(d, c + 14, 72, 30, BLACK, 0.2)
    elif kind == "bicycle":
        for x in (c - 18, c + 18):
            d.ellipse([x - 13, 78, x + 13, 104], outline=BLACK, width=4)
        d.line([(c - 18, 91), (c - 4, 76), (c + 10, 76), (c + 18, 91), (c - 4, 76)], fill=BLACK, width=4)
        d.line([(c - 4, 76), (c + 2, 91)], fill=BLACK, width=4)
        d.ellipse([c + 2, 58, c + 12, 68], fill=BLACK)
    elif kind == "snow":
        for k in range(3):
            a = k * math.pi / 3
            dx, dy = 22 * math.cos(a), 22 * math.sin(a)
            d.line([(c - dx, 82 - dy), (c + dx, 82 + dy)], fill=BLACK, width=5)
    elif kind == "deer":
        d.ellipse([c - 20, 78, c + 16, 94], fill=BLACK)
        for x in (c - 16, c - 8, c + 6, c + 12):
            d.line([(x, 88), (x + 2, 106)], fill=BLACK, width=4)
        d.line([(c + 12, 84), (c + 22, 66)], fill=BLACK, width=6)
        d.ellipse([c + 16, 60, c + 30, 70], fill=BLACK)
        d.line([(c + 20, 62), (c + 16, 50), (c + 12, 46)], fill=BLACK, width=3)
        d.line([(c + 24, 62), (c + 30, 50), (c + 34, 48)], fill=BLACK, width=3)
    elif kind == "end_all":
        for k in range(-12, 13, 6):
            d.line([(28 + k, 100 + k), (100 + k, 28 + k)], fill=(60, 60, 60), width=3)
    elif kind in ("turn_right", "turn_left"):
        s = 1 if kind == "turn_right" else -1
        _arrow(d, [(c - 14 * s, 100), (c - 14 * s, 60), (c + 16 * s, 60)], 12, WHITE, 22)
    elif kind == "ahead":
        _arrow(d, [(c, 102), (c, 38)], 12, WHITE, 22)
    elif kind in ("straight_right", "straight_left"):
        s = 1 if kind == "straight_right" else -1
        _arrow(d, [(c - 8 * s, 104), (c - 8 * s, 36)], 10, WHITE, 18)
        _arrow(d, [(c - 8 * s, 82), (c + 4 * s, 70), (c + 24 * s, 70)], 10, WHITE, 18)
    elif kind in ("keep_right", "keep_left"):
        s = 1 if kind == "keep_right" else -1
        _arrow(d, [(c - 22 * s, 42), (c + 14 * s, 78)], 12, WHITE, 24)
    elif kind == "roundabout":
        for k in range(3):
            a0 = k * 2 * math.pi / 3
            pts = [(c + 26 * math.cos(a0 + t), c + 26 * math.sin(a0 + t)) for t in np.linspace(0, 1.5, 6)]
            _arrow(d, pts, 8, WHITE, 14)


def render_sign(class_id: int, rng: np.random.Generator) -> Image.Image:
    """The clean sign of `class_id` on a transparent 128 px canvas, colours jittered."""
    plate, picto = SIGNS[class_id]
    fade = rng.uniform(0.8, 1.0)  # Sun-bleached paint.

    def col(rgb):
        return tuple(int(np.clip(v * fade + (255 - 255 * fade) * 0.5 + rng.normal(0, 6), 0, 255)) for v in rgb)

    img = Image.new("RGBA", (S, S), (0, 0, 0, 0))
    d = ImageDraw.Draw(img)
    m, ring = 4, 15
    if plate in ("prohibitory", "end"):
        d.ellipse([m, m, S - m, S - m], fill=col(WHITE), outline=(90, 90, 90) if plate == "end" else col(RED),
                  width=ring if plate == "prohibitory" else 3)
    elif plate == "no_entry":
        d.ellipse([m, m, S - m, S - m], fill=col(RED), outline=col(WHITE), width=3)
        d.rectangle([26, S / 2 - 10, S - 26, S / 2 + 10], fill=col(WHITE))
    elif plate == "mandatory":
        d.ellipse([m, m, S - m, S - m], fill=col(BLUE), outline=col(WHITE), width=3)
    elif plate == "warning":
        tri = [(S / 2, 8), (S - 6, S - 14), (6, S - 14)]
        d.polygon(tri, fill=col(RED))
        inner = [(S / 2, 32), (S - 27, S - 25), (27, S - 25)]
        d.polygon(inner, fill=col(WHITE))
    elif plate == "yield":
        d.polygon([(6, 14), (S - 6, 14), (S / 2, S - 8)], fill=col(RED))
        d.polygon([(27, 25), (S - 27, 25), (S / 2, S - 32)], fill=col(WHITE))
    elif plate == "stop":
        pts = [(S / 2 + 60 * math.cos(math.pi / 8 + k * math.pi / 4), S / 2 + 60 * math.sin(math.pi / 8 + k * math.pi / 4)) for k in range(8)]
        d.polygon(pts, fill=col(WHITE))
        pts = [(S / 2 + 55 * math.cos(math.pi / 8 + k * math.pi / 4), S / 2 + 55 * math.sin(math.pi / 8 + k * math.pi / 4)) for k in range(8)]
        d.polygon(pts, fill=col(RED))
        d.text((S / 2, S / 2 + 1), "STOP", fill=col(WHITE), font=_font(32), anchor="mm", stroke_width=1, stroke_fill=col(WHITE))
    elif plate == "priority":
        d.polygon([(S / 2, 2), (S - 2, S / 2), (S / 2, S - 2), (2, S / 2)], fill=col(WHITE), outline=(60, 60, 60))
        d.polygon([(S / 2, 22), (S - 22, S / 2), (S / 2, S - 22), (22, S / 2)], fill=col(YELLOW))
    _pictogram(d, picto, col(BLACK))
    return img


def _background(rng: np.random.Generator, w: int, h: int) -> Image.Image:
    """Cluttered roadside: sky, foliage or facade colours, shapes, noise, blur."""
    palettes = [[(120, 160, 210), (70, 110, 60)], [(90, 100, 90), (150, 140, 120)],
                [(40, 50, 60), (100, 90, 80)], [(180, 180, 190), (60, 80, 50)], [(30, 30, 35), (70, 70, 80)]]
    top, bottom = (np.array(c, float) for c in palettes[rng.integers(len(palettes))])
    t = np.linspace(0, 1, h)[:, None, None]
    arr = (top * (1 - t) + bottom * t) * rng.uniform(0.6, 1.3) + rng.normal(0, 20, 3)
    arr = np.broadcast_to(arr, (h, w, 3)).copy()
    img = Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))
    d = ImageDraw.Draw(img)
    for _ in range(rng.integers(3, 12)):
        x, y = rng.integers(-w // 2, w, 2)
        sx, sy = rng.integers(w // 8 + 1, w, 2)
        color = tuple(int(v) for v in rng.integers(20, 230, 3))
        shape = rng.integers(3)
        if shape == 0:
            d.rectangle([x, y, x + sx, y + sy], fill=color)
        elif shape == 1:
            d.ellipse([x, y, x + sx, y + sy], fill=color)
        else:
            d.line([(x, y), (x + sx, y + sy)], fill=color, width=int(rng.integers(1, 5)))
    return img.filter(ImageFilter.GaussianBlur(rng.uniform(0.5, 2.5)))


def _perspective_coeffs(src: list, dst: list) -> list:
    """PIL PERSPECTIVE coefficients mapping output points `dst` to input points `src`."""
    a = []
    for (x, y), (u, v) in zip(dst, src):
        a.append([x, y, 1, 0, 0, 0, -u * x, -u * y])
        a.append([0, 0, 0, x, y, 1, -v * x, -v * y])
    return np.linalg.solve(np.array(a, float), np.array(src, float).reshape(8)).tolist()


def render_frame(sign: Image.Image, rng: np.random.Generator, size: int, track: dict) -> tuple[Image.Image, list]:
    """One GTSRB-like image of `sign` at about `size` px, and its ROI."""
    # Perspective: the sign seen from off-axis; corners pulled by the track's view.
    j = track["skew"]
    dst = [(j[0], j[1]), (S - j[2], j[3]), (S - j[4], S - j[5]), (j[6], S - j[7])]
    warped = sign.transform((S, S), Image.PERSPECTIVE, _perspective_coeffs([(0, 0), (S, 0), (S, S), (0, S)], dst), Image.BILINEAR)
    warped = warped.rotate(track["angle"] + rng.normal(0, 1.5), resample=Image.BILINEAR)
    bbox = warped.getbbox() or (0, 0, S, S)
    warped = warped.crop(bbox)
    sign_w = max(8, int(size * rng.uniform(0.92, 1.08)))
    sign_h = max(8, int(sign_w * warped.height / warped.width * rng.uniform(0.95, 1.05)))
    warped = warped.resize((sign_w, sign_h), Image.LANCZOS)
    # GTSRB: a border of about 10% (at least 5 px) around the sign.
    bx = max(5, int(round(sign_w * rng.uniform(0.08, 0.14))))
    by = max(5, int(round(sign_h * rng.uniform(0.08, 0.14))))
    w, h = sign_w + 2 * bx, sign_h + 2 * by
    ox, oy = bx + int(rng.integers(-2, 3)), by + int(rng.integers(-2, 3))
    ox, oy = int(np.clip(ox, 0, w - sign_w)), int(np.clip(oy, 0, h - sign_h))
    img = track["background"].resize((w, h), Image.BILINEAR)
    img.paste(warped, (ox, oy), warped)
    if track["occlude"]:  # A branch or pole across part of the sign.
        d = ImageDraw.Draw(img)
        x0 = ox + sign_w * rng.uniform(-0.2, 0.9)
        color = tuple(int(v) for v in rng.integers(20, 120, 3))
        d.polygon([(x0, oy - 5), (x0 + sign_w * 0.25, oy - 5), (x0 + sign_w * 0.35, h), (x0 + sign_w * 0.1, h)], fill=color)
    arr = np.asarray(img, np.float32)
    # Lighting: exposure, gamma, colour cast and a soft shadow gradient.
    gain = track["gain"] * rng.uniform(0.9, 1.1)
    gx = np.linspace(1 - track["shade"], 1 + track["shade"], w)[None, :, None]
    arr = 255 * np.clip(arr / 255 * gain * gx * track["cast"], 0, 1) ** track["gamma"]
    img = Image.fromarray(arr.astype(np.uint8))
    blur = track["blur"] + rng.uniform(0, 0.4) * size / 40
    if blur > 0.15:
        img = img.filter(ImageFilter.GaussianBlur(blur))
    arr = np.asarray(img, np.float32) + rng.normal(0, track["noise"], (h, w, 3))
    img = Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))
    return img, [ox, oy, ox + sign_w - 1, oy + sign_h - 1]


def _render_track(job: tuple) -> list:
    """Renders one track (one physical sign, several frames) and writes its PPMs."""
    seed, split, class_id, track_id, frames, out_dir, test_offset = job
    rng = np.random.default_rng([seed, split, class_id, track_id])
    sign = render_sign(class_id, rng)
    track = {
        "skew": rng.uniform(0, 14, 8) * rng.uniform(0, 1),
        "angle": rng.normal(0, 5),
        "background": _background(rng, 64, 64),
        "occlude": rng.random() < 0.12,
        "gain": rng.choice([rng.uniform(0.25, 0.6), rng.uniform(0.6, 1.4)], p=[0.3, 0.7]),
        "gamma": rng.uniform(0.7, 1.4),
        "cast": rng.uniform(0.85, 1.15, 3),
        "shade": rng.uniform(0, 0.3),
        "blur": rng.uniform(0, 0.8),
        "noise": rng.uniform(1, 9),
    }
    start, end = rng.uniform(18, 40), rng.uniform(45, 110)
    rows = []
    for f in range(frames):  # Like GTSRB tracks: the sign grows as the car approaches.
        size = int(start + (end - start) * f / max(1, frames - 1))
        img, roi = render_frame(sign, rng, size, track)
        name = f"{test_offset + f:05d}.ppm" if split else f"{track_id:05d}_{f:05d}.ppm"
        img.save(Path(out_dir) / name, format="PPM")
        rows.append([name, img.width, img.height, *roi, class_id])
    return rows


def _write_gt(path: Path, rows: list) -> None:
    with path.open("w", newline="") as f:
        writer = csv.writer(f, delimiter=";", lineterminator="\r\n")  # GTSRB's CRLF.
        writer.writerow(GT_COLUMNS)
        writer.writerows(rows)


def make_data(out_dir: Path, size: int, seed: int) -> None:
    """Writes about `size` training images (plus 20% test) in GTSRB's layouts.

    Training: `Final_Training/Images/000NN/TTTTT_FFFFF.ppm` with `GT-000NN.csv`,
    tracks of 5 frames per physical sign. Test: single frames of unseen signs
    in `Final_Test/Images/NNNNN.ppm` with `GT-final_test.csv`.
    """
    out_dir = Path(out_dir)
    frames = 5
    tracks = max(2, math.ceil(size / len(SIGNS) / frames))
    test_tracks = max(1, math.ceil(tracks * 0.2 * frames))  # One frame per unseen sign.
    jobs = []
    for c in range(len(SIGNS)):
        class_dir = out_dir / "Final_Training" / "Images" / f"{c:05d}"
        class_dir.mkdir(parents=True, exist_ok=True)
        jobs += [(seed, 0, c, t, frames, class_dir, 0) for t in range(tracks)]
    test_dir = out_dir / "Final_Test" / "Images"
    test_dir.mkdir(parents=True, exist_ok=True)
    n = 0
    for t in range(test_tracks):
        for c in range(len(SIGNS)):
            jobs.append((seed, 1, c, t, 1, test_dir, n))
            n += 1
    # One process: ~2 ms an image (20 s for the default set) does not pay for a
    # process pool, which would also re-import TensorFlow in every worker.
    results = [_render_track(job) for job in jobs]
    by_class: dict[int, list] = {}
    test_rows = []
    for job, rows in zip(jobs, results):
        (test_rows if job[1] else by_class.setdefault(job[2], [])).extend(rows)
    for c, rows in by_class.items():
        _write_gt(out_dir / "Final_Training" / "Images" / f"{c:05d}" / f"GT-{c:05d}.csv", rows)
    _write_gt(test_dir / "GT-final_test.csv", test_rows)


# === Model ===


def build_model(recipe: Recipe, class_names: list[str]) -> keras.Model:
    """A small VGG-style CNN: conv blocks, dropout, softmax over the classes."""
    inputs = keras.Input((recipe.image_size, recipe.image_size, 3), name="pixels")
    x = keras.layers.Rescaling(1 / 127.5, offset=-1)(inputs)
    for width in recipe.widths:
        for _ in range(2):
            x = keras.layers.Conv2D(width, 3, padding="same", use_bias=False)(x)
            x = keras.layers.BatchNormalization()(x)
            x = keras.layers.ReLU()(x)
        x = keras.layers.MaxPooling2D()(x)
        x = keras.layers.Dropout(recipe.block_dropout)(x)
    x = keras.layers.Flatten()(x)
    x = keras.layers.Dropout(recipe.dropout)(x)
    outputs = keras.layers.Dense(len(class_names), activation="softmax", name="probabilities")(x)
    return keras.Model(inputs, outputs, name="traffic_signs_cnn")


def _probabilities(model, examples: Signs, recipe: Recipe, class_names: list[str]) -> np.ndarray:
    """Class probabilities from a Keras model or through an export's pixel endpoint."""
    ds = dataset(examples, recipe, False, 256, class_names).map(lambda x, y: x)
    if isinstance(model, keras.Model):
        return model.predict(ds, verbose=0)
    # The shipped graph: uint8 pixels in, its own resize and softmax.
    return np.concatenate(
        [model.serve_pixels(tf.cast(tf.round(x), tf.uint8))["probabilities"].numpy() for x in ds]
    )


def evaluate(model, examples: Signs, recipe: Recipe, class_names: list[str], out_dir: Path) -> dict:
    """Accuracy (primary), macro-F1, per-class accuracy; confusion matrix CSV and PNG."""
    return evaluate_classifier(examples.labels, _probabilities(model, examples, recipe, class_names), class_names, out_dir)


def slices(examples: Signs, class_names: list[str]) -> dict[str, list[str]]:
    """For the evaluation matrix: the sign's plate family and its size in the camera image."""
    width = examples.rois[:, 2] - examples.rois[:, 0] + 1
    return {
        "sign_type": [SIGNS[CLASS_NAMES.index(class_names[y])][0] if class_names[y] in CLASS_NAMES else "other"
                      for y in examples.labels],
        "sign_size": ["small (<32 px)" if w < 32 else "medium (32-63 px)" if w < 64 else "large (>=64 px)"
                      for w in width],
    }


def export_endpoints(model: keras.Model, recipe: Recipe, class_names: list[str]) -> dict:
    """Encoded bytes (PPM, PNG, JPEG, BMP) or uint8 pixels of any size in."""
    size = recipe.image_size

    def outputs(x):
        return classifier_outputs(model(x, training=False), class_names, "class_name")

    def serve_bytes(images):
        x = tf.map_fn(
            lambda data: resize(decode_image(data), size),
            images,
            fn_output_signature=tf.TensorSpec([size, size, 3], tf.float32),
        )
        return outputs(x)

    def serve_pixels(pixels):
        return outputs(resize(pixels, size))

    return {
        "serve_bytes": (serve_bytes, [tf.TensorSpec([None], tf.string, name="images")]),
        "serve_pixels": (serve_pixels, [tf.TensorSpec([None, None, None, 3], tf.uint8, name="pixels")]),
    }


def predict_files(loaded, paths: list[Path], class_names: list[str]) -> list[str]:
    """`file: class name (class id) probability | next: runner-up`, one line per file."""
    return predict_lines(paths, check_image_file, loaded.serve_bytes, class_names, "a PPM, PNG, JPEG or BMP image")


TASK = Task(
    name="traffic_signs",
    summary="Classify a cropped traffic sign into the 43 GTSRB classes.",
    data_format="GTSRB: Final_Training/Images/000NN/*.ppm + GT-000NN.csv (ROI, ClassId); Final_Test optional",
    model_summary="VGG-style CNN (3 blocks, BatchNorm, dropout) on 40x40 RGB, ~0.43M params",
    recipes=RECIPES,
    primary_metric="accuracy",
    higher_is_better=True,
    monitor="val_accuracy",
    sample_size=8600,
    smoke_size=860,
    smoke_floor=0.25,  # Chance is 0.023; the smoke recipe reaches ~0.4-0.5.
    make_data=make_data,
    load_data=load_data,
    dataset=dataset,
    build_model=build_model,
    compile_args=classification_compile_args,
    evaluate=evaluate,
    export_endpoints=export_endpoints,
    predict_files=predict_files,
    corruptions=tuple(corruptions.IMAGE),  # All of them: noise, blur, light, contrast, JPEG, occlusion.
    slices=slices,
    known_limits=(
        "Generated signs are German (GTSRB) plates on synthetic backgrounds; other countries' signs, night "
        "scenes, rain and sensor artefacts are not represented.",
        "It classifies a given sign crop (the GTSRB ROI); it does not find signs in a scene.",
        "Corruptions are applied to the crop the export receives, not to the whole camera frame.",
    ),
)
