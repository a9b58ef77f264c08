"""The keras-cv adapter: a YOLOv8 detector built offline from recipe values,
decoded with NMS in a graph that survives SavedModel export and .keras reload."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

import keras_cv  # noqa: E402, F401  A hard dependency: a broken install must fail here, not skip.

import keras  # noqa: E402

from suite import kerascv  # noqa: E402
from suite.detection import letterbox  # noqa: E402

SIZE = 64


@pytest.fixture(scope="module")
def detector():
    model = kerascv.yolo_detector(2, widths=(8, 16, 32, 32), confidence_threshold=0.0, max_detections=10)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), **kerascv.yolo_compile_args())
    # Untrained: decoding, export and reload are what is tested here (training is the smoke runs'), and an
    # untrained detector's scores at confidence 0 still rank boxes for NMS. A fit would trace for ~25 s.
    images = np.random.default_rng(0).uniform(0, 255, (4, SIZE, SIZE, 3)).astype(np.float32)
    return model, images


def test_graph_decoding_equals_keras_cv_predict(detector):
    model, images = detector
    want = model.predict(images, verbose=0)
    got = kerascv.detect(model, tf.constant(images))
    for key in ("boxes", "confidence", "classes", "num_detections"):
        np.testing.assert_allclose(np.asarray(got[key]), np.asarray(want[key]), atol=1e-4, err_msg=key)
    assert 1 <= int(np.asarray(got["num_detections"])[0]) <= 10  # NMS at IoU 0.5 may drop some.


def test_export_and_checkpoint_reload_keep_the_boxes(detector, tmp_path):
    model, images = detector

    def serve(pixels):  # One image of any size; boxes back in its own pixels.
        x, scale, hw = letterbox(pixels, SIZE)
        out = kerascv.detect(model, x[None])
        return {"boxes": out["boxes"][0] / scale, "scores": out["confidence"][0]}

    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint("serve", serve, [tf.TensorSpec([None, None, 3], tf.uint8)])
    archive.write_out(str(tmp_path / "export"), verbose=False)
    loaded = tf.saved_model.load(str(tmp_path / "export"))
    pixels = tf.constant(np.random.default_rng(1).integers(0, 255, (50, 100, 3)).astype(np.uint8))
    want, got = serve(pixels), loaded.serve(pixels)
    np.testing.assert_allclose(got["boxes"].numpy(), want["boxes"].numpy(), atol=1e-3)
    np.testing.assert_allclose(got["scores"].numpy(), want["scores"].numpy(), atol=1e-5)
    # Letterboxing: a 50x100 image scales by 64/100, so boxes map back by 100/64.
    _, scale, hw = letterbox(pixels, SIZE)
    assert float(scale) == pytest.approx(0.64) and hw.numpy().tolist() == [50, 100]

    model.save(tmp_path / "best.keras")
    again = keras.saving.load_model(tmp_path / "best.keras")
    np.testing.assert_allclose(np.asarray(kerascv.detect(again, tf.constant(images[:1]))["boxes"]),
                               np.asarray(kerascv.detect(model, tf.constant(images[:1]))["boxes"]), atol=1e-4)


def test_serving_view_is_nms_at_the_serving_values(detector):
    """`detect_fn` runs NMS once at the evaluation convention; its serving outputs must be exactly what
    NMS at the serving threshold and count would keep (greedy NMS: lower boxes never suppress higher)."""
    import dataclasses

    from suite.detection import DetectionRecipe, detect_fn

    model, images = detector
    pixels = tf.constant(images[0].astype(np.uint8))
    scores = kerascv.detect(model, letterbox(pixels, SIZE)[0][None], 0.0, 100)["confidence"][0].numpy()
    threshold = float(np.quantile(scores[scores > 0], 0.6))  # Some boxes above, many below.
    recipe = dataclasses.replace(DetectionRecipe(), image_size=SIZE, confidence_threshold=threshold, max_detections=5,
                                 eval_confidence_threshold=0.0, eval_max_detections=100)
    got = detect_fn(model, recipe, ["a", "b"])(pixels)
    want = kerascv.detect(model, letterbox(pixels, SIZE)[0][None], threshold, 5)
    n = int(want["num_detections"][0])
    assert int(got["num_detections"]) == n and 0 < n <= 5 and int(got["num_all"]) > n
    np.testing.assert_allclose(got["scores"].numpy()[:n], want["confidence"][0].numpy()[:n], atol=1e-6)
    # A 64 x 64 image letterboxes at scale 1; detect_fn clips boxes to the image.
    np.testing.assert_allclose(got["boxes"].numpy()[:n], np.clip(want["boxes"][0].numpy()[:n], 0, SIZE), atol=1e-3)
    assert (got["classes"].numpy()[n:] == -1).all() and got["boxes"].shape == (5, 4)
