"""pedestrians: the Penn-Fudan loader on real and hand-written files, other box
layouts through the same loader, generator round trip, and SavedModel parity."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from conftest import realdata, run_cli
from suite import detection as det
from suite.export import load_export
from suite.runs import load_model
from tasks import pedestrians as ped

NOTE = '''# Compatible with PASCAL Annotation Version 1.00
Image filename : "PennFudanPed/PNGImages/FudanPed00001.png"
Image size (X x Y x C) : 559 x 536 x 3
Objects with ground truth : 2 { "PASpersonWalking" "PASpersonWalking" }
Bounding box for object 1 "PASpersonWalking" (Xmin, Ymin) - (Xmax, Ymax) : (160, 182) - (302, 431)
Bounding box for object 2 "PASpersonWalking" (Xmin, Ymin) - (Xmax, Ymax) : (420, 171) - (535, 486)
'''


def test_pennfudan_annotation_is_one_based(tmp_path):
    (tmp_path / "a.txt").write_text(NOTE)
    (h, w), boxes = ped.read_pennfudan(tmp_path / "a.txt")
    assert (h, w) == (536, 559)
    np.testing.assert_array_equal(boxes, [[159, 181, 302, 431], [419, 170, 535, 486]])


def test_loader_reads_real_pennfudan():
    root = realdata("pedestrians")
    data = ped.load_data(root, ped.RECIPES["default"])
    everything = data.splits["all"]
    assert len(everything) == 93 and not data.report.skipped
    # Every annotated box agrees with its instance mask (Penn-Fudan masks are ids 1..n).
    for path, boxes in zip(everything.paths[:20], everything.boxes[:20]):
        mask = np.asarray(Image.open(path.replace("PNGImages", "PedMasks").replace(".png", "_mask.png")))
        assert len(boxes) == len(np.unique(mask)) - 1
        for k, box in enumerate(boxes, 1):
            ys, xs = np.nonzero(mask == k)
            np.testing.assert_allclose(box, [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1], atol=2)
    assert sum(len(s) for s in (data.splits["train"], data.splits["val"], data.splits["test"])) == 93


def test_generated_scenes_round_trip(tmp_path):
    ped.TASK.make_data(tmp_path, 6, seed=1)
    data = ped.load_data(tmp_path, ped.RECIPES["smoke"])
    everything = data.splits["all"]
    assert len(everything) == 6
    for path, boxes in zip(everything.paths, everything.boxes):
        mask = np.asarray(Image.open(path.replace("PNGImages", "PedMasks").replace(".png", "_mask.png")))
        assert len(boxes) == mask.max()
        for k, box in enumerate(boxes, 1):
            ys, xs = np.nonzero(mask == k)
            np.testing.assert_array_equal(box, [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1])


def test_voc_and_coco_sets_load_their_person_boxes(tmp_path):
    voc = tmp_path / "voc"
    (voc / "Annotations").mkdir(parents=True)
    (voc / "JPEGImages").mkdir()
    for i in range(3):
        Image.new("RGB", (80, 60)).save(voc / "JPEGImages" / f"im{i}.jpg")
        (voc / "Annotations" / f"im{i}.xml").write_text(
            "<annotation><size><width>80</width><height>60</height></size>"
            "<object><name>person</name><bndbox><xmin>11</xmin><ymin>6</ymin><xmax>30</xmax><ymax>50</ymax></bndbox></object>"
            "<object><name>car</name><bndbox><xmin>40</xmin><ymin>30</ymin><xmax>70</xmax><ymax>55</ymax></bndbox></object>"
            "</annotation>")
    data = ped.load_data(voc, ped.RECIPES["smoke"])
    assert data.layout.startswith("Pascal VOC")
    assert [b.tolist() for b in data.splits["all"].boxes] == [[[10, 5, 30, 50]]] * 3  # The car is not a person.

    coco = tmp_path / "coco"
    (coco / "images").mkdir(parents=True)
    Image.new("RGB", (80, 60)).save(coco / "images" / "a.png")
    (coco / "instances.json").write_text(json.dumps({
        "images": [{"id": 1, "file_name": "a.png", "width": 80, "height": 60}],
        "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [5, 5, 10, 20]},
                        {"id": 2, "image_id": 1, "category_id": 2, "bbox": [30, 5, 10, 10]}],
        "categories": [{"id": 1, "name": "person"}, {"id": 2, "name": "bicycle"}]}))
    data = ped.load_data(coco, ped.RECIPES["smoke"])
    assert data.splits["all"].boxes[0].tolist() == [[5, 5, 15, 25]]


@pytest.mark.parametrize("smoke", ["pedestrians"], indirect=True)
def test_export_boxes_match_the_keras_model(smoke, tmp_path):
    """Boxes after NMS from the SavedModel equal the in-process pipeline's within 1e-3."""
    work = smoke["work"]
    config = json.loads((work / "run" / "config.json").read_text())
    recipe = ped.Recipe(**{k: tuple(v) if isinstance(v, list) else v for k, v in config["recipe"].items()})
    model = load_model(work / "run" / "best.keras")
    loaded, meta = load_export(smoke["export"], "pedestrians")
    detect = det.detect_fn(model, recipe, meta["class_names"])
    images = sorted((work / "data" / "PNGImages").glob("*.png"))[:3]
    found = []
    for path in images:
        want = detect(tf.io.decode_png(tf.io.read_file(str(path)), channels=3))
        got = loaded.serve_bytes(tf.constant(path.read_bytes()))
        assert int(got["num_detections"]) == int(want["num_detections"])
        found += got["scores"].numpy()[: int(got["num_detections"])].tolist()
        np.testing.assert_allclose(got["boxes"].numpy(), want["boxes"].numpy(), atol=1e-3)
        np.testing.assert_allclose(got["scores"].numpy(), want["scores"].numpy(), atol=1e-4)
        h, w = np.asarray(Image.open(path)).shape[:2]
        n = int(got["num_detections"])
        boxes = got["boxes"].numpy()[:n]
        assert (boxes >= 0).all() and (boxes[:, 2] <= w).all() and (boxes[:, 3] <= h).all()  # Own pixels.
    # Parity over boxes that exist, from a live model: an empty or constant output would compare equal too.
    assert found and np.ptp(found) > 1e-3, found
    out = run_cli("predict", "pedestrians", str(images[0]), "--model", str(smoke["export"]),
                  "--out", str(tmp_path / "drawn"), cwd=work)
    assert "person box(es)" in out.stdout
    assert (tmp_path / "drawn" / f"{images[0].stem}.boxes.png").exists()



@pytest.mark.parametrize("smoke", ["pedestrians"], indirect=True)
def test_export_with_test_time_flips_matches_the_keras_model(smoke, tmp_path):
    """An export made with `test_time_flips` serves the flipped-and-averaged detections of the in-process
    pipeline, and they are not the plain ones: the mirror view is in the shipped graph."""
    import dataclasses

    from suite.export import export

    work = smoke["work"]
    config = json.loads((work / "run" / "config.json").read_text())
    recipe = ped.Recipe(**{k: tuple(v) if isinstance(v, list) else v for k, v in config["recipe"].items()})
    flipped = dataclasses.replace(recipe, test_time_flips=True)
    model = load_model(work / "run" / "best.keras")
    out = export(ped.TASK, model, flipped, ["person"], tmp_path / "exports", {"metrics": {}})
    loaded, meta = load_export(out, "pedestrians")
    assert meta["recipe"]["test_time_flips"] is True
    pixels = tf.io.decode_png(tf.io.read_file(str(sorted((work / "data" / "PNGImages").glob("*.png"))[0])), channels=3)
    want, plain = det.detect_fn(model, flipped, ["person"])(pixels), det.detect_fn(model, recipe, ["person"])(pixels)
    got = loaded.serve_pixels(pixels)
    n = int(want["num_all"])
    assert n > 0 and int(got["num_all"]) == n
    np.testing.assert_allclose(got["all_boxes"].numpy()[:n], want["all_boxes"].numpy()[:n], atol=1e-3)
    np.testing.assert_allclose(got["all_scores"].numpy()[:n], want["all_scores"].numpy()[:n], atol=1e-4)
    assert not np.allclose(plain["all_scores"].numpy()[:n], want["all_scores"].numpy()[:n], atol=1e-4)


def test_copy_paste_reads_the_masks_and_notes_a_bad_one(tmp_path):
    # With copy-paste on, each Penn-Fudan image carries its PedMasks file; a mask of the wrong size or with colours
    # for ids is noted and its image kept without one. Off, no mask is read.
    ped.TASK.make_data(tmp_path, 4, seed=2)
    bad, colour = sorted((tmp_path / "PedMasks").glob("*.png"))[:2]
    Image.new("L", (7, 5)).save(bad)
    with Image.open(colour) as im:
        im.convert("RGB").save(colour)
    recipe = dataclasses.replace(ped.RECIPES["smoke"], copy_paste=0.5)
    data = ped.load_data(tmp_path, recipe)
    masks = [e.get("mask") for e in data.splits["all"].extra]
    assert sum(m is not None for m in masks) == 2 and str(bad) not in masks and str(colour) not in masks
    with Image.open(tmp_path / "PNGImages" / bad.name.replace("_mask", "")) as im:
        expected = f"{im.width}x{im.height}"
    assert [issue for path, issue in data.report.noted if path == str(bad)] == [
        f"mask not used: Expected the image's size {expected}. Received: 7x5"]
    assert [issue for path, issue in data.report.noted if path == str(colour)] == [
        "mask not used: Expected one object id per pixel (a grey or palette PNG). Received: mode RGB"]
    plain = ped.load_data(tmp_path, ped.RECIPES["smoke"])
    assert not any(plain.splits["all"].extra) and not plain.report.noted


def test_copy_paste_adds_people_in_the_training_pipeline(tmp_path):
    # Generated scenes with their PedMasks: with copy-paste on every image the training batches carry more people
    # than the images have, and it runs beside Mosaic (whose extra streams start from the cached examples too).
    ped.TASK.make_data(tmp_path, 8, seed=3)
    recipe = dataclasses.replace(ped.RECIPES["smoke"], copy_paste=1.0)
    examples = ped.load_data(tmp_path, recipe).splits["all"]
    own = np.mean([len(b) for b in examples.boxes])

    def people(mosaic_share: float, share: float) -> float:
        tf.random.set_seed(0)  # The draws (which image pastes, which objects) repeat from run to run.
        ds = det.box_dataset(examples, 160, 32, True, 8, 0, 0.0, mosaic_share, 0.0, share)
        return float(np.mean([(y["classes"].numpy() >= 0).sum(1).mean() for _, y in ds.take(6)]))

    assert people(0.0, 0.0) == pytest.approx(own, abs=0.01)
    assert people(0.0, 1.0) > own + 0.2  # Objects 1/2 of the time, fewer where one would hide a person.
    assert people(1.0, 1.0) > 0
