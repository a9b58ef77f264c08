"""Traffic sign classification, GTSRB style (43 German traffic sign classes).

Run:

    suite train traffic_signs            # makes datasets/traffic_signs first if absent
    suite export traffic_signs
    suite predict traffic_signs some_sign.ppm

Expected result with the default recipe on 2 CPU cores: the targets are at
least 98% accuracy on the generated test split and at most 10 minutes end to
end, data generation included; docs/benchmarks.md (`bench/run.py`, entries
`e2e` and `real`) has what was measured, on real GTSRB images too.

Data: the loader reads GTSRB's own layouts, so the real dataset works as
downloaded: `Final_Training/Images/000NN/*.ppm` with `GT-000NN.csv` and,
optionally, `Final_Test/Images/*.ppm` with `GT-final_test.csv`. Each image is
cropped to its ROI plus a margin. Without a test layout, whole tracks (one
physical sign, `TTTTT_FFFFF.ppm`) go to validation and test, so no sign is
seen in two splits. The generator (`tasks/samples/traffic_signs.py`) renders all 43 classes procedurally and
writes them in that same layout.
"""

from __future__ import annotations

import csv
import dataclasses
import zlib
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from suite import corruptions
from suite.config import TrainRecipe
from suite.data import DataReport, check_image_file, concat, decode_image, pipeline, resize, usable_images
from suite.errors import UserError
from suite.fetch import Remote, Source
from suite.layers import BatchNorm
from suite.metrics import (
    classification_compile_args,
    classifier_outputs,
    evaluate_classifier,
    predict_lines,
    refuse_drawing,
)
from suite.task import LoadedData, Task
from tasks import samples


@dataclasses.dataclass(frozen=True)
class Recipe(TrainRecipe):
    epochs: int = 30  # Val accuracy plateaus about halfway; the low-rate cosine tail still adds a little.
    early_stopping_patience: int = 10  # Long enough to reach that tail; stops runs that diverge.
    batch_size: int = 64  # Small batches regularise, and 2 CPU cores keep up with them.
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
    aug_saturation: float = 0.0  # Colour scaled by 1 +- this per image (0: off); faded paint, cheap sensors.
    aug_blur: float = 0.0  # Strength of a random Gaussian blur (0: off); focus and motion.
    val_percent: int = 10  # Share of training tracks held out for validation.
    test_percent: int = 20  # Share of tracks for test when there is no Final_Test.


RECIPES = {
    "default": Recipe(),
    "smoke": Recipe(  # The tests' run on 860 images: proves the plumbing and that it learns.
        epochs=12, batch_size=32, image_size=32, widths=(16, 32, 64), learning_rate=5e-3,
        dropout=0.2, block_dropout=0.0, early_stopping_patience=12,
        deterministic=True,  # Reproducible, so the tests' floors hold on every run.
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
    "the GTSRB layout: DIR/Final_Training/Images/000NN/*.ppm (or DIR/Training/000NN/) with GT-000NN.csv "
    "(';'-separated: Filename;Width;Height;Roi.X1;Roi.Y1;Roi.X2;Roi.Y2;ClassId), "
    "optionally DIR/Final_Test/Images/*.ppm with GT-final_test.csv. Make a sample "
    "with `suite data make traffic_signs --out DIR` or download GTSRB from "
    "https://benchmark.ini.rub.de/gtsrb_dataset.html"
)

# `suite data fetch traffic_signs`: the archives torchvision downloads, with the md5s it records
# (github.com/pytorch/vision, torchvision/datasets/gtsrb.py); the host publishes no checksums or sizes.
GTSRB_ARCHIVES = "https://sid.erda.dk/public/archives/daaeac0d7ce1152aea9b61d9f1e19370/"
SOURCES = (
    Source(
        name="gtsrb",
        title="GTSRB: final training images (re-packed GTSRB-Training_fixed.zip), final test images and "
              "their ground truth",
        files=(
            Remote(GTSRB_ARCHIVES + "GTSRB-Training_fixed.zip", None, None, "513f3c79a4c5141765e10e952eaa2478",
                   "md5 from torchvision/datasets/gtsrb.py"),
            Remote(GTSRB_ARCHIVES + "GTSRB_Final_Test_Images.zip", None, None, "c7e4e6327067d32654124b0fe9e82185",
                   "md5 from torchvision/datasets/gtsrb.py"),
            # GT-final_test.csv sits at the archive's top level; the loader reads it in GTSRB/.
            Remote(GTSRB_ARCHIVES + "GTSRB_Final_Test_GT.zip", None, None, "fe31e9c9270bbcd7b84b7f21a9d9d9e5",
                   "md5 from torchvision/datasets/gtsrb.py", into="GTSRB"),
        ),
        root="GTSRB",
        licence="research use; cite Stallkamp et al. 2012",
    ),
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


def _read_folder(class_dir: Path, report: DataReport) -> list:
    """A class folder without its GT csv: every image, labelled by the folder, whole image as ROI."""
    label = int(class_dir.name)
    return [(str(path), [0, 0, w - 1, h - 1], label, f"{label}/{path.name.split('_')[0]}")
            for path, w, h in usable_images(class_dir, report)]


def _train_images(root: Path) -> Path:
    """`Final_Training/Images` (the official archive) or `Training` (the re-packed
    GTSRB-Training_fixed.zip that torchvision downloads); both hold `000NN/` class folders."""
    official = root / "Final_Training" / "Images"
    return official if official.is_dir() else root / "Training"


def _find_root(data_dir: Path) -> Path | None:
    """Accepts the folder holding Final_Training (or Training), its parent (GTSRB/), or Images/."""
    for candidate in (data_dir, data_dir / "GTSRB"):
        if (candidate / "Final_Training" / "Images").is_dir() or (candidate / "Training" / "00000").is_dir():
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
    for class_dir in sorted(_train_images(root).iterdir()):
        gt = class_dir / f"GT-{class_dir.name}.csv"
        if class_dir.is_dir() and gt.exists():
            train_rows += _read_gt(gt, class_dir, report, None)
        elif class_dir.is_dir() and class_dir.name.isdigit() and int(class_dir.name) < len(CLASS_NAMES):
            train_rows += _read_folder(class_dir, report)
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
        "all": concat([train, _signs(test_rows)]),
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
            *([keras.layers.RandomSaturation(  # Keras' factor f scales saturation by f / (1 - f).
                ((1 - recipe.aug_saturation) / (2 - recipe.aug_saturation), (1 + recipe.aug_saturation) / (2 + recipe.aug_saturation)),
                value_range=(0, 255))] if recipe.aug_saturation else []),
            *([keras.layers.RandomGaussianBlur(recipe.aug_blur, value_range=(0, 255))] if recipe.aug_blur else []),
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


# === Model ===


def build_model(recipe: Recipe, class_names: list[str]) -> keras.Model:
    """A small VGG-style CNN: conv blocks, dropout, softmax over the classes."""
    inputs = keras.Input((recipe.image_size, recipe.image_size, 3), name="pixels")
    x = keras.layers.Rescaling(1 / 127.5, offset=-1)(inputs)
    for width in recipe.widths:
        for _ in range(2):
            x = keras.layers.Conv2D(width, 3, padding="same", use_bias=False)(x)
            x = BatchNorm()(x)
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


def evaluate(model, examples: Signs, recipe: Recipe, class_names: list[str], out_dir: Path | None) -> dict:
    """Accuracy (primary), macro-F1, per-class accuracy; confusion matrix CSV and PNG."""
    return evaluate_classifier(examples.labels, _probabilities(model, examples, recipe, class_names), class_names, out_dir)


def slices(examples: Signs, recipe: Recipe, class_names: list[str]) -> dict[str, list[str]]:
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
            lambda data: resize(decode_image(data, recipe.max_image_pixels), size),
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


def predict_files(loaded, paths: list[Path], recipe: Recipe, class_names: list[str],
                  out_dir: Path | None = None) -> list[str]:
    """`file: class name (class id) probability | next: runner-up`, one line per file."""
    refuse_drawing(out_dir, "traffic_signs")
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
    smoke_floors={"accuracy": 0.22},  # Half what the deterministic smoke run measures (0.453); chance is 0.023.
    make_data=samples.writer("traffic_signs"),  # Generator: tasks/samples/traffic_signs.py.
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
    sources=SOURCES,
)
