"""Training approaches: transfer (including to new classes), features + SVM,
Keras Applications weight files, and the errors a user meets on the way."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

from conftest import run_cli
from suite import approaches
from suite.errors import UserError
from tasks import TASKS


# Transfer with a new head and features + SVM are for tasks with one softmax output;
# tasks with maps or boxes have their own transfer test (tests/test_cell_microscopy.py).
# Chosen without building models at collection time (a YOLOv8 takes seconds);
# `test_classifiers_are_the_tasks_with_one_softmax_output` holds the two views together.
CLASSIFIERS = [n for n, t in TASKS.items() if t.primary_metric == "accuracy"]


@pytest.mark.parametrize("name", list(TASKS))
def test_classifiers_are_the_tasks_with_one_softmax_output(name):
    task = TASKS[name]
    assert approaches.is_classifier(task.build_model(task.recipes["smoke"], ["a", "b"])) == (name in CLASSIFIERS)


def _json_line(proc) -> dict:
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("name", list(TASKS))
def test_dropout_rates_are_recipe_values(name):
    """Every Dropout rate in a task's model is one of its recipe's `*dropout` values (none hard-coded);
    models with dropout before their head follow `dropout`. (YOLOv8 has no dropout at all.)"""
    task = TASKS[name]
    recipe = dataclasses.replace(task.recipes["smoke"], dropout=0.37)
    model = task.build_model(recipe, ["a", "b", "c"])
    rates = [layer.rate for layer in model.layers if isinstance(layer, keras.layers.Dropout)]
    allowed = {v for k, v in dataclasses.asdict(recipe).items() if k.endswith("dropout")}
    assert set(rates) <= allowed, (rates, allowed)
    if rates:
        assert 0.37 in rates


@pytest.mark.parametrize("smoke", CLASSIFIERS, indirect=True)
def test_features_svm_matches_its_export(smoke):
    """features: the SVM folded into Keras scores what scikit-learn scored, and ships."""
    task, work = smoke["task"], smoke["work"]
    # One classifier fits an RBF SVM (random Fourier features), the other a linear SVM on a named
    # layer's features (its pooling layer, named as a user would read it off `model.summary()`).
    source = keras.saving.load_model(work / "run" / "best.keras")
    flat = next((layer for layer in source.layers if "global_average_pooling" in layer.name), None)
    options = (["--set", "svm_kernel=rbf", "--set", "rff_components=512"] if task.name == "traffic_signs"
               else ["--set", f"feature_layer={flat.name}"])
    # Two C values keep the test short (LinearSVC at C=1 converges slowly on 1,024 features).
    run_cli("train", task.name, "--data", "data", "--recipe", "smoke", "--approach", "features",
            "--from", "run", "--run-dir", "features", "--set", "svm_c=0.003,0.03", *options, cwd=work, fresh=False)
    svm = json.loads((work / "features" / "svm.json").read_text())
    config = json.loads((work / "features" / "config.json").read_text())
    assert config["approach"] == "features" and config["source"].endswith("best.keras")
    if task.name == "traffic_signs":
        assert svm["kernel"] == "rbf" and config["recipe"]["rff_components"] == 512
        assert keras.saving.load_model(work / "features" / "best.keras").get_layer("rff").units == 512
    else:
        assert svm["kernel"] == "linear" and config["recipe"]["feature_layer"] == flat.name
        assert svm["features"] == flat.output.shape[-1]

    # The Keras model on the val split reproduces scikit-learn's val accuracy for the kept C.
    val = _json_line(run_cli("evaluate", task.name, "--model", "features", "--data", "data",
                             "--split", "val", "--json", cwd=work))
    assert val["accuracy"] == pytest.approx(svm["c_tried_val_accuracy"][str(svm["c"])], abs=1.5 / val["n"])
    test = json.loads((work / "features" / "metrics.json").read_text())
    assert test[task.primary_metric] > task.smoke_floors[task.primary_metric]

    run_cli("export", task.name, "--run", "features", "--out", "features_export", cwd=work)
    shipped = _json_line(run_cli("evaluate", task.name, "--model", "features_export/1", "--data", "data",
                                 "--json", cwd=work))
    assert shipped["n"] == test["n"]
    assert shipped[task.primary_metric] == pytest.approx(test[task.primary_metric], abs=1 / test["n"])


@pytest.mark.parametrize("smoke", CLASSIFIERS, indirect=True)
def test_transfer_freezes_the_body_then_fine_tunes(smoke):
    task, work = smoke["task"], smoke["work"]
    run_cli("train", task.name, "--data", "data", "--recipe", "smoke", "--approach", "transfer",
            "--from", "exports", "--run-dir", "transfer", "--set", "head_epochs=2", "--set", "epochs=3", cwd=work,
            fresh=False)
    run = work / "transfer"
    config = json.loads((run / "config.json").read_text())
    assert config["approach"] == "transfer" and config["kept"] in ("head", "finetune")
    assert config["recipe"]["learning_rate"] == task.recipes["smoke"].learning_rate  # As given, not scaled.
    assert config["finetune_learning_rate"] == pytest.approx(
        task.recipes["smoke"].learning_rate * task.recipes["smoke"].finetune_lr_scale)
    assert len((run / "head" / "history.csv").read_text().strip().splitlines()) == 1 + 2
    assert len((run / "history.csv").read_text().strip().splitlines()) == 1 + 3

    source = keras.saving.load_model(work / "exports" / "1" / "model.keras")
    head = keras.saving.load_model(run / "head" / "best.keras")
    tuned = keras.saving.load_model(run / "last.keras")
    conv = next(layer.name for layer in source.layers if isinstance(layer, keras.layers.Conv2D))
    # Phase 1 leaves the body exactly as the source had it; phase 2 moves it.
    np.testing.assert_array_equal(head.get_layer(conv).get_weights()[0], source.get_layer(conv).get_weights()[0])
    assert not np.array_equal(tuned.get_layer(conv).get_weights()[0], source.get_layer(conv).get_weights()[0])
    # BatchNorm statistics stay the source's (finetune_bn=False).
    bn = next(layer.name for layer in source.layers if isinstance(layer, keras.layers.BatchNormalization))
    np.testing.assert_array_equal(tuned.get_layer(bn).get_weights()[2], source.get_layer(bn).get_weights()[2])
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics[task.primary_metric] > task.smoke_floors[task.primary_metric]


def _spoken_digits(out: Path, words=("zero", "one", "two", "three"), speakers: int = 12, takes: int = 2) -> None:
    """A tiny FSDD-style set (`<label>_<speaker>_<n>.wav`) of words the source never had as classes."""
    from suite.audio import SAMPLE_RATE, write_wav
    from tasks.samples.voices import LANGUAGES, VARIANTS, Espeak, to_16k

    out.mkdir(parents=True)
    rng = np.random.default_rng(0)
    tts = Espeak.get()
    for s in range(speakers):
        voice = f"{LANGUAGES[s % len(LANGUAGES)]}+{VARIANTS[(7 * s) % len(VARIANTS)]}"
        rate, pitch = int(rng.integers(120, 220)), int(rng.integers(20, 80))
        for word in words:
            for take in range(takes):
                x = to_16k(tts.say(word, voice, rate + int(rng.integers(-15, 16)), pitch, 50), tts.rate)
                clip = np.zeros(SAMPLE_RATE // 2, np.float32)
                x = x[: len(clip)]
                clip[: len(x)] = 0.5 * x / (np.abs(x).max() + 1e-9)
                write_wav(out / f"{word}_spk{s:02d}_{take}.wav", clip + rng.normal(0, 0.005, clip.shape).astype(np.float32))


@pytest.mark.parametrize("smoke", ["speech_commands"], indirect=True)
def test_transfer_to_new_classes(smoke, tmp_path):
    """Synthesized keywords (12 classes) -> spoken digits (4 new classes), then exported."""
    task, work = smoke["task"], smoke["work"]
    # 30 speakers: 3 held out for test (24 clips), so one clip moves the accuracy 4 points, not 12.5 (12 speakers
    # left 8 test clips, and a fair run scored 0.5 there once, against 0.75-0.875 usually).
    _spoken_digits(tmp_path / "digits", speakers=30)
    run_cli("train", task.name, "--data", str(tmp_path / "digits"), "--recipe", "smoke", "--approach", "transfer",
            "--from", str(work / "run"), "--run-dir", str(tmp_path / "run"),
            "--set", "head_epochs=6", "--set", "epochs=6", cwd=work, fresh=False)
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["class_names"] == ["one", "three", "two", "zero"]
    model = keras.saving.load_model(tmp_path / "run" / "best.keras")
    assert model.output_shape == (None, 4)
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    # Chance is 0.25; measured 0.92-0.96 in three runs on the 3 held-out speakers (espeak-ng's output varies a little
    # from run to run, so the clips do too). A model that learned nothing from the source stays near chance.
    assert metrics["n"] >= 24 and metrics["accuracy"] >= 0.7, metrics

    run_cli("export", task.name, "--run", str(tmp_path / "run"), "--out", str(tmp_path / "export"), cwd=work)
    test = task.load_data(tmp_path / "digits", task.recipes["smoke"]).splits["test"]  # Unseen speakers' clips.
    wavs = [Path(p) for p in sorted(test.paths)]
    out = run_cli("predict", task.name, *map(str, wavs), "--model", str(tmp_path / "export" / "1"), cwd=work)
    said = [line.split(": ")[1].split(" (")[0] for line in out.stdout.strip().splitlines()]
    loaded = tf.saved_model.load(str(tmp_path / "export" / "1"))
    own = loaded.serve_wav(tf.constant([w.read_bytes() for w in wavs]))["class_id"].numpy()
    assert said == [config["class_names"][i] for i in own]  # The lines say what the export says ...
    # ... and score the test split as the run's own evaluation did (one clip's leeway). Not a few clips: they
    # can all be one held-out speaker's, which a fair model misses wholesale (0 or 1 of 4 once on one CPU).
    right = np.mean([s == w.name.split("_")[0] for s, w in zip(said, wavs)])
    assert abs(right - metrics["accuracy"]) <= 1 / len(wavs) + 1e-6, (right, metrics["accuracy"])


def test_keras_applications_weights_file(tmp_path):
    """A local no-top weights file (named as Keras publishes it) starts a transfer; nothing downloads."""
    base = keras.applications.MobileNetV2(include_top=False, weights=None, input_shape=(32, 32, 3), alpha=0.35)
    path = tmp_path / "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_0.35_96_no_top.weights.h5"
    base.save_weights(path)
    assert approaches.resolve_source(path) == path
    recipe = TASKS["traffic_signs"].recipes["smoke"]
    model = approaches.transfer_model(path, (None, 32, 32, 3), recipe, ["a", "b", "c"])
    body = next(layer for layer in model.layers if isinstance(layer, keras.Model))
    for got, want in zip(body.get_weights(), base.get_weights()):
        np.testing.assert_array_equal(got, want)
    assert model.output_shape == (None, 3)
    assert not body.trainable
    approaches.set_body_trainable(model, True)
    assert body.trainable
    assert not any(layer.trainable for layer in approaches._walk(body)
                   if isinstance(layer, keras.layers.BatchNormalization))
    with pytest.raises(UserError, match=r"Expected a task whose model takes RGB images.*Received: .*\(16000,\)"):
        approaches.source_body(path, (None, 16000))


def test_from_errors_say_what_was_expected(tmp_path):
    (tmp_path / "unknown_weights.h5").write_bytes(b"\x89HDF")
    with pytest.raises(UserError, match=r"Expected --from to be .*Received: .*unknown_weights.h5, a model of an unknown kind"):
        approaches.resolve_source(tmp_path / "unknown_weights.h5")
    with pytest.raises(UserError, match="which does not exist"):
        approaches.resolve_source(tmp_path / "nope.keras")
    (tmp_path / "sm").mkdir()
    (tmp_path / "sm" / "saved_model.pb").write_bytes(b"")
    with pytest.raises(UserError, match="a SavedModel without model.keras"):
        approaches.resolve_source(tmp_path / "sm")


def test_mismatched_input_and_unknown_layer(tmp_path):
    speech = TASKS["speech_commands"]
    model = speech.build_model(speech.recipes["smoke"], ["a", "b"])
    model.save(tmp_path / "speech.keras")
    with pytest.raises(UserError, match=r"Expected a --from model taking this task's input \(32, 32, 3\)\. "
                                        r"Received: .*speech.keras, which takes \(16000,\)"):
        approaches.source_body(tmp_path / "speech.keras", (None, 32, 32, 3))
    with pytest.raises(UserError, match=r"Expected feature_layer to name a layer.*Received: 'no_such_layer'"):
        approaches.source_body(tmp_path / "speech.keras", (None, 16000), "no_such_layer")


def test_cli_needs_from_for_transfer(tmp_path):
    proc = run_cli("train", "traffic_signs", "--approach", "transfer", cwd=tmp_path, check=False, fresh=False)
    assert proc.returncode == 2
    assert "Expected --from RUN_DIR|SAVEDMODEL_DIR|MODEL.keras|WEIGHTS.h5|imagenet:NAME|preset:NAME with --approach transfer. " \
           "Received: no --from." in proc.stderr
    proc = run_cli("train", "traffic_signs", "--from", "x", cwd=tmp_path, check=False, fresh=False)
    assert proc.returncode == 2 and "Expected no --from with --approach scratch" in proc.stderr


# --- Mixing another dataset into training (`suite train --mix`) ----------------------------


def test_mix_in_keeps_the_epoch_and_draws_the_share():
    from suite.data import mix_in
    from tasks.traffic_signs import Signs  # Any task's examples dataclass will do; Signs is the simplest.

    def signs(n, tag):
        return Signs(np.array([f"{tag}{i}" for i in range(n)]), np.zeros((n, 4), np.int32),
                     (np.arange(n) % 3).astype(np.int32), np.array([tag] * n))

    real, generated = signs(10, "r"), signs(90, "g")
    everything = mix_in(real, generated, None, 0)
    assert len(everything) == 100 and sorted(everything.paths.tolist()) == sorted([*real.paths, *generated.paths])
    half = mix_in(real, generated, 0.5, 0)
    assert len(half) == 100
    counts = {tag: int((half.groups == tag).sum()) for tag in ("r", "g")}
    assert counts == {"r": 50, "g": 50}
    repeats = np.unique(half.paths[half.groups == "r"], return_counts=True)[1]
    assert sorted(set(repeats.tolist())) == [5], "every real example repeated equally"
    assert len(set(half.paths[half.groups == "g"].tolist())) == 50, "generated drawn without replacement"
    assert (half.rois.shape, half.labels.dtype) == ((100, 4), np.int32)
    with pytest.raises(ValueError, match="strictly between 0 and 1"):
        mix_in(real, generated, 1.0, 0)


def test_train_with_mix_trains_on_both_and_validates_on_its_own_data(tmp_path, monkeypatch, capsys):
    """`--mix`: the mixed dataset's training split joins training; validation and test are --data's own,
    the run records what was mixed, and bad values get clear errors."""
    from suite import runs
    from suite.cli import main

    task = TASKS["traffic_signs"]
    task.make_data(tmp_path / "real", 86, 1)
    task.make_data(tmp_path / "generated", 172, 2)
    seen = {}

    class Stop(Exception):
        pass

    def fake_fit(task, recipe, data, run_dir, **kwargs):
        seen.update(splits=data.splits, metadata=kwargs["metadata"], report=data.report)
        raise Stop

    monkeypatch.setattr(runs, "fit", fake_fit)
    real = task.load_data(tmp_path / "real", task.recipes["smoke"])
    generated = task.load_data(tmp_path / "generated", task.recipes["smoke"])
    with pytest.raises(Stop):
        runs.train_task(task, task.recipes["smoke"], tmp_path / "real", mix=tmp_path / "generated",
                        mix_share=0.25, run_dir=tmp_path / "run", log=lambda line: None)
    n = len(real.splits["train"]) + len(generated.splits["train"])
    train = seen["splits"]["train"]
    assert len(train) == n
    assert int(np.char.startswith(train.paths.astype(str), str(tmp_path / "generated")).sum()) == round(0.25 * n)
    for split in ("val", "test"):
        assert seen["splits"][split].paths.tolist() == real.splits[split].paths.tolist()
    assert seen["metadata"]["mix_dir"] == str(tmp_path / "generated") and seen["metadata"]["mix_share"] == 0.25
    assert seen["metadata"]["mix_train_examples"] == len(generated.splits["train"])
    assert seen["report"].read == real.report.read + generated.report.read  # One report lists both loaders' files.

    monkeypatch.chdir(tmp_path)
    for argv, message in (
        (["--mix-share", "0.5"], "--mix-share 0.5 without --mix"),
        (["--mix", str(tmp_path / "generated"), "--mix-share", "1.5"], "strictly between 0 and 1"),
        (["--mix", str(tmp_path / "nowhere")], "Expected"),
    ):
        assert main(["train", "traffic_signs", "--data", str(tmp_path / "real"), "--recipe", "smoke", *argv]) == 2
        assert message in capsys.readouterr().err
