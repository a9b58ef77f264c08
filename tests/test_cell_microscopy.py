"""cell_microscopy: the instance metric on hand-made masks, instance extraction,
the DSB loader on real and broken files, and SavedModel parity."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from conftest import realdata, run_cli
from suite.errors import UserError
from suite.export import load_export
from suite import segmentation as segm
from tasks import cell_microscopy as cm


def _square(shape, y, x, size, value=1, into=None):
    out = np.zeros(shape, np.int32) if into is None else into
    out[y : y + size, x : x + size] = value
    return out


def test_dsb_score_on_hand_made_masks():
    true = _square((40, 40), 5, 5, 10)
    # The same square: IoU 1 at every threshold.
    s = segm.instance_scores(segm.match(true, true.copy()))
    assert s == {"dsb": 1.0, "tp50": 1, "fp50": 0, "fn50": 0}
    # Shifted by 2 px: intersection 80, union 120, IoU 2/3 > 0.5 ... 0.65, not above 0.7:
    # 4 of 10 thresholds score 1, the other six 0 / (1 + 1).
    shifted = _square((40, 40), 5, 7, 10)
    iou = segm.match(true, shifted)
    assert iou[0, 0] == pytest.approx(80 / 120)
    assert segm.instance_scores(iou)["dsb"] == pytest.approx(0.4)
    # A missed nucleus and a false one: TP 1, FP 1, FN 1 at every threshold -> 1/3.
    true2 = _square((40, 40), 25, 25, 8, 2, into=true.copy())
    pred2 = _square((40, 40), 25, 2, 6, 2, into=true.copy())
    s = segm.instance_scores(segm.match(true2, pred2))
    assert s["dsb"] == pytest.approx(1 / 3)
    assert (s["tp50"], s["fp50"], s["fn50"]) == (1, 1, 1)
    # Nothing true, nothing predicted: a perfect image.
    empty = np.zeros((10, 10), np.int32)
    assert segm.instance_scores(segm.match(empty, empty))["dsb"] == 1.0


def test_splits_and_merges_are_counted_apart_from_misses():
    true = _square((40, 40), 2, 2, 10)
    _square((40, 40), 2, 12, 10, 2, into=true)  # Two touching nuclei ...
    _square((40, 40), 25, 25, 10, 3, into=true)  # ... and a third alone.
    pred = _square((40, 40), 2, 2, 10)
    pred[2:12, 12:22] = 1  # The pair comes back as one instance: a merge.
    pred[25:35, 25:30], pred[25:35, 30:35] = 2, 3  # The third in two halves: a split.
    assert segm.splits_and_merges(true, pred) == (1, 1)
    assert segm.splits_and_merges(true, true) == (0, 0)
    assert segm.splits_and_merges(true, np.zeros_like(true)) == (0, 0)  # Missing is neither.


def test_rescale_factor_brings_the_median_nucleus_to_the_recipe_diameter():
    recipe = dataclasses.replace(cm.RECIPES["default"], nucleus_diameter=2 * np.sqrt(400 / np.pi))
    instances = np.zeros((64, 64), np.int32)
    for k, (y, x) in enumerate([(2, 2), (2, 30), (30, 2)], start=1):
        _square((64, 64), y, x, 10, k, into=instances)  # Area 100: half the recipe's diameter.
    assert float(segm.rescale_factor(tf.constant(instances), recipe)) == pytest.approx(2.0)
    instances[instances > 0] = 0
    _square((64, 64), 0, 0, 60, 1, into=instances)  # Huge: clipped at a third.
    assert float(segm.rescale_factor(tf.constant(instances), recipe)) == pytest.approx(1 / 3)
    assert float(segm.rescale_factor(tf.zeros((8, 8), tf.int32), recipe)) == 1.0  # No nucleus, no resize.


def test_sample_styles_are_named_looks(tmp_path):
    for style in ("baseline", "realistic"):
        cm.TASK.make_data(tmp_path / style, 2, 0, style)
        assert len(cm.load_data(tmp_path / style, cm.RECIPES["default"]).splits["all"]) == 2
    with pytest.raises(UserError, match="Expected a sample style of cell_microscopy: baseline, realistic"):
        cm.TASK.make_data(tmp_path / "x", 2, 0, "fluorescence")


def test_connected_components_are_8_connected():
    mask = np.zeros((12, 12), bool)
    mask[1:4, 1:4] = True  # Blob A ...
    mask[4, 4] = True  # ... touching it diagonally: still A.
    mask[8:11, 2:5] = True  # Blob B.
    mask[2:10, 9] = True  # A long thin C.
    labels = segm.connected_components(tf.constant(mask)).numpy()
    assert labels[mask].min() > 0 and (labels[~mask] == 0).all()
    assert len(np.unique(labels[mask])) == 3
    assert labels[1, 1] == labels[4, 4]


def test_a_component_longer_than_the_step_limit_is_one_component():
    """A serpentine mask whose one component is ~8,000 pixels long: plain max-pooling needs a step per pixel of
    path and stopped at 1,024 with thousands of pieces; jumping along ids joins it (and matches scipy)."""
    from scipy import ndimage

    mask = np.zeros((256, 256), bool)
    mask[::4, :] = True
    for row in range(0, 252, 8):  # Join the rows at alternate ends into one path.
        mask[row:row + 5, 255] = True
        mask[row + 4:row + 9, 0] = True
    labels = segm.connected_components(tf.constant(mask)).numpy()
    _, count = ndimage.label(mask, structure=np.ones((3, 3)))
    assert count == 1 and len(np.unique(labels[mask])) == 1 and (labels[~mask] == 0).all()


def test_touching_nuclei_come_back_as_separate_instances():
    """targets() and instances_from_maps() invert each other on clean maps."""
    recipe = cm.RECIPES["default"]
    true = np.zeros((48, 48), np.int32)
    true[10:26, 8:24] = 1
    true[10:26, 24:40] = 2  # Touching the first along a whole side.
    true[32:44, 30:42] = 3
    kinds = np.array([0, 0, 1, 0])  # Nucleus 2 is atypical.
    seg, aty = segm.targets(true, kinds, recipe.boundary_px)
    probs = tf.one_hot(seg, 3)
    out = segm.instances_from_maps(probs, tf.constant(aty, tf.float32), recipe)
    pred = out["instances"].numpy()
    iou = segm.match(true, pred)
    assert int(out["num_nuclei"]) == 3
    assert (iou.max(1) > 0.85).all(), iou
    assert out["counts"].numpy().tolist() == [2, 1]
    assert out["instance_class"].numpy()[iou[1].argmax()] == 1


def test_small_nuclei_keep_an_interior_to_seed_from():
    """A nucleus narrower than two boundary rings gets a thinner ring, not none: under the 2 px ring a 5 px
    nucleus kept one interior pixel, too fragile a seed on real images."""
    recipe = cm.RECIPES["default"]
    true = np.zeros((32, 32), np.int32)
    yy, xx = np.mgrid[:32, :32]
    true[(yy - 8) ** 2 + (xx - 8) ** 2 <= 6.25] = 1  # 21 px, 5 across.
    true[20:30, 20:30] = 2
    seg, _ = segm.targets(true, np.zeros(3, np.int32), recipe.boundary_px)
    assert ((seg == 1) & (true == 1)).sum() == 5  # Under a 1 px ring: the centre and its four neighbours.
    assert ((seg == 1) & (true == 2)).sum() == 36  # Large enough for the 2 px ring: 6 x 6.
    out = segm.instances_from_maps(tf.one_hot(seg, 3), tf.zeros((32, 32)), recipe)
    assert int(out["num_nuclei"]) == 2 and (segm.match(true, out["instances"].numpy()).max(1) > 0.8).all()


def test_a_seed_with_two_cores_splits_and_a_faint_nucleus_stays():
    """Two nuclei whose interiors meet at P 0.4 are one seed at 0.3; `seed_split_threshold` 0.6 splits them
    along the dip, and a faint lone nucleus (P 0.45, no core) is kept, as seeds at 0.6 alone would not keep it."""
    yy, xx = np.mgrid[:64, :64]
    p = np.zeros((64, 64), np.float32)
    for cx in (24, 36):  # Cones 10 px in radius, 12 px apart: P 0.4 where they meet.
        p = np.maximum(p, np.clip(1 - np.sqrt((yy - 32) ** 2 + (xx - cx) ** 2) / 10, 0, 1))
    p = np.maximum(p, 0.45 * ((yy - 10) ** 2 + (xx - 10) ** 2 < 25))
    maps, none = tf.constant(np.stack([1 - p, p, 0 * p], -1)), tf.zeros((64, 64))
    base = dataclasses.replace(cm.RECIPES["default"], seed_threshold=0.3, fg_threshold=0.2)
    joined = segm.instances_from_maps(maps, none, base)["instances"].numpy()
    split = segm.instances_from_maps(maps, none, dataclasses.replace(base, seed_split_threshold=0.6))
    labels = split["instances"].numpy()
    assert len(np.unique(joined)) - 1 == 2 and int(split["num_nuclei"]) == 3
    assert (labels > 0).sum() == (joined > 0).sum()  # The same pixels, shared out: nothing lost.
    left, right = labels[32, 26], labels[32, 34]
    assert left != right and left > 0 and right > 0 and labels[10, 10] > 0


def test_split_levels_part_nuclei_pressed_closer_together():
    """Three nuclei in a row, the first meeting the second at P 0.4 and the second the third at P 0.7: a split at
    0.6 parts the first from the other two, and `seed_split_also` (0.8) parts those two as well."""
    yy, xx = np.mgrid[:48, :64]
    p = np.zeros((48, 64), np.float32)
    for cx in (16, 28, 34):  # Cones 10 px in radius: 12 px apart meet at P 0.4, 6 px apart at 0.7.
        p = np.maximum(p, np.clip(1 - np.sqrt((yy - 24) ** 2 + (xx - cx) ** 2) / 10, 0, 1))
    maps, none = tf.constant(np.stack([1 - p, p, 0 * p], -1)), tf.zeros((48, 64))
    base = dataclasses.replace(cm.RECIPES["default"], seed_threshold=0.3, fg_threshold=0.2, min_area=5,
                               seed_split_threshold=0.6)
    once = segm.instances_from_maps(maps, none, base)["instances"].numpy()
    twice = segm.instances_from_maps(maps, none, dataclasses.replace(base, seed_split_also=(0.8,)))["instances"].numpy()
    assert len(np.unique(once)) - 1 == 2 and len(np.unique(twice)) - 1 == 3
    assert once[24, 28] == once[24, 34] != once[24, 16]
    assert len({twice[24, 16], twice[24, 28], twice[24, 34]}) == 3
    assert (twice > 0).sum() == (once > 0).sum()  # The same pixels, shared out: nothing lost.


def test_eroded_seeds_part_two_round_nuclei_at_their_neck_and_keep_lone_ones_whole():
    """Two discs joined by a 3 px neck at full P(interior) (no dip for a P level to split at) are one seed; with
    `seed_erode_px` 2 they part at the neck, and neither a lone large disc nor a small one (its eroded core
    under `min_area`) is cut, and no pixel is lost."""
    yy, xx = np.mgrid[:64, :80]
    interior = np.zeros((64, 80), bool)
    for y, x, r in ((20, 16, 8), (20, 33, 8), (48, 56, 10), (50, 20, 3)):
        interior |= (yy - y) ** 2 + (xx - x) ** 2 <= r * r
    interior[19:22, 16:34] = True  # The neck between the first two, 3 px wide.
    p = interior.astype(np.float32)
    maps, none = tf.constant(np.stack([1 - p, p, 0 * p], -1)), tf.zeros((64, 80))
    base = dataclasses.replace(cm.RECIPES["default"], seed_threshold=0.3, fg_threshold=0.2)
    whole = segm.instances_from_maps(maps, none, base)["instances"].numpy()
    parted = segm.instances_from_maps(maps, none, dataclasses.replace(base, seed_erode_px=2))["instances"].numpy()
    assert len(np.unique(whole)) - 1 == 3 and len(np.unique(parted)) - 1 == 4
    assert whole[20, 16] == whole[20, 33] and parted[20, 16] != parted[20, 33]
    assert (parted > 0).sum() == (whole > 0).sum()  # The same pixels, shared out.
    assert len(np.unique(parted[(yy - 48) ** 2 + (xx - 56) ** 2 <= 100])) == 1 and parted[50, 20] > 0


def test_transposed_views_make_the_maps_transpose_equivariant():
    """With `test_time_transpose` the segmenter sees all 8 symmetries, so transposing the image transposes
    its maps, even for a net that is not symmetric itself (one lopsided kernel here); with flips alone not."""
    kernel = np.zeros((5, 5, 3, 3), np.float32)
    kernel[2, :, :, 1] = 0.02  # A horizontal smear: interior evidence spreads along rows only.
    conv = lambda x: tf.nn.conv2d(x, kernel, 1, "SAME")

    def model(x, training=False):
        logits = conv(x) - tf.constant([0.0, 2.0, 9.0])
        return {"segmentation": tf.nn.softmax(logits), "atypical": tf.zeros_like(logits[..., :1])}

    pixels = np.zeros((40, 48, 3), np.uint8)
    for y, x in ((5, 6), (20, 30), (30, 10)):
        pixels[y : y + 3, x : x + 3] = 255  # Small bright squares, smeared into bars by the net.
    image = tf.constant(pixels)
    for transpose, equal in ((True, True), (False, False)):
        recipe = dataclasses.replace(cm.RECIPES["default"], test_time_transpose=transpose, seed_threshold=0.5)
        segment = segm.segmenter(model, recipe, stride=8)
        a = segment(image)["semantic"].numpy() > 0
        b = segment(tf.transpose(image, [1, 0, 2]))["semantic"].numpy().T > 0
        assert a.any() and (a == b).mean() > 0.999 if equal else (a != b).mean() > 0.01, (transpose, a.mean())


def test_test_time_scales_average_the_maps_of_resized_images(monkeypatch):
    """With `test_time_scales` the maps are the mean of the net's maps on the image resized by each scale and
    resized back (bilinear), so they keep the image's size; a net that is not scale invariant (a fixed 5 px
    kernel) gives other maps than at 1x alone."""
    kernel = np.zeros((5, 5, 3, 3), np.float32)
    kernel[:, :, :, 1] = 3e-4  # Interior evidence: brightness summed over 5 x 5 px, whatever the scale.

    def model(x, training=False):
        logits = tf.nn.conv2d(x, kernel, 1, "SAME") - tf.constant([0.0, 2.0, 9.0])
        return {"segmentation": tf.nn.softmax(logits), "atypical": tf.sigmoid(logits[..., 1:2])}

    seen = []
    original = segm.instances_from_maps
    monkeypatch.setattr(segm, "instances_from_maps", lambda s, a, r, steps=None: (
        seen.append((s.numpy(), a.numpy())), original(s, a, r, steps))[1])
    rng = np.random.default_rng(0)
    pixels = (rng.random((37, 45, 3)) * 255).astype(np.uint8)  # Sides no multiple of the stride, on purpose.

    def at(scale):  # The net's maps on the image resized by `scale`, padded to the stride and cropped back.
        x = tf.cast(pixels, tf.float32)
        size = [max(round(37 * scale), 8), max(round(45 * scale), 8)]
        x = tf.image.resize(x, size) if scale != 1.0 else x
        padded = tf.pad(x, [[0, -size[0] % 8], [0, -size[1] % 8], [0, 0]], mode="SYMMETRIC")[None]
        out = model(padded)
        seg, aty = out["segmentation"][0, : size[0], : size[1]], out["atypical"][0, : size[0], : size[1]]
        return tf.image.resize(seg, [37, 45]).numpy(), tf.image.resize(aty, [37, 45])[..., 0].numpy()

    for scales in ((1.0,), (0.75, 1.0, 1.5)):
        recipe = dataclasses.replace(cm.RECIPES["default"], test_time_flips=False, test_time_scales=scales)
        segm.segmenter(model, recipe, stride=8)(tf.constant(pixels))
        seg, aty = seen[-1]
        want = [at(s) for s in scales]
        assert seg.shape == (37, 45, 3) and aty.shape == (37, 45)
        np.testing.assert_allclose(seg, np.mean([w[0] for w in want], 0), atol=1e-5)
        np.testing.assert_allclose(aty, np.mean([w[1] for w in want], 0), atol=1e-5)
    assert np.abs(seen[0][0] - seen[1][0]).max() > 0.01  # The scales changed the maps.


def test_loader_reports_overlaps_empty_and_broken_masks(tmp_path):
    folder = tmp_path / "abc"
    (folder / "images").mkdir(parents=True)
    (folder / "masks").mkdir()
    Image.fromarray(np.full((32, 32, 4), 200, np.uint8), "RGBA").save(folder / "images" / "abc.png")
    for name, square in (("m1", (2, 2, 10)), ("m2", (8, 8, 10)), ("m3", None)):
        mask = np.zeros((32, 32), np.uint8)
        if square:
            y, x, s = square
            mask[y : y + s, x : x + s] = 255
        Image.fromarray(mask, "L").save(folder / "masks" / f"{name}.png")
    (folder / "masks" / "m4.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    data = cm.load_data(tmp_path, cm.RECIPES["smoke"])
    reasons = {r.split(":")[0] for _, r in data.report.skipped}
    assert reasons >= {"empty mask"} and len(data.report.skipped) == 2  # m3 empty, m4 unreadable.
    assert [i for _, i in data.report.noted] == ["overlap: 16 pixels kept by an earlier mask"]
    everything = data.splits["all"]
    assert int(everything.instances[0].max()) == 2
    assert (everything.instances[0] == 2).sum() == 100 - 16
    with pytest.raises(UserError, match="Expected the Data Science Bowl 2018 layout"):
        cm.load_data(tmp_path / "abc" / "masks", cm.RECIPES["smoke"])


def test_loader_reads_real_dsb2018():
    root = realdata("cell_microscopy")
    data = cm.load_data(root, cm.RECIPES["default"])
    everything = data.splits["all"]
    assert len(everything) == 150
    nuclei = sum(int(m.max()) for m in everything.instances)
    assert nuclei == 7589 and data.report.skipped == []  # One per mask file of the 150 folders; none dropped.
    sizes = {im.shape for im in everything.images}
    assert len(sizes) > 3 and all(s[2] == 3 for s in sizes)  # Mixed sizes; RGBA and grey became RGB.
    assert sum(len(data.splits[s]) for s in ("train", "val", "test")) == 150
    assert not set(data.splits["test"].ids) & set(data.splits["train"].ids)


@pytest.mark.parametrize("smoke", ["cell_microscopy"], indirect=True)
def test_export_matches_the_keras_model(smoke):
    """Instance maps and counts from the SavedModel equal the in-process pipeline's."""
    import keras

    work = smoke["work"]
    config = json.loads((work / "run" / "config.json").read_text())
    recipe = cm.Recipe(**{k: tuple(v) if isinstance(v, list) else v for k, v in config["recipe"].items()})
    model = keras.saving.load_model(work / "run" / "best.keras")
    loaded, _ = load_export(smoke["export"], "cell_microscopy")
    segment = cm._segment_fn(model, recipe)
    images = sorted((work / "data").glob("*/images/*.png"))[:3]
    for path in images:
        pixels = np.asarray(Image.open(path).convert("RGB"))
        want = segment(tf.constant(pixels))
        got = loaded.serve_bytes(tf.constant(path.read_bytes()))
        assert int(got["num_nuclei"]) > 0  # Every generated image has nuclei: equal empty maps prove nothing.
        assert got["instances"].shape == pixels.shape[:2]
        np.testing.assert_array_equal(got["instances"].numpy(), want["instances"].numpy())
        np.testing.assert_array_equal(got["counts"].numpy(), want["counts"].numpy())
        np.testing.assert_array_equal(got["semantic"].numpy(), want["semantic"].numpy())
    # Any size in, the same size out (not a multiple of the U-Net's stride).
    odd = loaded.serve_pixels(tf.constant(np.full((37, 53, 3), 30, np.uint8)))
    assert odd["instances"].shape == (37, 53)
    out = run_cli("predict", "cell_microscopy", str(images[0]), "--model", str(smoke["export"]), cwd=work)
    assert "nuclei (normal" in out.stdout


@pytest.mark.parametrize("smoke", ["cell_microscopy"], indirect=True)
def test_transfer_keeps_the_unet_and_starts_from_its_weights(smoke):
    """Maps, not one softmax: transfer copies every matching layer; features is refused."""
    import keras

    work = smoke["work"]
    run_cli("train", "cell_microscopy", "--data", "data", "--recipe", "smoke", "--approach", "transfer",
            "--from", "run", "--run-dir", "transfer", "--set", "epochs=1", cwd=work, fresh=False)
    config = json.loads((work / "transfer" / "config.json").read_text())
    source = keras.saving.load_model(work / "run" / "best.keras")
    assert config["layers_transferred"] == sum(1 for layer in source.layers if layer.weights)
    proc = run_cli("train", "cell_microscopy", "--data", "data", "--recipe", "smoke", "--approach", "features",
                   "--from", "run", "--run-dir", "features", cwd=work, check=False, fresh=False)
    assert proc.returncode == 2
    assert "Expected a classification task for --approach features" in proc.stderr
