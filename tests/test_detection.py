"""The shared detection pieces: COCO-style metrics on hand-made boxes with known
answers, box conversions, and the VOC / YOLO / COCO loaders on hand-written and
real files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from conftest import realdata
from suite import detection as det
from suite.data import DataReport
from suite.errors import UserError


def _one(boxes, classes=None):
    boxes = np.array(boxes, np.float32).reshape(-1, 4)
    return boxes, np.zeros(len(boxes), np.int32) if classes is None else np.array(classes, np.int32)


def _pred(boxes, scores, classes=None):
    boxes, cls = _one(boxes, classes)
    return boxes, np.array(scores, np.float32), cls


def test_perfect_detections_score_one():
    truth = [_one([[0, 0, 10, 10], [20, 20, 60, 60]]), _one([[5, 5, 50, 50]])]
    preds = [_pred(t[0], [0.9] * len(t[0])) for t in truth]
    m = det.detection_metrics(truth, preds, ["person"])
    assert m["ap50"] == 1.0 and m["map"] == 1.0 and m["recall50"] == 1.0


def test_iou_07_counts_at_five_of_ten_thresholds():
    truth = [_one([[0, 0, 10, 10]])]
    preds = [_pred([[0, 0, 10, 7]], [0.9])]  # IoU 70 / 100.
    assert det.iou(truth[0][0], preds[0][0])[0, 0] == pytest.approx(0.7)
    m = det.detection_metrics(truth, preds, ["person"])
    assert m["ap50"] == 1.0 and m["ap75"] == 0.0
    assert m["map"] == pytest.approx(0.5)  # Matches at 0.50, 0.55, 0.60, 0.65, 0.70.


def test_ranking_decides_average_precision():
    truth = [_one([[0, 0, 10, 10], [50, 50, 60, 60]])]
    # One hit (score 0.9), one false box (0.8), one true box missed: recall tops out at 0.5
    # with precision 1 -> 51 of COCO's 101 recall points.
    m = det.detection_metrics(truth, [_pred([[0, 0, 10, 10], [80, 80, 90, 90]], [0.9, 0.8])], ["p"])
    assert m["ap50"] == pytest.approx(51 / 101)
    assert m["recall50"] == 0.5
    # The false box ranked first halves the precision at that recall.
    m = det.detection_metrics(truth, [_pred([[0, 0, 10, 10], [80, 80, 90, 90]], [0.9, 0.95])], ["p"])
    assert m["ap50"] == pytest.approx(0.5 * 51 / 101)


def test_wrong_class_and_duplicates_are_false_positives():
    truth = [_one([[0, 0, 10, 10]], [1])]
    m = det.detection_metrics(truth, [_pred([[0, 0, 10, 10]], [0.9], [0])], ["a", "b"])
    assert m["ap50"] == 0.0 and list(m["ap50_by_class"]) == ["b"]  # Class a has no truth: not averaged.
    # A duplicate of a matched box is a false positive ranked below the hit: AP stays 1.
    m = det.detection_metrics(truth, [_pred([[0, 0, 10, 10], [0, 0, 10, 9]], [0.9, 0.8], [1, 1])], ["a", "b"])
    assert m["ap50"] == 1.0
    # A poor box (IoU 0.4) ranked above the hit is a false positive first: precision 0.5 everywhere.
    m = det.detection_metrics(truth, [_pred([[0, 0, 10, 10], [0, 0, 10, 4]], [0.9, 0.95], [1, 1])], ["a", "b"])
    assert m["ap50"] == pytest.approx(0.5)


def test_ap_by_object_size():
    truth = [_one([[0, 0, 20, 20], [100, 100, 200, 200]])]  # 400 px (small) and 10,000 px (large).
    preds = [_pred([[0, 0, 20, 20]], [0.9])]  # Only the small one found.
    m = det.detection_metrics(truth, preds, ["p"])
    assert m["ap50_small"] == 1.0
    assert m["ap50_large"] == 0.0
    assert np.isnan(m["ap50_medium"])


def test_box_format_round_trip():
    xyxy = np.array([[10, 20, 50, 80]], np.float64)
    for fmt in ("xywh", "cxcywh"):
        np.testing.assert_allclose(det.convert(det.convert(xyxy, "xyxy", fmt), fmt), xyxy)
    np.testing.assert_allclose(det.convert(xyxy, "xyxy", "cxcywh"), [[30, 50, 40, 60]])
    with pytest.raises(ValueError, match="Expected a box format"):
        det.convert(xyxy, "yxyx")


def test_voc_yolo_and_coco_loaders(tmp_path):
    (tmp_path / "a.xml").write_text(
        "<annotation><size><width>64</width><height>48</height></size>"
        "<object><name>person</name><bndbox><xmin>1</xmin><ymin>2</ymin><xmax>10</xmax><ymax>20</ymax></bndbox></object>"
        "</annotation>")
    (h, w), objects = det.read_voc(tmp_path / "a.xml")
    assert (h, w) == (48, 64) and objects == [("person", [0.0, 1.0, 10.0, 20.0])]

    root = tmp_path / "yolo"
    (root / "train" / "images").mkdir(parents=True)
    (root / "train" / "labels").mkdir()
    Image.new("RGB", (100, 50)).save(root / "train" / "images" / "x.jpg")
    (root / "train" / "labels" / "x.txt").write_text("2 0.5 0.5 0.2 0.4\n0 0.1 0.1 0.1 0.1\n9 0.5 0.5 1 1\nbad\n")
    (root / "data.yaml").write_text("train: ../train/images\nnc: 3\nnames: ['Hardhat', 'Mask', 'Person']\n")
    names = det.read_yaml_names(root / "data.yaml")
    assert names == ["Hardhat", "Mask", "Person"]
    report = DataReport()
    split = det.read_yolo(root / "train" / "images", names, {"person": "person"}, ["person", "machinery"], report)
    np.testing.assert_allclose(split.boxes[0], [[40, 15, 60, 35]])  # Only the Person box, in pixels.
    assert split.classes[0].tolist() == [0] and split.sizes == [(50, 100)]
    assert sorted(r.split(":")[0] for _, r in report.noted) == ["bad class", "bad line"]

    (root / "data2.yaml").write_text("names:\n  0: person\n  1: excavator\n")
    assert det.read_yaml_names(root / "data2.yaml") == ["person", "excavator"]

    coco = {"images": [{"id": 7, "file_name": "x.jpg", "width": 100, "height": 50}],
            "annotations": [{"id": 1, "image_id": 7, "category_id": 3, "bbox": [10, 5, 20, 10]},
                            {"id": 2, "image_id": 7, "category_id": 4, "bbox": [0, 0, 5, 5], "iscrowd": 1}],
            "categories": [{"id": 3, "name": "person"}, {"id": 4, "name": "person"}]}
    (tmp_path / "coco.json").write_text(json.dumps(coco))
    split = det.read_coco(tmp_path / "coco.json", root / "train" / "images", ["person"], None, DataReport())
    np.testing.assert_allclose(split.boxes[0], [[10, 5, 30, 15]])  # Crowd boxes are left out.


def test_yolo_loader_on_the_real_construction_set():
    root = realdata("machinery_proximity", "css-data")
    yaml = next(root.rglob("data.yaml"), None) or next(root.parent.rglob("data.yaml"))
    names = det.read_yaml_names(yaml)
    assert len(names) == 10 and "Person" in names and "machinery" in names
    report = DataReport()
    split = det.read_yolo(root / "train" / "images", names, None, names, report)
    assert len(split) == 291 and not report.skipped
    assert sum(len(b) for b in split.boxes) > 291
    person = names.index("Person")
    assert all(((c == person).any()) for c in split.classes)  # Every image has a person (MANIFEST).
    for boxes, (h, w) in zip(split.boxes, split.sizes):
        assert (boxes[:, 2:] <= [w, h]).all() and (boxes[:, :2] >= 0).all()


def test_yolo_split_dirs_find_moved_sets(tmp_path):
    """Roboflow's `../train/images`, another machine's Windows paths, and plain folder names."""
    for split in ("train", "valid"):
        (tmp_path / "css" / split / "images").mkdir(parents=True)
    (tmp_path / "data.yaml").write_text("train: F://PPE detection//css//train//images\n"
                                        "val: F:\\\\PPE detection\\\\css\\\\valid\\\\images\nnames: [a]\n")
    found = det.yolo_split_dirs(tmp_path / "data.yaml")
    assert found == {"train": (tmp_path / "css/train/images").resolve(), "val": (tmp_path / "css/valid/images").resolve()}
    (tmp_path / "css" / "data.yaml").write_text("train: ../train/images\nval: ../valid/images\nnames: [a]\n")
    assert det.yolo_split_dirs(tmp_path / "css" / "data.yaml") == found
    (tmp_path / "css" / "test" / "images").mkdir(parents=True)
    (tmp_path / "css" / "plain.yaml").write_text("names: [a]\n")
    assert set(det.yolo_split_dirs(tmp_path / "css" / "plain.yaml")) == {"train", "val", "test"}


def test_data_yaml_as_ultralytics_and_roboflow_write_it(tmp_path):
    """Flow mappings, quoted names with commas, comments and blank lines (PyYAML reads them all)."""
    cases = {
        "names: {0: person, 1: excavator}\n": ["person", "excavator"],
        "# a comment\n\nnames:\n  - 'hard hat, yellow'  # quoted, with a comma\n\n  - \"person\"\n": [
            "hard hat, yellow", "person"],
        "names:\n  1: excavator\n  0: person\n": ["person", "excavator"],
        "nc: 2\n": ["0", "1"],
    }
    for n, (text, names) in enumerate(cases.items()):
        (tmp_path / f"{n}.yaml").write_text(text)
        assert det.read_yaml_names(tmp_path / f"{n}.yaml") == names, text
    (tmp_path / "bad.yaml").write_text("names: [a, b\n")
    with pytest.raises(UserError, match="Expected a YAML file"):
        det.read_yaml_names(tmp_path / "bad.yaml")
    (tmp_path / "none.yaml").write_text("train: x\n")
    with pytest.raises(UserError, match="Expected `names:`"):
        det.read_yaml_names(tmp_path / "none.yaml")


def _ultralytics_set(root, with_labels=True):
    """The Ultralytics layout: `images/train` + `labels/train`, `path:` naming the root."""
    for split in ("train", "val"):
        (root / "images" / split).mkdir(parents=True)
        (root / "labels" / split).mkdir(parents=True)
        for i in range(2):
            Image.new("RGB", (80, 40)).save(root / "images" / split / f"{split}{i}.jpg")
            if with_labels:
                (root / "labels" / split / f"{split}{i}.txt").write_text("1 0.5 0.5 0.25 0.5\n")


def test_ultralytics_layout_and_data_yaml_path(tmp_path):
    root = tmp_path / "site"
    _ultralytics_set(root)
    cfg = tmp_path / "elsewhere" / "site.yaml"  # The yaml away from the data, as Ultralytics keeps them.
    cfg.parent.mkdir()
    cfg.write_text(f"path: {root}\ntrain: images/train\nval: images/val\nnames:\n  0: person\n  1: excavator\n")
    assert det.label_path(root / "images" / "train" / "a.jpg") == root / "labels" / "train" / "a.txt"
    assert det.label_path(Path("set/train/images/a.png")) == Path("set/train/labels/a.txt")
    report = DataReport()
    parts = det.read_yolo_set(cfg, ["person", "machinery"], {"excavator": "machinery"}, report)
    assert {k: len(v) for k, v in parts.items()} == {"train": 2, "val": 2}
    np.testing.assert_allclose(parts["train"].boxes[0], [[30, 10, 50, 30]])
    assert parts["train"].classes[0].tolist() == [1] and report.counts["label files"] == 4

    # A `.txt` list of images, relative to `path:`, is a split too.
    (root / "train.txt").write_text("images/train/train1.jpg\n")
    cfg.write_text(f"path: {root}\ntrain: train.txt\nval: [images/val]\nnames: [person, excavator]\n")
    parts = det.read_yolo_set(cfg, ["person", "machinery"], {"excavator": "machinery"}, DataReport())
    assert [Path(p).name for p in parts["train"].paths] == ["train1.jpg"] and len(parts["val"]) == 2


def test_a_set_with_images_but_no_labels_is_an_error_naming_where_they_were_looked_for(tmp_path):
    root = tmp_path / "site"
    _ultralytics_set(root, with_labels=False)
    (root / "data.yaml").write_text("train: images/train\nval: images/val\nnames: [person]\n")
    with pytest.raises(UserError, match=r"Expected YOLO label files.*labels/train"):
        det.read_yolo_set(root / "data.yaml", ["person"], None, DataReport())


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_ap_matches_pycocotools_on_random_sets(seed):
    """Our AP code against COCO's own evaluator (pycocotools, the `test` extra) on random sets:
    near-miss predictions, duplicates, false positives and objects of every size."""
    coco_mod = pytest.importorskip("pycocotools.coco")
    cocoeval = pytest.importorskip("pycocotools.cocoeval")
    import contextlib
    import io

    rng = np.random.default_rng(seed)
    names = ["person", "machinery", "vehicle"]
    truth, predictions, images, gts, dts = [], [], [], [], []
    for i in range(25):
        n = int(rng.integers(0, 6))
        xy = rng.uniform(0, 400, (n, 2))
        wh = np.exp(rng.uniform(np.log(8), np.log(250), (n, 2)))
        g = np.concatenate([xy, xy + wh], 1).astype(np.float32)
        gc = rng.integers(0, 3, n).astype(np.int32)
        keep = rng.uniform(size=n) < 0.8  # Some objects missed.
        jitter = rng.normal(0, 0.12, (n, 4)) * np.concatenate([wh, wh], 1)
        p = np.concatenate([g[keep] + jitter[keep], g[keep][: 1] + 2.0,  # A near duplicate of one.
                            rng.uniform(0, 450, (int(rng.integers(0, 4)), 2)) @ np.array([[1, 0, 1, 0], [0, 1, 0, 1]])
                            + np.array([0, 0, 30, 40])])  # False positives.
        pc = np.concatenate([gc[keep], gc[keep][: 1], rng.integers(0, 3, len(p) - int(keep.sum()) - min(1, int(keep.sum())))])
        ps = rng.uniform(0.01, 1.0, len(p))
        truth.append((g, gc))
        predictions.append((p.astype(np.float32), ps.astype(np.float32), pc.astype(np.int32)))
        images.append({"id": i, "width": 500, "height": 500})
        for b, c in zip(g, gc):
            w, h = b[2] - b[0], b[3] - b[1]
            gts.append({"id": len(gts) + 1, "image_id": i, "category_id": int(c), "bbox": [*map(float, b[:2]), float(w), float(h)],
                        "area": float(w * h), "iscrowd": 0})
        for b, s, c in zip(p, ps, pc):
            dts.append({"image_id": i, "category_id": int(c), "score": float(s),
                        "bbox": [float(b[0]), float(b[1]), float(b[2] - b[0]), float(b[3] - b[1])]})
    ours = det.detection_metrics(truth, predictions, names)

    with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints its tables.
        gt = coco_mod.COCO()
        gt.dataset = {"images": images, "annotations": gts, "categories": [{"id": c, "name": n} for c, n in enumerate(names)]}
        gt.createIndex()
        run = cocoeval.COCOeval(gt, gt.loadRes(dts), "bbox")
        run.evaluate()
        run.accumulate()
        run.summarize()
    stats = run.stats  # AP, AP50, AP75, AP small, medium, large (all at 100 detections per image).
    assert ours["map"] == pytest.approx(stats[0], abs=1e-6)
    assert ours["ap50"] == pytest.approx(stats[1], abs=1e-6)
    assert ours["ap75"] == pytest.approx(stats[2], abs=1e-6)
    # By size, COCO reports AP over 0.5:0.95; ours reports AP50 by size: compared at IoU 0.5 from COCO's table.
    precision = run.eval["precision"]  # [iou, recall, class, area, maxdets]
    for k, size in enumerate(("small", "medium", "large"), start=1):
        p = precision[0, :, :, k, 2]
        per_class = [p[:, c].mean() for c in range(p.shape[1]) if (p[:, c] > -1).any()]
        if per_class:
            assert ours[f"ap50_{size}"] == pytest.approx(np.mean(per_class), abs=1e-6), size


def test_mosaic_boxes_follow_their_pixels():
    # Four grey tiles, each with one box filled with its own colour: after the tiling, crop and resize, every
    # box kept must still sit on its colour, and no more than max_boxes come back.
    size, colours = 64, [(255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 0)]
    parts = []
    for k, colour in enumerate(colours):
        x = np.full((size, size, 3), 114.0, np.float32)
        x0, y0 = 8 + 4 * k, 12 + 2 * k
        x[y0:y0 + 24, x0:x0 + 20] = colour
        boxes = np.full((3, 4), -1.0, np.float32)
        boxes[0] = [x0, y0, x0 + 20, y0 + 24]
        parts.append((tf.constant(x), tf.constant(boxes), tf.constant([float(k), -1.0, -1.0])))
    tf.random.set_seed(3)
    kept_any = 0
    for _ in range(20):
        image, boxes, classes = (t.numpy() for t in det.mosaic(parts, size, max_boxes=3))
        assert image.shape == (size, size, 3) and boxes.shape == (3, 4) and classes.shape == (3,)
        for box, c in zip(boxes, classes):
            if c < 0:
                continue
            kept_any += 1
            assert 0 <= box[0] < box[2] <= size and 0 <= box[1] < box[3] <= size
            cx, cy = int((box[0] + box[2]) / 2), int((box[1] + box[3]) / 2)
            np.testing.assert_allclose(image[cy, cx], colours[int(c)], atol=30)
    assert kept_any >= 20  # Most of the 80 boxes survive crops of at least one image side.


def test_hsv_jitter_moves_colours_not_boxes():
    # A grey frame with one saturated red box: with gain 0 nothing changes; at gain 1 the pixels change (colour
    # jitter did something), stay in 0-255, and the box still sits on its own (reddest) pixels after the flip
    # and zoom that follow in the same augmentation.
    size = 64
    x = np.full((size, size, 3), 114.0, np.float32)
    x[10:40, 20:44] = (220, 30, 30)
    boxes = tf.constant([[20.0, 10.0, 44.0, 40.0], [-1.0, -1.0, -1.0, -1.0]])
    classes = tf.constant([0.0, -1.0])
    np.testing.assert_allclose(det.hsv_jitter(tf.constant(x), 0.0).numpy(), x, atol=1e-3)
    tf.random.set_seed(5)
    changed = 0
    for _ in range(10):
        jittered = det.hsv_jitter(tf.constant(x), 1.0).numpy()
        assert jittered.min() >= 0.0 and jittered.max() <= 255.0
        changed += int(np.abs(jittered - x).max() > 1.0)
        image, b, c = (t.numpy() for t in det.zoom_and_flip(tf.constant(x), boxes, classes, size, 0.1, hsv=1.0))
        assert c[0] == 0.0
        x0, y0, x1, y1 = (int(round(v)) for v in b[0])
        redness = image[..., 0] - image[..., 1]  # Grey (and the grey pad) has none, even desaturated red some.
        far = np.ones((size, size), bool)
        far[max(y0 - 3, 0):y1 + 3, max(x0 - 3, 0):x1 + 3] = False
        assert redness[y0 + 2:y1 - 2, x0 + 2:x1 - 2].mean() > 30 and np.abs(redness[far]).max() < 5
    assert changed == 10


def test_mirror_order_maps_each_anchor_to_its_mirror_image():
    from suite import kerascv

    height, width = 64, 96
    centres = []  # keras-cv's layout: level by level, each grid row by row, centres at (index + 0.5) * stride.
    for stride in kerascv.YOLO_STRIDES:
        ys, xs = np.meshgrid(np.arange(0, height, stride), np.arange(0, width, stride), indexing="ij")
        centres.append(np.stack([xs.ravel() + stride / 2, ys.ravel() + stride / 2, np.full(xs.size, stride)], 1))
    centres = np.concatenate(centres)
    order = kerascv.mirror_order(height, width)
    np.testing.assert_array_equal(centres[order], np.stack([width - centres[:, 0], centres[:, 1], centres[:, 2]], 1))
    np.testing.assert_array_equal(order[order], np.arange(len(order)))  # Mirroring twice: where it started.
    with pytest.raises(ValueError, match="multiple of 32.*Received: 100"):
        kerascv.mirror_order(64, 100)


def test_test_time_flips_give_mirrored_detections_for_a_mirrored_image():
    """With flips, the detections of the mirror image are the mirror of the image's detections (the average is
    symmetric), and they differ from the plain detector's."""
    import keras

    from suite import kerascv

    keras.utils.set_random_seed(3)
    model = kerascv.yolo_detector(2, widths=(8, 16, 32, 32), confidence_threshold=0.001, max_detections=50)
    image = tf.constant(np.random.default_rng(0).uniform(0, 255, (1, 96, 128, 3)), tf.float32)
    a = kerascv.detect(model, image, 0.001, 500, 1.0, flips=True)
    b = kerascv.detect(model, tf.reverse(image, [2]), 0.001, 500, 1.0, flips=True)
    plain = kerascv.detect(model, image, 0.001, 500, 1.0)
    n = int(a["num_detections"][0])
    assert 5 < n < 500 and int(b["num_detections"][0]) == n  # Not cut at 500: no tie decides the last place.
    boxes_a, boxes_b = a["boxes"][0, :n].numpy(), b["boxes"][0, :n].numpy()
    mirrored = np.stack([128 - boxes_b[:, 2], boxes_b[:, 1], 128 - boxes_b[:, 0], boxes_b[:, 3]], 1)
    np.testing.assert_allclose(a["confidence"][0, :n], b["confidence"][0, :n], atol=1e-6)
    # Box by box, as sets: an untrained head ties scores, and greedy NMS would keep either of two tied boxes
    # (IoU 1.0 keeps them all: the averaging is what is checked here).
    gap = np.abs(boxes_a[:, None] - mirrored[None]).max(-1)
    assert gap.min(1).max() < 1e-3 and gap.min(0).max() < 1e-3
    # An untrained head scores every anchor near 0.5: the average moves the scores by ~1e-6, but it moves them.
    assert np.abs(plain["confidence"][0, :n] - a["confidence"][0, :n]).max() > 1e-6


def test_copy_paste_pastes_masked_objects_with_their_boxes():
    # Target: grey, two red boxes at mirror places. Source: blue object 1 clear of them, green object 2 over one of
    # them (mirrored or not), yellow object 3 with no box of its own, cyan object 4 in the target's grey pad. Pasted
    # pixels must be exactly a pasted object's mask (or its mirror), each pasted box its mask's box; objects 2 (covers
    # a target box), 3 and 4 never come.
    size, k = 64, 4
    x = np.full((size, size, 3), 114.0, np.float32)
    x[30:50, 4:14] = x[30:50, 50:60] = (220, 30, 30)
    target_boxes = np.full((k, 4), -1.0, np.float32)
    target_boxes[:2] = [[4, 30, 14, 50], [50, 30, 60, 50]]
    target = (tf.constant(x), tf.zeros((size, size), tf.uint8), tf.constant([48, 64]), tf.constant(target_boxes),
              tf.constant([0.0, 0.0, -1.0, -1.0]))
    xs = np.zeros((size, size, 3), np.float32)
    mask = np.zeros((size, size), np.uint8)
    objects = [((5, 25), (40, 52), (0, 0, 255)), ((28, 46), (2, 12), (0, 255, 0)),
               ((5, 15), (20, 30), (255, 255, 0)), ((52, 62), (20, 30), (0, 255, 255))]
    for i, (rows, cols, colour) in enumerate(objects, 1):
        mask[slice(*rows), slice(*cols)] = i
        xs[slice(*rows), slice(*cols)] = colour
    source = (tf.constant(xs), tf.constant(mask), tf.constant([64, 64]), tf.zeros((k, 4)),
              tf.constant([0.0, 0.0, -1.0, 0.0]))
    blue = np.zeros((size, size), bool)
    blue[5:25, 40:52] = True
    tf.random.set_seed(7)
    pasted = 0
    for _ in range(40):
        image, boxes, classes = (t.numpy() for t in det.copy_paste(target, source, k))
        np.testing.assert_array_equal(boxes[:2], target_boxes[:2])  # The target's boxes first, untouched.
        kept = boxes[classes >= 0]
        changed = np.abs(image - x).max(-1) > 0
        if len(kept) == 2:
            assert not changed.any()
            continue
        pasted += 1
        assert len(kept) == 3 and classes[2] == 0.0
        where = blue if changed[5:25, 40:52].all() else blue[:, ::-1]
        np.testing.assert_array_equal(changed, where)
        assert (image[where] == (0, 0, 255)).all()
        ys, xs_ = np.nonzero(where)
        np.testing.assert_array_equal(kept[2], [xs_.min(), ys.min(), xs_.max() + 1, ys.max() + 1])
    assert 5 <= pasted <= 35  # Object 1 comes with probability 1/2.


def test_letterboxed_masks_line_up_with_letterboxed_boxes(tmp_path):
    # A 90 x 150 mask with two objects: letterboxed to 64 like its image, each id's box is the scaled box.
    mask = np.zeros((90, 150), np.uint8)
    mask[10:80, 20:50], mask[30:60, 100:140] = 1, 2
    Image.fromarray(mask, "L").save(tmp_path / "m.png")
    small = det.letterbox_mask(str(tmp_path / "m.png"), 64)
    assert small.shape == (64, 64) and not small[38:].any()  # round(90 x 64 / 150) = 38 rows, then the pad.
    boxes, present = (t.numpy() for t in det.mask_boxes(tf.constant(small), 3))
    np.testing.assert_array_equal(present, [True, True, False])
    np.testing.assert_allclose(boxes[:2], np.array([[20, 10, 50, 80], [100, 30, 140, 60]]) * 64 / 150, atol=1.0)
    assert not det.letterbox_mask(None, 64).any()
