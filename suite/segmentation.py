"""Shared instance-segmentation pieces: boundary targets, losses, connected
components and instances from per-pixel maps in TensorFlow (so an export
returns instances itself), and instance metrics (DSB 2018 score, F1 at IoU 0.5).

cell_microscopy uses them; any task that separates touching objects with a
boundary class can. The two losses keep their registered names
(`cell_microscopy>...`), so checkpoints saved before they moved here still load.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Protocol

import keras
import numpy as np
import tensorflow as tf


class InstanceRecipe(Protocol):
    """The recipe values the instance step reads (cell_microscopy's recipe has them; read-only, as a frozen
    dataclass's are)."""

    @property
    def fg_threshold(self) -> float: ...  # P(interior) + P(boundary) for an object pixel.

    @property
    def seed_threshold(self) -> float: ...  # P(interior) for an instance seed.

    @property
    def seed_split_threshold(self) -> float: ...  # A seed with 2+ regions above this splits into them; 0: off.

    @property
    def seed_split_also(self) -> tuple[float, ...]: ...  # Then each part again, at each of these (rising).

    @property
    def seed_erode_px(self) -> int: ...  # A seed whose erosion by this many px leaves 2+ parts splits; 0: off.

    @property
    def boundary_px(self) -> int: ...  # Width of the boundary ring; seeds grow this far.

    @property
    def min_area(self) -> int: ...  # Smaller instances are noise.

    @property
    def atypical_threshold(self) -> float: ...  # Mean P(atypical) over an instance.


class SegmenterRecipe(InstanceRecipe, Protocol):
    """What `segmenter` reads besides the instance step's values."""

    @property
    def test_time_flips(self) -> bool: ...  # Average the maps over four mirror images.

    @property
    def test_time_transpose(self) -> bool: ...  # ... and over the transposed image's four (all 8 symmetries).

    @property
    def test_time_scales(self) -> tuple[float, ...]: ...  # ... and over the image resized by each of these.

    @property
    def nucleus_diameter(self) -> float: ...  # Resize so the median nucleus is this wide (px); 0: off.


def targets(instances: np.ndarray, kinds: np.ndarray, boundary_px: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-pixel training targets from an instance map.

    Returns:
        `seg` uint8 (0 background, 1 interior, 2 boundary: nucleus pixels
        within `boundary_px` of another label or the background) and
        `atypical` uint8 (1 where the pixel's nucleus is atypical). A nucleus
        too small to keep an interior under that ring (one under ~8 px across
        at 2 px) gets a 1 px ring, or none: without an interior it never
        seeds an instance (a real-data model missed 53 of the 70 real DSB val
        nuclei under 50 px).
    """
    from scipy import ndimage

    def ring(px: int) -> np.ndarray:
        grown = ndimage.maximum_filter(instances, size=2 * px + 1, mode="nearest")
        shrunk = -ndimage.maximum_filter(-instances, size=2 * px + 1, mode="nearest")
        return inside & ((grown != instances) | (shrunk != instances))

    inside = instances > 0
    edge = ring(boundary_px)
    for px in range(boundary_px - 1, -1, -1):  # Thinner rings, only for the nuclei that need them.
        interior = np.bincount(instances[inside & ~edge], minlength=int(instances.max()) + 1)
        small = inside & (interior < 4)[instances]  # Fewer than 4 interior pixels: a seed too fragile to find.
        if not small.any():
            break
        edge = np.where(small, ring(px) if px else False, edge)
    seg = np.where(inside, np.where(edge, 2, 1), 0).astype(np.uint8)
    return seg, (kinds[instances] == 1).astype(np.uint8) * inside


def resized_crop(image: np.ndarray, instances: np.ndarray, kinds: np.ndarray, box: tuple[int, int, int],
                 size: int, boundary_px: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A square `box` (top, left, side) of an image and its instance map, resized to `size`, and its targets.

    Targets come from the resized instance map, so the boundary ring keeps its width at every scale.

    Returns:
        `(image uint8 [size, size, 3], seg, atypical)` as `targets` makes them.
    """
    from PIL import Image

    y, x, side = box
    image, instances = image[y : y + side, x : x + side], instances[y : y + side, x : x + side]
    if side != size:
        image = np.asarray(Image.fromarray(image).resize((size, size), Image.Resampling.BILINEAR))
        instances = np.asarray(Image.fromarray(instances).resize((size, size), Image.Resampling.NEAREST))
    return (image, *targets(instances, kinds, boundary_px))


# --- Losses ---------------------------------------------------------------------


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


# --- Instances, in TensorFlow --------------------------------------------------------


def connected_components(mask: tf.Tensor, max_iterations: int = 1024) -> tf.Tensor:
    """8-connected components of a bool `[h, w]` mask: int32 labels, 0 outside.

    Every pixel starts with its own id (its raster index + 1) and ends with the
    largest id of its component. Ids spread by 3x3 max-pooling inside the mask,
    and each step also jumps: a pixel takes the id held by the pixel its id
    names (in its component too), so a long component (an untrained model's
    mask, a tissue blob) needs far fewer steps than its length: a 256 x 256
    serpentine of ~8,000 pixels, 5.8 s -> 1.6 s on 2 CPU cores.
    """
    h, w = tf.shape(mask)[0], tf.shape(mask)[1]
    on = tf.cast(mask, tf.float32)[None, :, :, None]
    ids = tf.reshape(tf.range(1, h * w + 1, dtype=tf.float32), [1, h, w, 1]) * on

    def step(i, ids, changed):
        new = tf.nn.max_pool2d(ids, 3, 1, "SAME") * on
        flat = tf.reshape(new, [-1])
        jumped = tf.gather(flat, tf.maximum(tf.cast(flat, tf.int32) - 1, 0))  # Exact: ids < 2**24 (float32).
        new = tf.maximum(new, tf.reshape(jumped, tf.shape(new)) * on)
        return i + 1, new, tf.reduce_any(new != ids)

    _, ids, _ = tf.while_loop(lambda i, ids, changed: changed & (i < max_iterations), step,
                              (tf.constant(0), ids, tf.constant(True)))
    return tf.cast(ids[0, :, :, 0], tf.int32)


def grow_labels(labels: tf.Tensor, region: tf.Tensor, steps: tf.Tensor | int) -> tf.Tensor:
    """Labels grown one pixel per step (8-connected) into unlabelled `region` pixels, at most `steps` times. A
    pixel takes the first label that reaches it, so it goes to the nearest seed (ties: the higher id)."""

    def grow(i, labels, changed):
        grown = tf.cast(tf.nn.max_pool2d(tf.cast(labels, tf.float32)[None, :, :, None], 3, 1, "SAME")[0, :, :, 0],
                        tf.int32)
        new = tf.where((labels == 0) & region, grown, labels)
        return i + 1, new, tf.reduce_any(new != labels)

    return tf.while_loop(lambda i, labels, changed: changed & (i < steps), grow,
                         (tf.constant(0), labels, tf.constant(True)))[1]


def relabel(labels: tf.Tensor) -> tf.Tensor:
    """int32 `[h, w]` labels renumbered 1..n (0 stays 0), so ids stay below the pixel count."""
    ids, index = tf.unique(tf.concat([[0], tf.reshape(labels, [-1])], 0))  # 0 comes first: its index is 0.
    return tf.reshape(index[1:], tf.shape(labels))


def split_seeds(seeds: tf.Tensor, core: tf.Tensor, min_area: int) -> tf.Tensor:
    """Seeds (int32 `[h, w]` component labels) that hold two or more `core` components of at least `min_area`
    pixels become those cores, grown back over the seed: two touching nuclei whose interiors meet at a weak
    probability are one seed at a low threshold but two at a high one, while a faint lone nucleus, which has
    no core or one, keeps its low-threshold seed. Cores are in the seeds (`core` implies a seed pixel)."""
    size = tf.size(seeds)
    cores = tf.reshape(connected_components(core), [-1])
    ids, index = tf.unique(tf.concat([[0], cores], 0))
    area = tf.math.unsorted_segment_sum(tf.ones_like(index), index, tf.size(ids))
    big = (area >= min_area) & (ids != 0)
    cores = tf.where(tf.gather(big, index[1:]), cores, 0)
    flat = tf.reshape(seeds, [-1])
    # Per seed, how many big cores it holds (each core lies in one seed).
    seed_of_core = tf.math.unsorted_segment_max(tf.concat([[0], flat], 0), index, tf.size(ids))
    held = tf.math.bincount(tf.boolean_mask(seed_of_core, big), minlength=size + 1, maxlength=size + 1)
    split = tf.gather(held, flat) >= 2
    # Core ids moved past every seed id, so the two never collide (float32 stays exact below 2**24).
    parts = tf.where(split, tf.where(cores > 0, cores + size, 0), flat)
    region = tf.reshape(split, tf.shape(seeds))
    return grow_labels(tf.reshape(parts, tf.shape(seeds)), region, tf.shape(seeds)[0] + tf.shape(seeds)[1])


def eroded(labels: tf.Tensor, px: int) -> tf.Tensor:
    """Where each label of int32 `[h, w]` `labels` survives erosion by a `(2 px + 1)`-square: bool `[h, w]`, true
    where every pixel within `px` (chessboard distance) holds the same label. Two labelled regions never touch in
    the result, so its components each lie in one label."""
    f = tf.cast(labels, tf.float32)[None, :, :, None]
    size = 2 * px + 1
    same = (tf.nn.max_pool2d(f, size, 1, "SAME") == f) & (-tf.nn.max_pool2d(-f, size, 1, "SAME") == f)
    return same[0, :, :, 0] & (labels > 0)


def instances_from_maps(segmentation: tf.Tensor, atypical: tf.Tensor, recipe: InstanceRecipe,
                        grow_steps: tf.Tensor | int | None = None) -> dict:
    """Instances from per-pixel probabilities of one image.

    Args:
        segmentation: float `[h, w, 3]`: background, interior, boundary.
        atypical: float `[h, w]`.
        recipe: thresholds, `min_area` and `boundary_px`.
        grow_steps: how many pixels seeds grow into the foreground. Defaults to
            `recipe.boundary_px + 1`; maps resized from another scale need more.

    Returns:
        `instances` int32 `[h, w]` (0 background, 1..n in raster order),
        `instance_class` int32 `[n]` (0 normal, 1 atypical),
        `semantic` uint8 `[h, w]` (0 background, 1 normal, 2 atypical),
        `counts` int32 `[2]` and `num_nuclei` int32.
    """
    foreground = segmentation[..., 1] + segmentation[..., 2] > recipe.fg_threshold
    labels = connected_components(segmentation[..., 1] > recipe.seed_threshold)
    if recipe.seed_split_threshold > recipe.seed_threshold:
        # Each level splits what the one below left whole: nuclei pressed together meet at a higher P(interior).
        for level in (recipe.seed_split_threshold, *recipe.seed_split_also):
            labels = split_seeds(relabel(labels), segmentation[..., 1] > level, recipe.min_area)
    if recipe.seed_erode_px:
        # By shape: two round nuclei whose seeds meet at a neck narrower than 2 px + 1 fall apart when eroded, a
        # lone nucleus stays one part (or none, when small: cores under `min_area` do not count).
        labels = relabel(labels)
        labels = split_seeds(labels, eroded(labels, recipe.seed_erode_px), recipe.min_area)
    labels = grow_labels(labels, foreground, recipe.boundary_px + 1 if grow_steps is None else grow_steps)
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


def segmenter(model: keras.Model, recipe: SegmenterRecipe, stride: int) -> Callable[[tf.Tensor], dict]:
    """A function from uint8 `[h, w, 3]` of any size to `instances_from_maps`' outputs.

    The whole image goes through the U-Net at once (a fully convolutional net needs
    no tiles, so there are no seams). With `recipe.nucleus_diameter`, a first pass
    measures the nuclei (median instance area) and the image is resized so they
    are that wide, the maps resized back: real images range from 9 to 50 px
    nuclei, and the net is most reliable at the size it saw most.

    Args:
        model: maps images (float 0-255, sides divisible by `stride`) to `segmentation` and `atypical` maps.
        recipe: the instance step's values plus the test-time views (`test_time_flips`,
            `test_time_transpose`, `test_time_scales`) and `nucleus_diameter`.
        stride: the model's total downsampling; images are mirror-padded to a multiple of it.

    Returns:
        The function, for `tf.function` or an export's endpoints.
    """

    def maps(x):  # float [h, w, 3] -> (P(bg, interior, boundary) [h, w, 3], P(atypical) [h, w])
        if tuple(recipe.test_time_scales) == (1.0,):
            return views(x)
        h, w = tf.shape(x)[0], tf.shape(x)[1]
        seg, aty = 0.0, 0.0
        for scale in recipe.test_time_scales:  # A static tuple: the graph holds one branch per scale.
            if scale == 1.0:
                s, a = views(x)
            else:  # Bilinear both ways; the maps come back to the image's own pixels before averaging.
                size = tf.maximum(tf.cast(tf.round(tf.cast(tf.stack([h, w]), tf.float32) * scale), tf.int32), stride)
                s, a = views(tf.image.resize(x, size))
                s, a = tf.image.resize(s, [h, w]), tf.image.resize(a[..., None], [h, w])[..., 0]
            seg, aty = seg + s, aty + a
        n = len(recipe.test_time_scales)
        return seg / n, aty / n

    def views(x):  # The maps at the image's own scale, averaged over the mirror (and transposed) views.
        h, w = tf.shape(x)[0], tf.shape(x)[1]
        ph, pw = (-h) % stride, (-w) % stride
        # Mirror padding: nuclei cut by the border stay plausible (images need >= stride/2 px).
        x = tf.pad(x, [[0, ph], [0, pw], [0, 0]], mode="SYMMETRIC")[None]
        seg, aty = mirrored(x)
        if recipe.test_time_transpose:  # The other four symmetries of the square: the transposed image's mirrors.
            s, a = mirrored(tf.transpose(x, [0, 2, 1, 3]))
            seg = (seg + tf.transpose(s, [0, 2, 1, 3])) / 2
            aty = (aty + tf.transpose(a, [0, 2, 1, 3])) / 2
        return seg[0, :h, :w], aty[0, :h, :w, 0]

    def mirrored(x):  # [1, h, w, 3] -> the maps, averaged over the four mirror images with `test_time_flips`.
        if recipe.test_time_flips:
            x = tf.concat([x, x[:, ::-1], x[:, :, ::-1], x[:, ::-1, ::-1]], 0)
        out = model(x, training=False)
        seg, aty = out["segmentation"], out["atypical"]
        if recipe.test_time_flips:
            seg = (seg[0] + seg[1, ::-1] + seg[2, :, ::-1] + seg[3, ::-1, ::-1])[None] / 4
            aty = (aty[0] + aty[1, ::-1] + aty[2, :, ::-1] + aty[3, ::-1, ::-1])[None] / 4
        return seg, aty

    def segment(pixels):
        x = tf.cast(pixels, tf.float32)
        seg, aty = maps(x)
        if recipe.nucleus_diameter:
            h, w = tf.shape(x)[0], tf.shape(x)[1]
            factor = rescale_factor(instances_from_maps(seg, aty, recipe)["instances"], recipe)
            size = tf.cast(tf.round(tf.cast(tf.stack([h, w]), tf.float32) * factor), tf.int32)
            size = tf.maximum(size, stride)

            def rescaled():
                s, a = maps(tf.image.resize(x, size))
                return tf.image.resize(s, [h, w]), tf.image.resize(a[..., None], [h, w])[..., 0]

            resize = tf.abs(tf.math.log(factor)) > np.log(1.2)
            seg, aty = tf.cond(resize, rescaled, lambda: (seg, aty))
            # The boundary ring was drawn at the resized scale: seeds grow as far in native pixels.
            steps = tf.cast(tf.math.ceil((recipe.boundary_px + 1) / tf.where(resize, factor, 1.0)), tf.int32)
            return instances_from_maps(seg, aty, recipe, steps)
        return instances_from_maps(seg, aty, recipe)

    return segment


def rescale_factor(instances: tf.Tensor, recipe: SegmenterRecipe) -> tf.Tensor:
    """The resize that brings the median nucleus to `recipe.nucleus_diameter` px;
    1 without nuclei, and within [1/3, 2] (so a 1 Mpx image stays under 4 Mpx)."""
    area = tf.math.bincount(tf.reshape(instances, [-1]))[1:]
    area = tf.sort(tf.boolean_mask(area, area > 0))

    def factor():
        diameter = 2.0 * tf.sqrt(tf.cast(area[tf.size(area) // 2], tf.float32) / np.pi)
        return tf.clip_by_value(recipe.nucleus_diameter / diameter, 1 / 3, 2.0)

    return tf.cond(tf.size(area) > 0, factor, lambda: tf.constant(1.0))


def photometric_jitter(x: tf.Tensor, stain: bool) -> tf.Tensor:
    """Per-image gain, offset and noise on a float `[b, h, w, 3]` batch in 0-255: exposures vary. With
    `stain`, also a random colour mix near the identity, a third greyscale and a fifth inverted: stains and
    imaging modes vary."""
    b = tf.shape(x)[0]
    gain = tf.random.uniform([b, 1, 1, 1], 0.7, 1.3)
    offset = tf.random.uniform([b, 1, 1, 1], -20.0, 20.0)
    noise = tf.random.normal(tf.shape(x)) * tf.random.uniform([b, 1, 1, 1], 0.0, 8.0)
    if stain:
        mix = tf.eye(3, batch_shape=[b]) + tf.random.normal([b, 3, 3], stddev=0.15)
        grey = tf.cast(tf.random.uniform([b, 1, 1]) < 0.33, tf.float32)
        mix = mix * (1 - grey) + grey * tf.ones([b, 3, 3]) / 3
        x = tf.einsum("bhwc,bcd->bhwd", x, mix)
        invert = tf.cast(tf.random.uniform([b, 1, 1, 1]) < 0.2, tf.float32)
        x = x * (1 - invert) + (255.0 - x) * invert
    return tf.clip_by_value(x * gain + offset + noise, 0.0, 255.0)


# --- Metrics -----------------------------------------------------------------------


def _joint(true: np.ndarray, pred: np.ndarray) -> np.ndarray:
    """Pixel counts `[n_true + 1, n_pred + 1]` of every (true id, predicted id) pair."""
    nt, npred = int(true.max()), int(pred.max())
    return np.bincount(true.ravel().astype(np.int64) * (npred + 1) + pred.ravel(),
                       minlength=(nt + 1) * (npred + 1)).reshape(nt + 1, npred + 1)


def match(true: np.ndarray, pred: np.ndarray) -> np.ndarray:
    """IoU matrix `[n_true, n_pred]` of two instance maps (0 is background)."""
    joint = _joint(true, pred)
    inter = joint[1:, 1:].astype(np.float64)
    area_t, area_p = joint[1:, :].sum(1), joint[:, 1:].sum(0)
    union = area_t[:, None] + area_p[None, :] - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


def splits_and_merges(true: np.ndarray, pred: np.ndarray) -> tuple[int, int]:
    """Over- and under-segmentation of one image, apart from misses and false alarms.

    Returns:
        `(splits, merges)`: true nuclei that at least two predictions lie mostly
        inside (over half of each prediction's area), and predictions that cover
        most (over half) of at least two true nuclei.
    """
    joint = _joint(true, pred)
    inter = joint[1:, 1:]
    area_t, area_p = joint[1:, :].sum(1), joint[:, 1:].sum(0)
    splits = int(((2 * inter > area_p[None, :]).sum(1) >= 2).sum())
    merges = int(((2 * inter > area_t[:, None]).sum(0) >= 2).sum())
    return splits, merges


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


def instance_metrics(results: Sequence[tuple], out_dir: Path | None) -> dict:
    """Instance metrics over images, and `per_image.csv` in `out_dir`.

    Args:
        results: per image `(image_id, true instances [h, w], true classes
            [n + 1] (index 0 background), predicted instances [h, w],
            predicted classes [m])`; class 1 is atypical.
        out_dir: where `per_image.csv` goes (not written when None).

    Returns:
        `f1_50` (F1 at IoU 0.5), `dsb_score`, precision and recall at 0.5,
        pixel Dice and IoU, count errors, and atypical recall and precision.
    """
    rows, tp, fp, fn, splits, merges = [], 0, 0, 0, 0, 0
    inter = union = total = 0
    aty_true = aty_found = aty_pred = aty_pred_right = 0
    for image_id, true, kinds, pred, pred_class in results:
        iou = match(true, pred)
        s = instance_scores(iou)
        split, merged = splits_and_merges(true, pred)
        splits, merges = splits + split, merges + merged
        tp, fp, fn = tp + s["tp50"], fp + s["fp50"], fn + s["fn50"]
        t_fg, p_fg = true > 0, pred > 0
        inter, union, total = inter + (t_fg & p_fg).sum(), union + (t_fg | p_fg).sum(), total + t_fg.sum() + p_fg.sum()
        pairs = np.argwhere(iou > 0.5)  # (true index, pred index), zero-based.
        true_aty = kinds[1:] == 1
        aty_true += int(true_aty.sum())
        aty_found += int(sum(true_aty[i] and pred_class[j] == 1 for i, j in pairs))
        aty_pred += int((pred_class == 1).sum())
        aty_pred_right += int(sum(pred_class[j] == 1 and true_aty[i] for i, j in pairs))
        rows.append((image_id, int(true.max()), int(pred.max()), s["dsb"], s["tp50"], s["fp50"], s["fn50"], split,
                     merged))
    if out_dir is not None:
        Path(out_dir).mkdir(parents=True, exist_ok=True)
        with (Path(out_dir) / "per_image.csv").open("w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["image_id", "true_nuclei", "predicted_nuclei", "dsb_score", "tp50", "fp50", "fn50",
                             "splits", "merges"])
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
        "splits": splits,  # True nuclei cut into several predictions.
        "merges": merges,  # Predictions that swallow several true nuclei.
        "atypical_nuclei": aty_true,
        "atypical_recall": aty_found / aty_true if aty_true else None,
        "atypical_precision": aty_pred_right / aty_pred if aty_pred else None,
    }
