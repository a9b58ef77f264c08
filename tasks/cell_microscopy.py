"""Nuclei segmentation and abnormal-cell detection, Data Science Bowl 2018 style.

Run:

    suite train cell_microscopy          # makes datasets/cell_microscopy first if absent
    suite export cell_microscopy
    suite predict cell_microscopy some_image.png

Expected result with the default recipe on 2 CPU cores: F1 about 0.94 at IoU
0.5 (DSB score about 0.82) on the generated test split, in about 8 minutes end
to end, data generation included. On real DSB 2018 images the generated-data
model reaches F1 about 0.6; 100 real images bring it to about 0.83 (see
docs/benchmarks.md for the measured numbers).

Data: the loader reads the DSB 2018 / BBBC038 layout as downloaded:
`<id>/images/<id>.png` (RGBA, grey or RGB, any size) and one binary mask PNG per
nucleus in `<id>/masks/`. Optional per-nucleus classes come from
`nucleus_classes.csv` (`ImageId,MaskId,Class` with Class `normal` or
`atypical`; our extension) beside the image folders; sets without it are all
`normal`. Overlapping mask pixels go to the first mask, empty masks and
unreadable files are skipped; all are counted in the data report. Images are
split into train/val/test by a hash of their id.

Model: a U-Net predicting, per pixel, background / nucleus interior / nucleus
boundary (so touching nuclei separate) and the probability that the pixel's
nucleus is atypical. Instances: connected interiors are the seeds, grown into
the boundary ring; an instance is atypical when its mean atypical probability
passes a threshold. All of this runs in TensorFlow, so the export returns the
instance label map itself.
"""

from __future__ import annotations

import csv
import dataclasses
import zlib
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf
from PIL import Image

from suite import corruptions
from suite.config import TrainRecipe
from suite.data import DataReport, check_image_file, hash_split, single_image_endpoints
from suite.errors import UserError
from suite.metrics import usable_files
from suite.task import LoadedData, Task


@dataclasses.dataclass(frozen=True)
class Recipe(TrainRecipe):
    epochs: int = 30  # Val loss flattens near 25 on the generated set.
    batch_size: int = 8  # Crops per step; 128 px crops of a small U-Net.
    learning_rate: float = 2e-3  # AdamW peak, warmup and cosine decay.
    early_stopping_patience: int = 8
    crop: int = 128  # Training crop side; inference runs on whole images of any size.
    crops_per_image: int = 4  # Random crops per training image and epoch.
    widths: tuple[int, ...] = (16, 32, 64, 128)  # U-Net filters per level; 3 poolings.
    dropout: float = 0.1  # At the bottleneck only; segmentation nets overfit less than classifiers.
    boundary_px: int = 2  # Width of the boundary ring that separates touching nuclei.
    boundary_weight: float = 3.0  # Loss weight of boundary pixels: rare, but they make instances.
    fg_threshold: float = 0.5  # P(interior) + P(boundary) for a nucleus pixel.
    seed_threshold: float = 0.5  # P(interior) for an instance seed.
    min_area: int = 12  # Instances smaller than this (pixels) are noise.
    atypical_threshold: float = 0.5  # Mean P(atypical) over an instance.
    val_percent: int = 15  # Images (by id hash) for validation.
    test_percent: int = 15  # Images (by id hash) for test.


RECIPES = {
    "default": Recipe(),
    "smoke": Recipe(  # ~40 s on 40 images: proves the plumbing and that it segments.
        epochs=10, widths=(8, 16, 32), crop=96, crops_per_image=4, early_stopping_patience=10,
        learning_rate=3e-3,
    ),
}

CLASS_NAMES = ["normal", "atypical"]
CLASSES_CSV = "nucleus_classes.csv"
LAYOUT_HELP = (
    "the Data Science Bowl 2018 layout: DIR/<id>/images/<id>.png and DIR/<id>/masks/*.png "
    "(one binary mask per nucleus), optionally DIR/nucleus_classes.csv (ImageId,MaskId,Class). "
    "Make a sample with `suite data make cell_microscopy --out DIR` or download stage1_train from "
    "https://bbbc.broadinstitute.org/BBBC038"
)

# === Data ===


@dataclasses.dataclass
class Cells:
    """Images of one split, decoded once: pixels, instance maps and classes."""

    ids: list[str]
    paths: list[str]
    images: list[np.ndarray]  # uint8 [h, w, 3]
    instances: list[np.ndarray]  # int32 [h, w]; 0 background, 1..n nuclei
    classes: list[np.ndarray]  # int32 [n + 1]; class id per instance (index 0 unused)

    def __len__(self) -> int:
        return len(self.ids)

    def subset(self, keep: list[int]) -> Cells:
        return Cells(*([getattr(self, f.name)[i] for i in keep] for f in dataclasses.fields(self)))


def _read_png(path: Path, report: DataReport, mode: str) -> np.ndarray | None:
    problem = check_image_file(path)
    if problem:
        report.skip(path, problem)
        return None
    with Image.open(path) as image:
        return np.asarray(image.convert(mode))


def _read_classes(data_dir: Path, report: DataReport) -> dict[tuple[str, str], int]:
    path = data_dir / CLASSES_CSV
    if not path.exists():
        return {}
    table = {}
    with path.open(newline="") as f:
        for row in csv.DictReader(f):
            name = (row.get("Class") or "").strip()
            if name not in CLASS_NAMES:
                report.skip(path, f"bad class: {row}, expected Class in {CLASS_NAMES}")
                continue
            table[(row["ImageId"], Path(row["MaskId"]).stem)] = CLASS_NAMES.index(name)
    return table


def _read_image(folder: Path, classes: dict, report: DataReport) -> tuple | None:
    """One DSB image folder -> (id, path, pixels, instance map, instance classes)."""
    image_id = folder.name
    path = folder / "images" / f"{image_id}.png"
    report.read += 1
    pixels = _read_png(path, report, "RGB") if path.exists() else None
    if pixels is None:
        if not path.exists():
            report.skip(path, "missing: no images/<id>.png")
        return None
    instances = np.zeros(pixels.shape[:2], np.int32)
    kinds = [0]
    for mask_path in sorted((folder / "masks").glob("*.png")):
        report.read += 1
        mask = _read_png(mask_path, report, "L")
        if mask is None:
            continue
        if mask.shape != instances.shape:
            report.skip(mask_path, f"wrong size: {mask.shape}, expected {instances.shape}")
            continue
        on = mask > 127
        if not on.any():
            report.skip(mask_path, "empty mask: no nucleus pixel")
            continue
        taken = on & (instances > 0)
        if taken.any():
            report.note(mask_path, f"overlap: {int(taken.sum())} pixels kept by an earlier mask")
            on &= ~taken
            if not on.any():
                report.skip(mask_path, "overlap: every pixel belongs to an earlier mask")
                continue
        kinds.append(classes.get((image_id, mask_path.stem), 0))
        instances[on] = len(kinds) - 1
    return image_id, str(path), pixels, instances, np.array(kinds, np.int32)


def _find_root(data_dir: Path) -> Path | None:
    for root in (data_dir, data_dir / "stage1_train"):
        if root.is_dir() and any((p / "images").is_dir() for p in root.iterdir() if p.is_dir()):
            return root
    return None


def load_data(data_dir: Path, recipe: Recipe) -> LoadedData:
    """Reads a DSB 2018 style folder (also `DIR/stage1_train/`).

    Returns:
        `LoadedData` with `train`, `val`, `test` and `all` splits of `Cells`.

    Raises:
        UserError: when no such layout or no usable image is found.
    """
    data_dir = Path(data_dir)
    root = _find_root(data_dir) if data_dir.is_dir() else None
    if root is None:
        found = sorted(p.name for p in data_dir.iterdir())[:8] if data_dir.is_dir() else "nothing (no such folder)"
        raise UserError(f"Expected {LAYOUT_HELP}. Received: {data_dir} holding {found}.")
    report = DataReport()
    classes = _read_classes(root, report) or _read_classes(data_dir, report)
    rows = [r for p in sorted(root.iterdir()) if (p / "images").is_dir()
            if (r := _read_image(p, classes, report)) is not None]
    if not rows:
        raise UserError(f"Expected {LAYOUT_HELP}. Received: {root} with no usable image ({report.summary()}).")
    everything = Cells(*(list(column) for column in zip(*rows)))
    split = hash_split(everything.ids, recipe.val_percent, recipe.test_percent)
    splits = {s: everything.subset([i for i, t in enumerate(split) if t == s]) for s in ("train", "val", "test")}
    splits["all"] = everything
    labelled = "with nucleus classes" if classes else "all nuclei one class"
    return LoadedData(splits, list(CLASS_NAMES), report, f"DSB 2018 layout ({labelled}; split by image id)")


def targets(instances: np.ndarray, kinds: np.ndarray, boundary_px: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-pixel training targets from an instance map.

    Returns:
        `seg` uint8 (0 background, 1 interior, 2 boundary: nucleus pixels
        within `boundary_px` of another label or the background) and
        `atypical` uint8 (1 where the pixel's nucleus is atypical).
    """
    from scipy import ndimage

    size = 2 * boundary_px + 1
    grown = ndimage.maximum_filter(instances, size=size, mode="nearest")
    shrunk = -ndimage.maximum_filter(-instances, size=size, mode="nearest")
    inside = instances > 0
    edge = inside & ((grown != instances) | (shrunk != instances))
    seg = np.where(inside, np.where(edge, 2, 1), 0).astype(np.uint8)
    return seg, (kinds[instances] == 1).astype(np.uint8) * inside


def _arrays(examples: Cells, recipe: Recipe) -> list[tuple]:
    return [(image, *targets(inst, kinds, recipe.boundary_px))
            for image, inst, kinds in zip(examples.images, examples.instances, examples.classes)]


def _crop(image, seg, aty, y, x, c):
    return image[y : y + c, x : x + c], seg[y : y + c, x : x + c], aty[y : y + c, x : x + c]


def _pad_to(a: np.ndarray, c: int) -> np.ndarray:
    h, w = a.shape[:2]
    pad = [(0, max(0, c - h)), (0, max(0, c - w))] + [(0, 0)] * (a.ndim - 2)
    return np.pad(a, pad, mode="reflect" if a.ndim == 3 else "constant") if (h < c or w < c) else a


def dataset(examples: Cells, recipe: Recipe, training: bool, batch_size: int, class_names: list[str]) -> tf.data.Dataset:
    """Crops of `recipe.crop` pixels: random ones with flips, rotations and
    intensity jitter for training; a fixed grid (up to 4 per image) otherwise.

    Yields `(image float32 [c, c, 3] in 0-255, {"segmentation": uint8 [c, c],
    "atypical": uint8 [c, c, 1] (+1 channel: the nucleus mask)})`.
    """
    c = recipe.crop
    arrays = [tuple(_pad_to(a, c) for a in t) for t in _arrays(examples, recipe)]
    spec = (tf.TensorSpec([c, c, 3], tf.uint8), tf.TensorSpec([c, c], tf.uint8), tf.TensorSpec([c, c], tf.uint8))

    if training:
        n = len(arrays) * recipe.crops_per_image
        epoch = [0]

        def gen():
            rng = np.random.default_rng(recipe.seed + epoch[0])
            epoch[0] += 1
            for i in rng.permutation(n) % len(arrays):
                image, seg, aty = arrays[i]
                h, w = seg.shape
                y, x = int(rng.integers(0, h - c + 1)), int(rng.integers(0, w - c + 1))
                parts = _crop(image, seg, aty, y, x, c)
                k, flip = int(rng.integers(4)), bool(rng.integers(2))
                parts = [np.rot90(p, k) for p in parts]
                yield tuple(np.ascontiguousarray(p[:, ::-1] if flip else p) for p in parts)

        ds = tf.data.Dataset.from_generator(gen, output_signature=spec)
        ds = ds.apply(tf.data.experimental.assert_cardinality(n))
    else:
        crops = []
        for image, seg, aty in arrays:
            h, w = seg.shape
            for y in sorted({0, h - c}):
                for x in sorted({0, w - c}):
                    crops.append(_crop(image, seg, aty, y, x, c))
        ds = tf.data.Dataset.from_tensor_slices(tuple(np.stack(p) for p in zip(*crops)))

    def to_xy(image, seg, aty):
        x = tf.cast(image, tf.float32)
        return x, {"segmentation": seg, "atypical": tf.stack([aty, tf.cast(seg > 0, tf.uint8)], -1)}

    def jitter(x, y):  # Per-crop gain, offset and noise: stains and exposures vary.
        b = tf.shape(x)[0]
        gain = tf.random.uniform([b, 1, 1, 1], 0.7, 1.3)
        offset = tf.random.uniform([b, 1, 1, 1], -20.0, 20.0)
        noise = tf.random.normal(tf.shape(x)) * tf.random.uniform([b, 1, 1, 1], 0.0, 8.0)
        return tf.clip_by_value(x * gain + offset + noise, 0.0, 255.0), y

    ds = ds.map(to_xy, num_parallel_calls=tf.data.AUTOTUNE).batch(batch_size)
    if training:
        ds = ds.map(jitter, num_parallel_calls=tf.data.AUTOTUNE)
    return ds.prefetch(tf.data.AUTOTUNE)


# --- Sample data: fluorescence, brightfield and stained-tissue nuclei ----------------

STYLES = ("fluorescence", "tissue", "brightfield")


def _nucleus(rng: np.random.Generator, atypical: bool, mitotic: bool, scale: float) -> tuple[np.ndarray, np.ndarray]:
    """A nucleus shape (bool mask) and its chromatin texture (0-1), in a local box."""
    from scipy import ndimage

    if mitotic:  # A metaphase plate: a dense, thin bar of chromatin.
        r, elong, thin = rng.uniform(6, 9), rng.uniform(1.8, 2.6), 0.4
    else:  # Atypical nuclei are enlarged.
        r, elong, thin = (rng.uniform(10, 16) if atypical else rng.uniform(5.5, 8.5)), rng.uniform(1.0, 1.35), 1.0
    r *= scale  # Magnification.
    half = int(np.ceil(r * elong * 1.3)) + 2
    yy, xx = np.mgrid[-half : half + 1, -half : half + 1].astype(np.float32)
    angle = rng.uniform(0, np.pi)
    u = (xx * np.cos(angle) + yy * np.sin(angle)) / elong
    v = (-xx * np.sin(angle) + yy * np.cos(angle)) / thin
    theta, dist = np.arctan2(v, u), np.hypot(u, v)
    # Contour: smooth for normal nuclei, irregular (lobed, notched) for atypical ones.
    amp = rng.uniform(0.12, 0.25) if atypical else rng.uniform(0.0, 0.05)
    edge = np.ones_like(theta)
    for k in range(2, 7):
        edge += amp / k**0.5 * rng.normal() * np.cos(k * theta + rng.uniform(0, 2 * np.pi))
    shape = dist < r * edge
    noise = rng.normal(size=shape.shape)
    if atypical:  # Coarse, clumped chromatin.
        texture = 0.55 + 0.45 * np.tanh(1.8 * ndimage.gaussian_filter(noise, 1.6) / 0.25)
    else:  # Fine, even chromatin.
        texture = 0.8 + 0.1 * ndimage.gaussian_filter(noise, 0.7) / 0.3
    return shape, np.clip(texture, 0, 1.2)


def render_image(rng: np.random.Generator, size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray, list[int]]:
    """One sample image: RGB uint8, instance map and class per instance (1-based)."""
    from scipy import ndimage

    h, w = size
    style = STYLES[int(rng.choice(3, p=[0.55, 0.3, 0.15]))]
    density = rng.uniform(0.4, 1.6)
    scale = float(rng.choice([rng.uniform(0.7, 1.0), rng.uniform(1.0, 1.8)]))  # Magnification.
    n = int(rng.integers(10, 60) * density * h * w / 256**2 / scale**2) + 3
    atypical_share = float(rng.choice([0.0, rng.uniform(0.05, 0.5)], p=[0.3, 0.7]))
    instances = np.zeros((h, w), np.int32)
    intensity = np.zeros((h, w), np.float32)
    kinds = []
    cluster = rng.uniform([0, 0], [h, w])  # Atypical cells tend to cluster.
    for _ in range(n * 3):
        if len(kinds) >= n:
            break
        atypical = rng.random() < atypical_share
        mitotic = atypical and rng.random() < 0.15
        shape, texture = _nucleus(rng, atypical, mitotic, scale)
        half = shape.shape[0] // 2
        cy, cx = (cluster + rng.normal(0, 35, 2)) if atypical and rng.random() < 0.6 else rng.uniform([0, 0], [h, w])
        cy, cx = int(np.clip(cy, 0, h - 1)), int(np.clip(cx, 0, w - 1))
        y0, x0 = cy - half, cx - half
        ys, xs = slice(max(0, y0), min(h, y0 + shape.shape[0])), slice(max(0, x0), min(w, x0 + shape.shape[1]))
        local = shape[ys.start - y0 : ys.stop - y0, xs.start - x0 : xs.stop - x0]
        if local.sum() < 15:
            continue
        overlap = (instances[ys, xs] > 0) & local
        if overlap.sum() > 0.12 * local.sum():  # Touching is common; stacking is not.
            continue
        local = local & ~overlap
        kinds.append(2 if atypical else 1)
        instances[ys, xs][local] = len(kinds)
        brightness = (rng.uniform(0.75, 1.0) if atypical else rng.uniform(0.45, 0.75))
        intensity[ys, xs][local] = (brightness * texture[ys.start - y0 : ys.stop - y0, xs.start - x0 : xs.stop - x0])[local]
    intensity = ndimage.gaussian_filter(intensity, rng.uniform(0.3, 1.3))  # Optics blur.
    yy, xx = np.mgrid[0:h, 0:w] / max(h, w)
    light = 1 + rng.uniform(-0.35, 0.35) * (yy - 0.5) + rng.uniform(-0.35, 0.35) * (xx - 0.5)
    texture_bg = ndimage.gaussian_filter(rng.normal(size=(h, w)), 3) * 2.5
    if style == "fluorescence":
        base = rng.uniform(0.01, 0.08) + 0.02 * texture_bg
        signal = (base + intensity * rng.uniform(0.5, 1.0)) * light
        color = np.array([1, 1, 1]) if rng.random() < 0.6 else np.array([0.25, 0.35, 1.0])
        rgb = signal[..., None] * color
        photons = rng.uniform(80, 400)
    else:
        paper = np.array([0.93, 0.78, 0.86]) if style == "tissue" else np.array([0.82, 0.82, 0.80])
        stain = np.array([0.55, 0.75, 0.35]) if style == "tissue" else np.array([0.55, 0.55, 0.5])
        eosin = (0.12 * (texture_bg > 0.4)) if style == "tissue" else 0.0  # Fibres and cytoplasm.
        absorb = intensity * rng.uniform(0.9, 1.3) + eosin * 0.5
        rgb = paper * np.exp(-absorb[..., None] * stain * 2.2) * light[..., None]
        photons = rng.uniform(150, 600)
    rgb = rng.poisson(np.clip(rgb, 0, 1) * photons) / photons  # Shot noise.
    return (np.clip(rgb, 0, 1) * 255).astype(np.uint8), instances, kinds


def make_data(out_dir: Path, size: int, seed: int) -> None:
    """Writes `size` images in the DSB 2018 layout, with `nucleus_classes.csv`.

    Images are RGBA PNGs like DSB's (alpha 255), mostly 256x256 with some
    320x256 and 256x384, so loaders and models meet mixed sizes.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(size):
        shape = [(256, 256), (256, 320), (384, 256)][int(rng.choice(3, p=[0.7, 0.15, 0.15]))]
        rgb, instances, kinds = render_image(rng, shape)
        image_id = f"{zlib.crc32(f'{seed}/{i}'.encode()):08x}{i:05d}"
        folder = out_dir / image_id
        (folder / "images").mkdir(parents=True, exist_ok=True)
        (folder / "masks").mkdir(exist_ok=True)
        rgba = np.concatenate([rgb, np.full(rgb.shape[:2] + (1,), 255, np.uint8)], -1)
        Image.fromarray(rgba, "RGBA").save(folder / "images" / f"{image_id}.png")
        for k, kind in enumerate(kinds, start=1):
            mask_id = f"{image_id}_{k:03d}"
            Image.fromarray(((instances == k) * 255).astype(np.uint8), "L").save(folder / "masks" / f"{mask_id}.png")
            rows.append((image_id, mask_id, CLASS_NAMES[kind - 1]))
    with (out_dir / CLASSES_CSV).open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["ImageId", "MaskId", "Class"])
        writer.writerows(rows)


# === Model ===


@keras.saving.register_keras_serializable(package="cell_microscopy")
class WeightedSegmentationLoss(keras.losses.Loss):
    """Cross-entropy over background / interior / boundary with per-class weights."""

    def __init__(self, weights=(1.0, 1.0, 3.0), name="weighted_segmentation", **kwargs):
        super().__init__(name=name, **kwargs)
        self.weights = tuple(float(w) for w in weights)

    def call(self, y_true, y_pred):
        y_true = keras.ops.cast(y_true, "int32")
        ce = keras.losses.sparse_categorical_crossentropy(y_true, y_pred)
        w = keras.ops.take(keras.ops.convert_to_tensor(self.weights), y_true)
        return keras.ops.sum(ce * w, axis=(1, 2)) / keras.ops.sum(w, axis=(1, 2))

    def get_config(self):
        return {**super().get_config(), "weights": self.weights}


@keras.saving.register_keras_serializable(package="cell_microscopy")
class MaskedBinaryCrossentropy(keras.losses.Loss):
    """Binary cross-entropy of the atypical map over nucleus pixels only.

    `y_true[..., 0]` is the target, `y_true[..., 1]` the nucleus mask.
    """

    def __init__(self, name="masked_bce", **kwargs):
        super().__init__(name=name, **kwargs)

    def call(self, y_true, y_pred):
        y_true = keras.ops.cast(y_true, "float32")
        target, mask = y_true[..., :1], y_true[..., 1:]
        bce = keras.ops.binary_crossentropy(target, y_pred)
        return keras.ops.sum(bce * mask, axis=(1, 2, 3)) / (keras.ops.sum(mask, axis=(1, 2, 3)) + 1.0)


def build_model(recipe: Recipe, class_names: list[str]) -> keras.Model:
    """A U-Net on RGB 0-255 of any size divisible by 2^(levels-1)."""
    inputs = keras.Input((None, None, 3), name="image")
    x = keras.layers.Rescaling(1 / 255.0)(inputs)
    # Per-image standardisation: fluorescence is dark-on-black, stains are dark-on-light.
    x = keras.layers.LayerNormalization(axis=(1, 2, 3), center=False, scale=False, name="standardise")(x)

    def block(x, width):
        for _ in range(2):
            x = keras.layers.Conv2D(width, 3, padding="same", use_bias=False)(x)
            x = keras.layers.BatchNormalization(momentum=0.9)(x)
            x = keras.layers.ReLU()(x)
        return x

    skips = []
    for width in recipe.widths[:-1]:
        x = block(x, width)
        skips.append(x)
        x = keras.layers.MaxPooling2D()(x)
    x = keras.layers.Dropout(recipe.dropout)(block(x, recipe.widths[-1]))
    for width, skip in zip(reversed(recipe.widths[:-1]), reversed(skips)):
        x = keras.layers.UpSampling2D()(x)
        x = block(keras.layers.Concatenate()([x, skip]), width)
    seg = keras.layers.Conv2D(3, 1, activation="softmax", name="segmentation")(x)
    atypical = keras.layers.Conv2D(1, 1, activation="sigmoid", name="atypical")(x)
    return keras.Model(inputs, {"segmentation": seg, "atypical": atypical}, name="cell_microscopy_unet")


def compile_args(recipe: Recipe) -> dict:
    return {
        "loss": {"segmentation": WeightedSegmentationLoss((1.0, 1.0, recipe.boundary_weight)),
                 "atypical": MaskedBinaryCrossentropy()},
        "loss_weights": {"segmentation": 1.0, "atypical": 0.5},
    }


# --- Instances, in TensorFlow (shared by evaluation and the export) ---------------


def connected_components(mask: tf.Tensor, max_iterations: int = 1024) -> tf.Tensor:
    """8-connected components of a bool `[h, w]` mask: int32 labels, 0 outside.

    Every pixel starts with its own id; ids spread by 3x3 max-pooling inside the
    mask until nothing changes (iterations ~ the longest path in a component).
    """
    h, w = tf.shape(mask)[0], tf.shape(mask)[1]
    on = tf.cast(mask, tf.float32)[None, :, :, None]
    ids = tf.reshape(tf.range(1, h * w + 1, dtype=tf.float32), [1, h, w, 1]) * on

    def step(i, ids, changed):
        new = tf.nn.max_pool2d(ids, 3, 1, "SAME") * on
        return i + 1, new, tf.reduce_any(new != ids)

    _, ids, _ = tf.while_loop(lambda i, ids, changed: changed & (i < max_iterations), step,
                              (tf.constant(0), ids, tf.constant(True)))
    return tf.cast(ids[0, :, :, 0], tf.int32)


def instances_from_maps(segmentation: tf.Tensor, atypical: tf.Tensor, recipe: Recipe) -> dict:
    """Instances from per-pixel probabilities of one image.

    Args:
        segmentation: float `[h, w, 3]`: background, interior, boundary.
        atypical: float `[h, w]`.
        recipe: thresholds, `min_area` and `boundary_px`.

    Returns:
        `instances` int32 `[h, w]` (0 background, 1..n in raster order),
        `instance_class` int32 `[n]` (0 normal, 1 atypical),
        `semantic` uint8 `[h, w]` (0 background, 1 normal, 2 atypical),
        `counts` int32 `[2]` and `num_nuclei` int32.
    """
    foreground = segmentation[..., 1] + segmentation[..., 2] > recipe.fg_threshold
    labels = connected_components(segmentation[..., 1] > recipe.seed_threshold)
    for _ in range(recipe.boundary_px + 1):  # Grow seeds over their boundary ring.
        grown = tf.cast(tf.nn.max_pool2d(tf.cast(labels, tf.float32)[None, :, :, None], 3, 1, "SAME")[0, :, :, 0],
                        tf.int32)
        labels = tf.where((labels == 0) & foreground, grown, labels)
    flat = tf.reshape(labels, [-1])
    # Consecutive ids in raster order, background first; then drop tiny ones.
    ids, index = tf.unique(tf.concat([[0], flat], 0))
    index = index[1:]
    area = tf.math.unsorted_segment_sum(tf.ones_like(index), index, tf.size(ids))
    keep = tf.logical_and(area >= recipe.min_area, ids != 0)
    new_id = tf.cumsum(tf.cast(keep, tf.int32)) * tf.cast(keep, tf.int32)
    flat = tf.gather(new_id, index)
    n = tf.reduce_sum(tf.cast(keep, tf.int32))
    mean_atypical = tf.math.unsorted_segment_sum(tf.reshape(atypical, [-1]), flat, n + 1) / tf.maximum(
        tf.cast(tf.math.unsorted_segment_sum(tf.ones_like(flat), flat, n + 1), tf.float32), 1.0)
    instance_class = tf.cast(mean_atypical[1:] > recipe.atypical_threshold, tf.int32)
    semantic = tf.gather(tf.concat([[0], instance_class + 1], 0), flat)
    return {
        "instances": tf.reshape(flat, tf.shape(labels)),
        "instance_class": instance_class,
        "semantic": tf.cast(tf.reshape(semantic, tf.shape(labels)), tf.uint8),
        "counts": tf.math.bincount(instance_class, minlength=2, maxlength=2),
        "num_nuclei": n,
    }


def _segment_fn(model: keras.Model, recipe: Recipe):
    """uint8 `[h, w, 3]` of any size -> instance outputs, padding to the U-Net's stride."""
    stride = 2 ** (len(recipe.widths) - 1)

    def segment(pixels):
        h, w = tf.shape(pixels)[0], tf.shape(pixels)[1]
        ph, pw = (-h) % stride, (-w) % stride
        # Mirror padding: nuclei cut by the border stay plausible (images need >= stride/2 px).
        x = tf.pad(tf.cast(pixels, tf.float32), [[0, ph], [0, pw], [0, 0]], mode="SYMMETRIC")[None]
        out = model(x, training=False)
        seg, aty = out["segmentation"][0, :h, :w], out["atypical"][0, :h, :w, 0]
        return instances_from_maps(seg, aty, recipe)

    return segment


# --- Metrics -----------------------------------------------------------------------


def match(true: np.ndarray, pred: np.ndarray) -> np.ndarray:
    """IoU matrix `[n_true, n_pred]` of two instance maps (0 is background)."""
    nt, npred = int(true.max()), int(pred.max())
    joint = np.bincount(true.ravel().astype(np.int64) * (npred + 1) + pred.ravel(),
                        minlength=(nt + 1) * (npred + 1)).reshape(nt + 1, npred + 1)
    inter = joint[1:, 1:].astype(np.float64)
    area_t, area_p = joint[1:, :].sum(1), joint[:, 1:].sum(0)
    union = area_t[:, None] + area_p[None, :] - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


def instance_scores(iou: np.ndarray) -> dict:
    """DSB 2018 score and F1 counts from an IoU matrix.

    The DSB score of an image is the mean over IoU thresholds 0.5, 0.55 ... 0.95
    of TP / (TP + FP + FN); above 0.5 a match is one-to-one, so TP counts the
    pairs above the threshold. An image with no nucleus and no prediction scores 1.
    """
    nt, npred = iou.shape
    if nt == 0 and npred == 0:
        return {"dsb": 1.0, "tp50": 0, "fp50": 0, "fn50": 0}
    precisions = []
    for t in np.arange(0.5, 1.0, 0.05):
        tp = int((iou > t).sum())
        precisions.append(tp / (nt + npred - tp))
    tp50 = int((iou > 0.5).sum())
    return {"dsb": float(np.mean(precisions)), "tp50": tp50, "fp50": npred - tp50, "fn50": nt - tp50}


def evaluate(model, examples: Cells, recipe: Recipe, class_names: list[str], out_dir: Path) -> dict:
    """F1 at IoU 0.5 (primary), DSB 2018 score, pixel Dice and IoU, count error,
    atypical recall and precision; `per_image.csv` in `out_dir`."""
    segment = tf.function(_segment_fn(model, recipe), reduce_retracing=True) if isinstance(model, keras.Model) \
        else model.serve_pixels
    rows, tp, fp, fn = [], 0, 0, 0
    inter = union = total = 0
    aty_true = aty_found = aty_pred = aty_pred_right = 0
    for image_id, image, true, kinds in zip(examples.ids, examples.images, examples.instances, examples.classes):
        out = segment(tf.constant(image))
        pred, pred_class = out["instances"].numpy(), out["instance_class"].numpy()
        iou = match(true, pred)
        s = instance_scores(iou)
        tp, fp, fn = tp + s["tp50"], fp + s["fp50"], fn + s["fn50"]
        t_fg, p_fg = true > 0, pred > 0
        inter, union, total = inter + (t_fg & p_fg).sum(), union + (t_fg | p_fg).sum(), total + t_fg.sum() + p_fg.sum()
        pairs = np.argwhere(iou > 0.5)  # (true index, pred index), zero-based.
        true_aty = kinds[1:] == 1
        aty_true += int(true_aty.sum())
        aty_found += int(sum(true_aty[i] and pred_class[j] == 1 for i, j in pairs))
        aty_pred += int((pred_class == 1).sum())
        aty_pred_right += int(sum(pred_class[j] == 1 and true_aty[i] for i, j in pairs))
        rows.append((image_id, int(true.max()), int(pred.max()), s["dsb"], s["tp50"], s["fp50"], s["fn50"]))
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    with (out_dir / "per_image.csv").open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["image_id", "true_nuclei", "predicted_nuclei", "dsb_score", "tp50", "fp50", "fn50"])
        writer.writerows(rows)
    true_n = np.array([r[1] for r in rows], float)
    pred_n = np.array([r[2] for r in rows], float)
    return {
        "n": len(rows),
        "f1_50": 2 * tp / max(1, 2 * tp + fp + fn),
        "dsb_score": float(np.mean([r[3] for r in rows])) if rows else 0.0,
        "precision_50": tp / max(1, tp + fp),
        "recall_50": tp / max(1, tp + fn),
        "pixel_dice": float(2 * inter / max(1, total)),
        "pixel_iou": float(inter / max(1, union)),
        "count_mae": float(np.abs(pred_n - true_n).mean()) if rows else 0.0,
        "count_relative_error": float((np.abs(pred_n - true_n) / np.maximum(true_n, 1)).mean()) if rows else 0.0,
        "nuclei": int(true_n.sum()),
        "atypical_nuclei": aty_true,
        "atypical_recall": aty_found / aty_true if aty_true else None,
        "atypical_precision": aty_pred_right / aty_pred if aty_pred else None,
    }


def slices(examples: Cells, class_names: list[str]) -> dict[str, list[str]]:
    """For the evaluation matrix: nuclei per image, the share of atypical ones, and
    the imaging mode (dark background: fluorescence; light: stains and brightfield)."""
    counts = [int(len(c) - 1) for c in examples.classes]
    share = [float((c[1:] == 1).mean()) if len(c) > 1 else 0.0 for c in examples.classes]
    return {
        "density": ["sparse (<20)" if n < 20 else "medium (20-49)" if n < 50 else "dense (>=50)" for n in counts],
        "atypical_share": ["none" if a == 0 else "some (<25%)" if a < 0.25 else "many (>=25%)" for a in share],
        "imaging": ["dark field" if float(im.mean()) < 100 else "bright field" for im in examples.images],
    }


def export_endpoints(model: keras.Model, recipe: Recipe, class_names: list[str]) -> dict:
    """One image of any size in (encoded bytes or uint8 pixels); masks and counts out."""
    segment = _segment_fn(model, recipe)

    def outputs(pixels):
        return {**segment(pixels), "class_names": tf.constant(list(class_names))}

    return single_image_endpoints(outputs)


def predict_files(loaded, paths: list[Path], class_names: list[str]) -> list[str]:
    """`file: N nuclei (normal a, atypical b)`, one line per file; bad files say why."""
    lines = []
    for path, data in usable_files(paths, check_image_file, "a PNG, JPEG, BMP or PPM image", lines):
        out = loaded.serve_bytes(tf.constant(data))
        counts = out["counts"].numpy()
        lines.append(f"{path}: {int(out['num_nuclei'])} nuclei ("
                     + ", ".join(f"{name} {int(c)}" for name, c in zip(class_names, counts)) + ")")
    return lines


TASK = Task(
    name="cell_microscopy",
    summary="Segment nuclei in microscopy images, separate touching ones, count them and flag atypical ones.",
    data_format="DSB 2018 / BBBC038: <id>/images/<id>.png + <id>/masks/*.png (one per nucleus); "
    "optional nucleus_classes.csv",
    model_summary="U-Net (4 levels, 16-128 filters): background/interior/boundary + atypical maps; "
    "instances by seeded growth in the graph",
    recipes=RECIPES,
    primary_metric="f1_50",
    higher_is_better=True,
    monitor="val_loss",
    sample_size=240,
    smoke_size=40,
    smoke_floor=0.3,
    make_data=make_data,
    load_data=load_data,
    dataset=dataset,
    build_model=build_model,
    compile_args=compile_args,
    evaluate=evaluate,
    export_endpoints=export_endpoints,
    predict_files=predict_files,
    corruptions=tuple(corruptions.IMAGE),  # All of them: noise, blur, light, contrast, JPEG, occlusion.
    slices=slices,
    known_limits=(
        "Generated images imitate DSB 2018 fluorescence, stained tissue and brightfield; other stains, "
        "magnifications, 3-D stacks and time-lapse are not represented.",
        "'Atypical' nuclei are drawn enlarged and irregular; real atypia is subtler, and this is no diagnostic device.",
        "Trained on generated images alone it reached F1@0.5 0.59 on real DSB images (0.83 when trained on real ones).",
    ),
)
