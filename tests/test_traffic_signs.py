"""traffic_signs: the GTSRB loader on real files, the PPM decoder, ROI crops,
skipped corrupt files, and the export's parity with `model.predict`."""

from __future__ import annotations

import io
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from conftest import realdata, run_cli
from suite.data import check_image_file, decode_image, resize
from suite.errors import UserError
from tasks import traffic_signs as ts

RECIPE = ts.RECIPES["smoke"]


def test_loader_parses_real_gtsrb_files():
    root = realdata("traffic_signs", "GTSRB")
    data = ts.load_data(root, RECIPE)
    everything = data.splits["all"]
    assert data.report.skipped == []
    assert len(everything) == data.report.read == 990
    assert set(everything.labels.tolist()) == set(range(43))
    # Train, val and test never share a physical sign (a track).
    groups = {k: set(data.splits[k].groups.tolist()) for k in ("train", "val", "test")}
    assert not groups["train"] & groups["test"] and not groups["train"] & groups["val"]
    assert sum(len(data.splits[k]) for k in ("train", "val", "test")) == 990
    # ROIs lie inside their images, as the GT csv says.
    for path, roi in zip(everything.paths[:50], everything.rois[:50]):
        w, h = Image.open(path).size
        assert 0 <= roi[0] < roi[2] < w and 0 <= roi[1] < roi[3] < h


def test_ppm_decoder_matches_pillow_on_real_files():
    root = realdata("traffic_signs", "GTSRB")
    paths = sorted(root.rglob("*.ppm"))[::97]
    decode = tf.function(decode_image, input_signature=[tf.TensorSpec([], tf.string)])
    for path in paths:
        np.testing.assert_array_equal(decode(tf.io.read_file(str(path))).numpy(), np.asarray(Image.open(path)))


def test_decoder_reads_png_jpeg_and_grey():
    rgb = np.random.default_rng(0).integers(0, 255, (20, 30, 3), dtype=np.uint8)
    for fmt, mode in (("PNG", "RGB"), ("PNG", "L"), ("BMP", "RGB"), ("PPM", "RGB")):
        buf = io.BytesIO()
        Image.fromarray(rgb).convert(mode).save(buf, fmt)
        out = decode_image(tf.constant(buf.getvalue())).numpy()
        assert out.shape == (20, 30, 3)
        np.testing.assert_array_equal(out, np.asarray(Image.fromarray(rgb).convert(mode).convert("RGB")))


def test_crop_roi_with_margin():
    image = tf.reshape(tf.range(100 * 80 * 3), [100, 80, 3])
    out = ts.crop_roi(image, tf.constant([10, 20, 29, 59]), 0.1)  # 20 x 40 ROI.
    assert out.shape == (48, 24, 3)  # +2 px per side in x, +4 in y.
    np.testing.assert_array_equal(out.numpy(), image.numpy()[16:64, 8:32])
    edge = ts.crop_roi(image, tf.constant([0, 0, 79, 99]), 0.1)  # Clipped at the borders.
    assert edge.shape == (100, 80, 3)


def test_corrupt_images_are_skipped_and_counted(tmp_path):
    ts.TASK.make_data(tmp_path, 86, 0)
    images = sorted((tmp_path / "Final_Training" / "Images" / "00003").glob("*.ppm"))
    images[0].write_bytes(images[0].read_bytes()[:40])  # Truncated.
    images[1].write_bytes(b"")  # Empty.
    images[2].unlink()  # Listed but missing.
    data = ts.load_data(tmp_path, RECIPE)
    reasons = sorted(r.split(":")[0] for _, r in data.report.skipped)
    assert reasons == ["empty", "missing", "truncated"]
    assert len(data.splits["all"]) == data.report.read - 3
    assert "skipped 3" in data.report.summary()
    assert check_image_file(images[3]) is None


def test_generated_layout_matches_gtsrb(tmp_path):
    ts.TASK.make_data(tmp_path, 86, 0)
    gt = (tmp_path / "Final_Training" / "Images" / "00014" / "GT-00014.csv").read_bytes()
    assert gt.startswith(b"Filename;Width;Height;Roi.X1;Roi.Y1;Roi.X2;Roi.Y2;ClassId\r\n")
    first = gt.split(b"\r\n")[1].split(b";")
    assert first[0] == b"00000_00000.ppm" and first[-1] == b"14"
    image = tmp_path / "Final_Training" / "Images" / "00014" / first[0].decode()
    assert image.read_bytes()[:2] == b"P6"
    w, h = Image.open(image).size
    assert (w, h) == (int(first[1]), int(first[2]))
    x1, y1, x2, y2 = map(int, first[3:7])
    assert x1 >= 5 and y1 >= 5 and x2 <= w - 1 and y2 <= h - 1  # A GTSRB-like border.
    assert (tmp_path / "Final_Test" / "Images" / "GT-final_test.csv").exists()


def test_final_test_is_the_test_split(tmp_path):
    """With GTSRB's Final_Test beside Final_Training, the test split is exactly Final_Test (its GT labels),
    and the training tracks give train and val only."""
    ts.TASK.make_data(tmp_path, 172, 0)
    data = ts.load_data(tmp_path, RECIPE)
    assert data.layout == "GTSRB training + test layout"
    rows = (tmp_path / "Final_Test" / "Images" / "GT-final_test.csv").read_text().strip().splitlines()[1:]
    truth = {r.split(";")[0]: int(r.split(";")[-1]) for r in rows}
    test = data.splits["test"]
    assert len(truth) > 0 and sorted(Path(p).name for p in test.paths) == sorted(truth)
    assert all(Path(p).parent == tmp_path / "Final_Test" / "Images" for p in test.paths)
    assert [int(label) for label in test.labels] == [truth[Path(p).name] for p in test.paths]
    for split in ("train", "val"):
        assert all("Final_Training" in p for p in data.splits[split].paths)
    assert len(data.splits["train"]) + len(data.splits["val"]) + len(test) == len(data.splits["all"])


@pytest.mark.parametrize("smoke", ["traffic_signs"], indirect=True)
def test_export_matches_model_predict_on_real_ppm_bytes(smoke, tmp_path):
    real = realdata("traffic_signs", "GTSRB")
    paths = sorted(real.rglob("*.ppm"))[::50][:16]
    loaded = tf.saved_model.load(str(smoke["export"]))
    model = keras.saving.load_model(smoke["work"] / "run" / "best.keras")
    raw = [p.read_bytes() for p in paths]
    expected = model.predict(
        np.stack([resize(decode_image(tf.constant(b)), RECIPE.image_size).numpy() for b in raw]), verbose=0
    )
    out = loaded.serve_bytes(tf.constant(raw))
    assert np.max(np.abs(out["probabilities"].numpy() - expected)) < 1e-4
    assert len(set(expected.argmax(-1))) >= 3  # A live model: 16 signs of many classes are not all one class.
    np.testing.assert_array_equal(out["class_id"].numpy(), expected.argmax(-1))
    names = [n.decode() for n in out["class_name"].numpy()]
    assert names == [ts.CLASS_NAMES[i] for i in expected.argmax(-1)]
    # The default serving signature is the bytes endpoint.
    default = loaded.signatures["serving_default"](images=tf.constant(raw))
    assert np.max(np.abs(default["probabilities"].numpy() - expected)) < 1e-4
    # uint8 pixels of one image, any size.
    pixels = np.asarray(Image.open(paths[0]))[None]
    one = loaded.serve_pixels(tf.constant(pixels))["probabilities"].numpy()
    assert np.max(np.abs(one - expected[:1])) < 1e-4


@pytest.mark.parametrize("smoke", ["traffic_signs"], indirect=True)
def test_export_reads_png_and_jpeg_bytes(smoke):
    loaded = tf.saved_model.load(str(smoke["export"]))
    ppm = sorted((smoke["work"] / "data").rglob("*.ppm"))[0]
    image = Image.open(ppm)
    encoded = []
    for fmt in ("PNG", "JPEG"):
        buf = io.BytesIO()
        image.save(buf, fmt, quality=95)
        encoded.append(buf.getvalue())
    out = loaded.serve_bytes(tf.constant([ppm.read_bytes(), *encoded]))["probabilities"].numpy()
    assert np.max(np.abs(out[0] - out[1])) < 1e-4  # PNG is lossless.
    assert np.max(np.abs(out[0] - out[2])) < 0.2  # JPEG is close.


@pytest.mark.parametrize("smoke", ["traffic_signs"], indirect=True)
def test_predict_refuses_out_for_a_task_that_does_not_draw(smoke, tmp_path):
    ppm = sorted((smoke["work"] / "data").rglob("*.ppm"))[0]
    proc = run_cli("predict", "traffic_signs", str(ppm), "--model", str(smoke["export"]), "--out", str(tmp_path),
                   cwd=smoke["work"], check=False)
    assert proc.returncode == 2 and "Expected --out only for tasks that write annotated files" in proc.stderr
    assert not any(tmp_path.iterdir())


def test_ppm_header_comments_are_skipped(tmp_path):
    pixels = np.random.default_rng(1).integers(0, 255, (7, 5, 3), dtype=np.uint8)
    data = b"P6\n# Created by IrfanView\n5 # width\n7\n255\n" + pixels.tobytes()
    np.testing.assert_array_equal(decode_image(tf.constant(data)).numpy(), pixels)
    (tmp_path / "c.ppm").write_bytes(data)
    assert check_image_file(tmp_path / "c.ppm") is None
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "c.ppm")), pixels)


def test_realistic_style_writes_a_sample_the_loader_reads_with_washed_out_colour(tmp_path):
    """`Style()` (the realistic sample, measured in bench/run.py's signs ablation) goes through every knob:
    the loader reads it, and its colours are duller than the baseline's, as real GTSRB crops are."""
    saturation = {}
    for name in ("baseline", "realistic"):  # `suite data make traffic_signs --style NAME`.
        ts.TASK.make_data(tmp_path / name, 215, 0, name)
        data = ts.load_data(tmp_path / name, ts.RECIPES["smoke"])
        written = list((tmp_path / name).rglob("*.ppm"))
        assert len(data.splits["all"]) == len(written) >= 215 and not data.report.skipped
        saturation[name] = np.mean([np.asarray(Image.open(p).convert("HSV"))[..., 1].mean() for p in data.splits["all"].paths])
    assert saturation["realistic"] < 0.8 * saturation["baseline"], saturation
    with pytest.raises(UserError, match="Expected a sample style of traffic_signs: baseline, realistic. Received: --style neon"):
        ts.TASK.make_data(tmp_path / "neon", 43, 0, "neon")
    assert not (tmp_path / "neon").exists()
