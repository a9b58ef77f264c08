"""The one small adapter over keras-cv (frozen upstream; KerasHub may replace it).

Only this module imports `keras_cv`. It builds a YOLOv8 detector from recipe
values, or on a backbone preset (COCO-trained weights through keras-cv's own
preset loading, or a preset folder a user saved or copied), and decodes its raw
outputs with non-max suppression inside a graph, which keras-cv itself only
does in `predict`.
"""

from __future__ import annotations

from collections.abc import Sequence

import keras
import numpy as np
import tensorflow as tf

import keras_cv


def yolo_detector(
    num_classes: int,
    widths: Sequence[int] = (16, 32, 64, 128),
    depths: Sequence[int] = (1, 1, 1, 1),
    fpn_depth: int = 1,
    iou_threshold: float = 0.5,
    confidence_threshold: float = 0.25,
    max_detections: int = 50,
    backbone_preset: str = "",
) -> keras.Model:
    """A YOLOv8 detector (boxes `xyxy` in input pixels) built from scratch.

    Args:
        num_classes: object classes (no background class).
        widths: backbone channels per stage (YOLOv8-n is 64, 128, 256, 512 with
            its stem; these defaults are ~1M parameters, for CPUs).
        depths: C2f blocks per stage.
        fpn_depth: C2f blocks per feature-pyramid merge.
        iou_threshold: NMS overlap above which the lower-scored box goes.
        confidence_threshold: boxes scoring below are dropped.
        max_detections: boxes kept per image after NMS.
        backbone_preset: a YOLOv8 backbone preset name or preset folder, whose
            architecture and weights replace `widths` and `depths`. Defaults
            to none (built from scratch).

    Returns:
        An uncompiled `keras_cv.models.YOLOV8Detector`; compile it with
        `yolo_compile_args()`.
    """
    if backbone_preset:
        backbone = backbone_from_preset(backbone_preset)
    else:
        backbone = keras_cv.models.YOLOV8Backbone(
            stackwise_channels=list(widths), stackwise_depth=list(depths), include_rescaling=True,
            activation="swish",
        )
    decoder = keras_cv.layers.NonMaxSuppression(
        bounding_box_format="xyxy", from_logits=False, iou_threshold=iou_threshold,  # The head ends in a sigmoid.
        confidence_threshold=confidence_threshold, max_detections=max_detections,
    )
    return keras_cv.models.YOLOV8Detector(
        num_classes=num_classes, bounding_box_format="xyxy", backbone=backbone, fpn_depth=fpn_depth,
        prediction_decoder=decoder,
    )


def preset_names() -> list[str]:
    """The YOLOv8 backbone presets keras-cv knows (those ending `_coco` are COCO-trained)."""
    return list(keras_cv.models.YOLOV8Backbone.presets)


def backbone_from_preset(preset: str) -> keras.Model:
    """A `YOLOV8Backbone` from a preset name (downloaded once into kagglehub's
    cache) or a local preset folder (`config.json` + weights, as
    `save_preset` writes).

    Raises:
        ValueError: with one line saying what is missing and where to put it
            (offline, unknown name, or a folder of another kind).
    """
    import os

    is_dir = os.path.isdir(preset)
    if not is_dir and preset not in preset_names():
        raise ValueError(f"Expected a YOLOv8 backbone preset ({', '.join(preset_names())}) or a preset folder. "
                         f"Received: {preset!r}")
    try:
        return keras_cv.models.YOLOV8Backbone.from_preset(preset)
    except Exception as e:  # noqa: BLE001 - keras-cv/kagglehub raise requests, OS and value errors alike.
        if is_dir:
            raise ValueError(f"Expected a YOLOv8 backbone preset folder (config.json naming YOLOV8Backbone, and "
                             f"its weights file). Received: {preset}, which fails to load: {str(e)[:200]}") from e
        handle = keras_cv.models.YOLOV8Backbone.presets[preset].get("kaggle_handle", preset)
        cache = os.environ.get("KAGGLEHUB_CACHE", os.path.expanduser("~/.cache/kagglehub"))
        raise ValueError(f"Expected to download the preset {preset} ({handle}). Received: "
                         f"{type(e).__name__} ({str(e)[:120]}). Offline, copy a downloaded preset folder "
                         f"(config.json, model.weights.h5, metadata.json) to this machine and pass "
                         f"--from preset:<that folder>, or place it in {cache}/models/ where kagglehub looks.") from e


def save_preset(backbone: keras.Model, folder: str) -> None:
    """Writes a backbone as a preset folder that `backbone_from_preset` loads."""
    from keras_cv.src.utils.preset_utils import save_to_preset

    save_to_preset(backbone, folder)


def yolo_compile_args() -> dict:
    """YOLOv8's own losses (binary cross-entropy for classes, CIoU for boxes)."""
    return {"classification_loss": "binary_crossentropy", "box_loss": "ciou"}


YOLO_STRIDES = (8, 16, 32)  # keras-cv YOLOv8's anchor grids (`get_anchors`), finest first.


def mirror_order(height: int, width: int) -> np.ndarray:
    """For each YOLOv8 anchor of a `height x width` input, the index of the anchor at its mirror image
    (left-right). keras-cv lays anchors out level by level (`YOLO_STRIDES`), each grid row by row, with
    centres at `(column + 0.5) * stride`: the mirror of a centre is a centre exactly when `width` is a
    multiple of the coarsest stride.

    Raises:
        ValueError: when `width` is not a multiple of 32.
    """
    if width % YOLO_STRIDES[-1]:
        raise ValueError(f"Expected an input width that is a multiple of {YOLO_STRIDES[-1]} for test-time flips "
                         f"(the anchor grids must mirror onto themselves). Received: {width}")
    order, offset = [], 0
    for stride in YOLO_STRIDES:
        rows, cols = -(-height // stride), width // stride
        order.append(offset + np.arange(rows * cols).reshape(rows, cols)[:, ::-1].ravel())
        offset += rows * cols
    return np.concatenate(order)


def detect(model: keras.Model, images: tf.Tensor, confidence_threshold: float | None = None,
           max_detections: int | None = None, iou_threshold: float | None = None, flips: bool = False) -> dict:
    """Raw forward pass plus box decoding and NMS, traceable into a SavedModel.

    Args:
        model: a `YOLOV8Detector`.
        images: float `[batch, size, size, 3]` in 0-255, static spatial size
            (the anchors are computed from it).
        confidence_threshold, max_detections, iou_threshold: NMS values for
            this call; each defaults to the model's own decoder's (so a
            checkpoint saved with other values is decoded as asked).
        flips: also run the left-right mirror image and average, anchor by
            anchor, its class scores and (mirrored back) boxes with the
            image's own before NMS (test-time augmentation at 2x the work).
            Defaults to False.

    Returns:
        `boxes` `[batch, max_detections, 4]` (xyxy, input pixels), `confidence`
        (descending), `classes` (-1 for padding) and `num_detections` `[batch]`.
    """
    import types

    own = model.prediction_decoder
    decoder = keras_cv.layers.NonMaxSuppression(
        bounding_box_format=model.bounding_box_format, from_logits=own.from_logits,
        iou_threshold=own.iou_threshold if iou_threshold is None else iou_threshold,
        confidence_threshold=own.confidence_threshold if confidence_threshold is None else confidence_threshold,
        max_detections=own.max_detections if max_detections is None else max_detections,
    )
    # keras-cv's own decoding (anchors, distances to boxes), with this decoder: the method reads only these two.
    view = types.SimpleNamespace(prediction_decoder=decoder, bounding_box_format=model.bounding_box_format)
    if not flips:
        return type(model).decode_predictions(view, model(images, training=False), images)
    both = tf.concat([images, tf.reverse(images, [2])], 0)
    decoded = types.SimpleNamespace(prediction_decoder=lambda boxes, scores: (boxes, scores),
                                    bounding_box_format="xyxy")
    boxes, scores = type(model).decode_predictions(decoded, model(both, training=False), both)
    n, width = tf.shape(images)[0], float(images.shape[2])
    order = mirror_order(int(images.shape[1]), int(images.shape[2]))
    x1, y1, x2, y2 = tf.unstack(tf.gather(boxes[n:], order, axis=1), axis=-1)
    # The head ends in a sigmoid: these are probabilities, averaged as such.
    boxes = (boxes[:n] + tf.stack([width - x2, y1, width - x1, y2], -1)) / 2
    scores = (scores[:n] + tf.gather(scores[n:], order, axis=1)) / 2
    return decoder(tf.cast(boxes, tf.float32), tf.cast(scores, tf.float32))
