"""Pretrained starting points: `--from imagenet:<name>`, `--from preset:<name or folder>`, offline errors.

Nothing is downloaded: the ImageNet weights file is placed where Keras' cache
looks (`$KERAS_HOME/models/`), the preset folder is saved by the test from a
freshly built keras-cv backbone, and the offline cases point the proxy
variables at a closed port on 127.0.0.1 so no request can leave the machine.
"""

from __future__ import annotations

import dataclasses
import json

import h5py
import keras
import keras_cv
import numpy as np
import pytest

from suite import approaches, cli, kerascv
from suite.errors import UserError
from suite.runs import load_model
from tasks import TASKS
from tests.conftest import run_cli
from tests.loopback import closed_port

# Keras names the MobileNetV2 no-top file by alpha and input rows; at 32 px it loads the 224 px weights.
MOBILENET = "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_0.35_224_no_top.h5"


def _offline() -> dict[str, str]:
    proxy = f"http://127.0.0.1:{closed_port()}"
    return {"http_proxy": proxy, "https_proxy": proxy, "HTTP_PROXY": proxy, "HTTPS_PROXY": proxy, "no_proxy": ""}


def _small_backbone() -> keras.Model:
    return keras_cv.models.YOLOV8Backbone(stackwise_channels=[16, 32, 64, 128], stackwise_depth=[1, 1, 1, 1],
                                          include_rescaling=True, activation="swish")


@pytest.mark.slow
def test_imagenet_weights_from_keras_cache_start_a_transfer_run(tmp_path):
    """`--from imagenet:MobileNetV2,alpha=0.35` loads the file Keras' cache holds, by Keras' own lookup."""
    from keras.src.legacy.saving import legacy_h5_format

    models = tmp_path / "keras_home" / "models"
    models.mkdir(parents=True)
    base = keras.applications.MobileNetV2(include_top=False, weights=None, input_shape=(32, 32, 3), alpha=0.35)
    with h5py.File(models / MOBILENET, "w") as f:  # The legacy no-top format Keras publishes.
        legacy_h5_format.save_weights_to_hdf5_group(f, base)

    task = TASKS["traffic_signs"]
    task.make_data(tmp_path / "signs", 60, 0)
    env = {"KERAS_HOME": str(tmp_path / "keras_home"), **_offline()}
    run_cli("train", task.name, "--data", str(tmp_path / "signs"), "--recipe", "smoke", "--approach", "transfer",
            "--from", "imagenet:MobileNetV2,alpha=0.35", "--set", "head_epochs=1", "--set", "epochs=1",
            "--run-dir", str(tmp_path / "run"), cwd=tmp_path, env=env)
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["source"] == "imagenet:MobileNetV2,alpha=0.35"
    model = load_model(tmp_path / "run" / "head" / "best.keras")  # Phase 1 trains the head on the frozen body.
    body = next(layer for layer in model.layers if isinstance(layer, keras.Model))
    # The placed weights (a fresh random draw), not another initialisation.
    for got, want in zip(body.get_weights(), base.get_weights()):
        np.testing.assert_array_equal(got, want)

    # The same file named directly (`--from WEIGHTS.h5`): nothing looked up, nothing fetched; the network the
    # transfer run starts from (the CLI path above trains it; here it is built, which is what differs). (Features +
    # SVM on this random-weight body is refused: its activations are too large for the float32 fold to match
    # scikit-learn, which the fold's own check reports.)
    from suite.approaches import _input_shape, resolve_source, transfer_model

    recipe, names = task.recipes["smoke"], config["class_names"]
    model = transfer_model(resolve_source(str(models / MOBILENET)), _input_shape(task, recipe, names), recipe, names)
    body = next(layer for layer in model.layers if isinstance(layer, keras.Model))
    for got, want in zip(body.get_weights(), base.get_weights()):
        np.testing.assert_array_equal(got, want)


def test_imagenet_offline_says_which_file_and_where(tmp_path):
    task = TASKS["traffic_signs"]
    task.make_data(tmp_path / "signs", 60, 0)
    proc = run_cli("train", task.name, "--data", str(tmp_path / "signs"), "--recipe", "smoke", "--approach",
                   "features", "--from", "imagenet:MobileNetV2,alpha=0.35", cwd=tmp_path, check=False,
                   env={"KERAS_HOME": str(tmp_path / "empty_home"), **_offline()})
    assert proc.returncode == 2
    line = proc.stderr.strip().splitlines()[-1]
    assert line.startswith("error: Expected to download the ImageNet weights for --from imagenet:MobileNetV2")
    assert MOBILENET in line and f"{tmp_path / 'empty_home' / 'models'}/" in line


def test_imagenet_names_are_checked():
    with pytest.raises(UserError, match=r"Did you mean 'MobileNetV2'\?.*Received: 'MobilenetV2'"):
        approaches.resolve_source("imagenet:MobilenetV2")
    with pytest.raises(UserError, match=r"Expected imagenet:ResNet50\[,alpha=FLOAT\]"):
        approaches.resolve_source("imagenet:ResNet50,depth=3")
    assert str(approaches.resolve_source("imagenet:MobileNetV2,alpha=0.5")) == "imagenet:MobileNetV2,alpha=0.5"


@pytest.mark.slow
def test_preset_folder_starts_a_detector_transfer_through_the_cli(tmp_path, monkeypatch, capsys):
    """A preset folder saved from a fresh keras-cv backbone: the detector is built on it with its weights,
    and `suite train --approach transfer --from preset:DIR` trains, saves and reloads it."""
    backbone = _small_backbone()
    kerascv.save_preset(backbone, str(tmp_path / "preset"))
    source = approaches.resolve_source(f"preset:{tmp_path / 'preset'}")
    assert source == approaches.resolve_source(tmp_path / "preset")  # The folder alone is recognised too.

    task = TASKS["pedestrians"]
    recipe = dataclasses.replace(task.recipes["smoke"], backbone_preset=str(tmp_path / "preset"))
    detector = task.build_model(recipe, ["person"])
    for got, want in zip(detector.backbone.get_weights(), backbone.get_weights()):
        np.testing.assert_array_equal(got, want)

    monkeypatch.chdir(tmp_path)
    task.make_data(tmp_path / "people", 24, 0)
    assert cli.main(["train", task.name, "--data", str(tmp_path / "people"), "--recipe", "smoke", "--approach",
                     "transfer", "--from", f"preset:{tmp_path / 'preset'}", "--set", "epochs=1",
                     "--run-dir", str(tmp_path / "run")]) == 0
    assert "transfer: detector on the backbone preset" in capsys.readouterr().out
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["recipe"]["backbone_preset"] == str(tmp_path / "preset")
    trained = load_model(tmp_path / "run" / "best.keras")
    assert [w.shape for w in trained.backbone.get_weights()] == [w.shape for w in backbone.get_weights()]


def test_preset_offline_and_misuse_say_what_to_do(tmp_path, monkeypatch):
    for key, value in _offline().items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("KAGGLEHUB_CACHE", str(tmp_path / "kagglehub"))
    with pytest.raises(ValueError, match=r"Expected to download the preset yolo_v8_xs_backbone_coco "
                                         r"\(kaggle://keras/yolov8/.*Offline, copy a downloaded preset folder"):
        kerascv.backbone_from_preset("yolo_v8_xs_backbone_coco")
    with pytest.raises(ValueError, match=r"Expected a YOLOv8 backbone preset \(yolo_v8_xs_backbone, .*Received: 'yolo_v9'"):
        kerascv.backbone_from_preset("yolo_v9")
    with pytest.raises(UserError, match="Expected --from preset: only for the detection tasks"):
        approaches.source_body(approaches.resolve_source("preset:yolo_v8_xs_backbone_coco"), (None, 32, 32, 3))
