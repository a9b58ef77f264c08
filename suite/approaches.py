"""Training approaches: from scratch, transfer learning, feature extraction + SVM.

- `scratch` (the default) is `suite.trainer.train` with the task's own model.
- `transfer` starts from another trained network (`--from`): its classifier is
  replaced by a new head for the target classes, the head trains with the body
  frozen (`head_epochs`), then everything but BatchNorm statistics fine-tunes at
  `learning_rate x finetune_lr_scale`. Both phases are ordinary trainer runs
  (compile + fit, checkpoints, resume); if fine-tuning never beats the frozen
  body on validation, the frozen-body model is kept and the run says so.
  Tasks whose outputs are maps or boxes (no single softmax) keep their own
  architecture instead: matching layers start from the source's weights and
  the whole model fine-tunes at the scaled rate (`copy_matching_weights`).
- `features` runs the network up to `feature_layer` once over the data and fits
  a scikit-learn linear SVM (C chosen on validation) on the standardised
  features. The result is one Keras model again: standardisation is a
  `Normalization` layer, the SVM a `Dense` layer, and a temperature fitted on
  validation turns its scores into probabilities, so evaluation and export work
  unchanged. `svm_kernel="rbf"` approximates the RBF kernel with random Fourier
  features (Rahimi & Recht), which are a `Dense` + cosine layer; an exact kernel
  SVM would need every support vector in the graph and one-vs-one voting, so it
  is not offered. Features apply to classification tasks only.

`--from` takes a run directory (`best.keras`), a suite export folder
(`model.keras` beside `saved_model.pb`), a `.keras` file, a local Keras
Applications weights file (`*_notop.h5`, `*_no_top.h5`), or a published
pretrained network: `imagenet:<KerasApplicationsName>[,alpha=A]` (downloaded
once through Keras' own cached, hash-checked `get_file` into
`$KERAS_HOME/models/`), `preset:<name>` for a keras-cv YOLOv8 backbone preset
(COCO-trained, through keras-cv's own preset loading, for the detection tasks)
or `preset:<folder>` / a preset folder for one a user saved or copied.
This module never imports `tasks`: it reads a task only through its contract.
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
import shutil
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import keras
import numpy as np

from suite import trainer
from suite.config import write_json
from suite.errors import UserError, closest
from suite.runs import load_model

if TYPE_CHECKING:
    from suite.config import TrainRecipe
    from suite.task import LoadedData, Task

APPROACHES = ("scratch", "transfer", "features")
HEAD = ("transfer_standardise", "transfer_dropout", "probabilities")  # Layers a transfer adds; the rest is the body.
FROM_HELP = (
    "a run directory (best.keras), a suite export folder (model.keras beside saved_model.pb), "
    "a .keras file, a local Keras Applications weights file "
    "(such as mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224_no_top.h5), "
    "imagenet:<KerasApplicationsName>, or preset:<YOLOv8 backbone preset or folder>"
)

# Keras Applications weight files by their official names: constructor, its
# keyword arguments from the name, and the input preprocessing it was trained with.
APPLICATIONS = [
    (r"mobilenet_v2_weights_tf_dim_ordering_tf_kernels_(?P<alpha>[\d.]+)_\d+_no_top",
     "MobileNetV2", "tf"),
    (r"mobilenet_(?P<alpha>\d_\d+)_\d+_tf_no_top", "MobileNet", "tf"),
    (r"weights_mobilenet_v3_(?P<size>small|large)(?P<minimal>_minimalistic)?_224_(?P<alpha>[\d.]+)_float_no_top",
     "MobileNetV3", "none"),
    (r"(?P<name>resnet(50|101|152))_weights_tf_dim_ordering_tf_kernels_notop", "ResNet", "caffe"),
    (r"(?P<name>resnet(50|101|152)v2)_weights_tf_dim_ordering_tf_kernels_notop", "ResNetV2", "tf"),
    (r"(?P<name>vgg1[69])_weights_tf_dim_ordering_tf_kernels_notop", "VGG", "caffe"),
    (r"(?P<name>densenet(121|169|201))_weights_tf_dim_ordering_tf_kernels_notop", "DenseNet", "torch"),
    (r"efficientnet(?P<b>b[0-7])_notop", "EfficientNet", "none"),
]


# `imagenet:<name>`: the Keras Applications constructors these families cover, and their preprocessing.
IMAGENET = {
    **{n: "tf" for n in ("MobileNet", "MobileNetV2", "ResNet50V2", "ResNet101V2", "ResNet152V2")},
    **{n: "none" for n in ("MobileNetV3Small", "MobileNetV3Large", *(f"EfficientNetB{i}" for i in range(8)))},
    **{n: "caffe" for n in ("ResNet50", "ResNet101", "ResNet152", "VGG16", "VGG19")},
    **{n: "torch" for n in ("DenseNet121", "DenseNet169", "DenseNet201")},
}


@dataclasses.dataclass(frozen=True)
class Pretrained:
    """A published pretrained network named in `--from`.

    Args:
        kind: `"imagenet"` (Keras Applications weights) or `"preset"` (a
            keras-cv YOLOv8 backbone preset name or preset folder).
        name: the constructor or preset.
        kwargs: constructor arguments for `imagenet` (`alpha`). Defaults to none.
    """

    kind: str
    name: str
    kwargs: tuple[tuple[str, float], ...] = ()

    def __str__(self) -> str:
        extra = "".join(f",{k}={v:g}" for k, v in self.kwargs)
        return f"{self.kind}:{self.name}{extra}"


SourceArg = Path | Pretrained


def _pretrained(text: str) -> Pretrained:
    kind, _, rest = text.partition(":")
    if kind == "preset":
        if not rest:
            raise UserError("Expected --from preset:<name or folder>. Received: an empty preset.")
        return Pretrained("preset", str(Path(rest).resolve()) if Path(rest).is_dir() else rest)
    name, *pairs = rest.split(",")
    if name not in IMAGENET:
        raise UserError(f"Expected --from imagenet:<name> with a Keras Applications network.{closest(name, IMAGENET)} "
                        f"Expected one of: {', '.join(IMAGENET)}. Received: {name!r}")
    kwargs = []
    for pair in pairs:
        key, _, value = pair.partition("=")
        if key != "alpha" or not value.replace(".", "", 1).isdigit():
            raise UserError(f"Expected imagenet:{name}[,alpha=FLOAT]. Received: {text!r}")
        kwargs.append((key, float(value)))
    return Pretrained("imagenet", name, tuple(kwargs))


def _application(path: Path) -> tuple[str, dict, str] | None:
    """(constructor name, kwargs, preprocessing) for a Keras Applications file name, or None."""
    stem = re.sub(r"(\.weights)?\.h5$", "", path.name)
    for pattern, family, prep in APPLICATIONS:
        m = re.fullmatch(pattern, stem)
        if not m:
            continue
        g = m.groupdict()
        if family == "MobileNetV2":
            return "MobileNetV2", {"alpha": float(g["alpha"])}, prep
        if family == "MobileNet":
            return "MobileNet", {"alpha": float(g["alpha"].replace("_", "."))}, prep
        if family == "MobileNetV3":
            ctor = "MobileNetV3Small" if g["size"] == "small" else "MobileNetV3Large"
            return ctor, {"alpha": float(g["alpha"]), "minimalistic": bool(g["minimal"])}, prep
        if family == "EfficientNet":
            return f"EfficientNet{g['b'].upper()}", {}, prep
        names = {"resnet50": "ResNet50", "resnet101": "ResNet101", "resnet152": "ResNet152",
                 "resnet50v2": "ResNet50V2", "resnet101v2": "ResNet101V2", "resnet152v2": "ResNet152V2",
                 "vgg16": "VGG16", "vgg19": "VGG19", "densenet121": "DenseNet121",
                 "densenet169": "DenseNet169", "densenet201": "DenseNet201"}
        return names[g["name"]], {}, prep
    return None


def resolve_source(path: str | Path) -> SourceArg:
    """The file or published network a `--from` argument names, or a UserError saying what was expected.

    Args:
        path: a run directory, an export folder, a `.keras` file, a Keras
            Applications weights file, `imagenet:<name>`, `preset:<name or
            folder>`, or a preset folder.

    Returns:
        The `.keras` or `.h5` file to load, or a `Pretrained`.
    """
    if isinstance(path, str) and path.startswith(("imagenet:", "preset:")):
        return _pretrained(path)
    p = Path(path)
    if p.is_dir() and (p / "config.json").is_file() and not (p / "best.keras").exists() \
            and "YOLOV8Backbone" in (p / "config.json").read_text()[:2000]:
        return Pretrained("preset", str(p.resolve()))  # A keras-cv preset folder.
    numbered = sorted((int(v.name) for v in p.iterdir() if v.name.isdigit()), reverse=True) if p.is_dir() else []
    if numbered and not (p / "best.keras").exists():  # saved_models/<task>/: its latest version.
        p = p / str(numbered[0])
    if p.is_dir():
        for name in ("best.keras", "model.keras"):
            if (p / name).is_file():
                return p / name
        if (p / "saved_model.pb").exists():
            raise UserError(
                f"Expected --from to be {FROM_HELP}. Received: {p}, a SavedModel without model.keras: "
                "a SavedModel holds an inference graph, not a trainable Keras model. Pass the run "
                "directory it was exported from, or re-export it with this version of the suite."
            )
        raise UserError(f"Expected --from to be {FROM_HELP}. Received: {p}, a folder with neither.")
    if not p.is_file():
        raise UserError(f"Expected --from to be {FROM_HELP}. Received: {p}, which does not exist.")
    if p.suffix == ".keras":
        return p
    if p.suffix == ".h5" and _application(p):
        return p
    raise UserError(
        f"Expected --from to be {FROM_HELP}. Received: {p}, a model of an unknown kind (Keras "
        "Applications files are recognised by their official no-top file names)."
    )


# --- Building on a source network ---------------------------------------------


def _preprocess(x, kind: str):
    """The input scaling an Applications network was trained with, as plain layers."""
    if kind == "tf":
        return keras.layers.Rescaling(1 / 127.5, offset=-1.0, name="preprocess")(x)
    if kind == "torch":
        x = keras.layers.Rescaling(1 / 255.0)(x)
        return keras.layers.Normalization(mean=[0.485, 0.456, 0.406], variance=[0.229**2, 0.224**2, 0.225**2],
                                          name="preprocess")(x)
    if kind == "caffe":  # RGB -> BGR and ImageNet mean subtraction, as a fixed 1x1 convolution.
        conv = keras.layers.Conv2D(3, 1, trainable=False, name="preprocess")
        y = conv(x)
        conv.set_weights([np.eye(3)[::-1].reshape(1, 1, 3, 3), -np.array([103.939, 116.779, 123.68])])
        return y
    return x  # EfficientNet and MobileNetV3 scale their own 0-255 input.


def _features_of(model: keras.Model, layer_name: str):
    """The tensor a source's classifier reads (minus its dropout), or a named layer's output."""
    if layer_name:
        names = [layer.name for layer in model.layers]
        if layer_name not in names:
            raise UserError(
                f"Expected feature_layer to name a layer of the --from model.{closest(layer_name, names)} "
                f"Expected one of: {', '.join(names[1:])}. Received: {layer_name!r}"
            )
        x = model.get_layer(layer_name).output
    else:
        x = model.layers[-1].input
        if isinstance(x._keras_history.operation, keras.layers.Dropout):
            x = x._keras_history.operation.input  # The recipe's dropout replaces the source's.
    if len(x.shape) > 2:
        x = keras.layers.Flatten(name="features_flat")(x)
    return x


def source_body(source: SourceArg, input_shape: tuple, layer_name: str = "") -> tuple[Any, Any]:
    """Loads a source network and returns `(inputs, features)` symbolic tensors.

    Args:
        source: a file from `resolve_source`.
        input_shape: the target task's model input shape, batch dimension
            included; the source must take the same input.
        layer_name: see the recipe's `feature_layer`. Defaults to `""`.

    Returns:
        The source's input tensor and its features (flattened to 2-D).

    Raises:
        UserError: when the input shapes differ or the layer does not exist.
    """
    want = tuple(input_shape[1:])
    if isinstance(source, Pretrained) and source.kind == "preset":
        raise UserError(f"Expected --from preset: only for the detection tasks (a YOLOv8 backbone). Received: "
                        f"{source} for a classifier; use imagenet:<name> or a trained run.")
    if isinstance(source, Pretrained):
        app: tuple[str, dict, str] | None = (source.name, dict(source.kwargs), IMAGENET[source.name])
    else:
        app = _application(source) if source.suffix == ".h5" else None
    if app:
        ctor, kwargs, prep = app
        if len(want) != 3 or want[-1] != 3:
            raise UserError(f"Expected a task whose model takes RGB images for the Keras Applications "
                            f"weights {source.name}. Received: a task whose input is {want}.")
        inputs = keras.Input(want, name="pixels")
        weights = "imagenet" if isinstance(source, Pretrained) else str(source)
        try:
            base = getattr(keras.applications, ctor)(
                include_top=False, weights=weights, input_shape=want, pooling="avg", **kwargs)
        except ValueError as e:  # Too small an input, or a file of another architecture.
            raise UserError(f"Expected {source.name} to build as {ctor} on {want} input. Received: {e}") from e
        except Exception as e:  # Keras' get_file raises a bare Exception when the download fails.
            if "URL fetch failure" not in str(e):
                raise
            raise UserError(_offline_weights(str(e), str(source))) from None
        features = base(_preprocess(inputs, prep))
        if layer_name:
            raise UserError(f"Expected feature_layer='' with a Keras Applications file (its pooled "
                            f"output is used). Received: {layer_name!r}")
        return inputs, features
    assert isinstance(source, Path)  # Pretrained sources returned above.
    model = load_model(source)
    have = tuple(model.input_shape[1:])
    if have != want:
        hint = " Match it with `--set image_size=...`." if len(want) == 3 and len(have) == 3 else ""
        raise UserError(f"Expected a --from model taking this task's input {want}. Received: {source}, "
                        f"which takes {have}.{hint}")
    return model.inputs[0], _features_of(model, layer_name)


def _offline_weights(message: str, source: str) -> str:
    """One line for a failed ImageNet weights download: which file, and where Keras looks for it."""
    import os
    import re

    url = (re.search(r"URL fetch failure on (\S+?):? ", message) or re.search(r"(https?://\S+)", message))
    origin = url.group(1) if url else "the weights URL"
    home = Path(os.environ.get("KERAS_HOME") or Path.home() / ".keras") / "models"
    return (f"Expected to download the ImageNet weights for --from {source}. Received: no connection "
            f"({origin}). Offline, download that file on a connected machine and put it in {home}/ "
            "(Keras' cache, or set KERAS_HOME), or pass the .h5 file itself with --from.")


def _walk(layer):
    yield layer
    for sub in getattr(layer, "layers", []):
        yield from _walk(sub)


def set_body_trainable(model: keras.Model, trainable: bool, finetune_bn: bool = False) -> None:
    """Freezes or unfreezes everything but the transfer head.

    A BatchNormalization layer with `trainable=False` also runs in inference
    mode in Keras 3, so with `finetune_bn=False` the source's statistics stay.
    """
    for layer in model.layers:
        if layer.name in HEAD or layer.name == "preprocess":  # Fixed input scaling never trains.
            continue
        layer.trainable = trainable
        if trainable and not finetune_bn:
            for sub in _walk(layer):
                if isinstance(sub, keras.layers.BatchNormalization):
                    sub.trainable = False


def transfer_model(source: SourceArg, input_shape: tuple, recipe: TrainRecipe, class_names: list[str],
                   probe: Any = None) -> keras.Model:
    """The source's body with a new head (standardise, dropout, softmax); body frozen.

    Args:
        source: a file from `resolve_source`.
        input_shape: the target task's model input shape.
        recipe: supplies `feature_layer` and `dropout`.
        class_names: the target classes.
        probe: `features_model -> (mean, variance, kernel, bias)`: feature
            statistics and a linear probe fitted on the target's training
            data, which standardise the features and start the head (LP-FT,
            Kumar et al. 2022). Measured without it: features of a trained
            body can be tiny (~0.01) and a fresh head barely moved in 20
            epochs on 80 clips, while a probe on the same features separated
            the classes. Defaults to none (standardisation off, random head).

    Returns:
        The model, uncompiled, with every body layer frozen.
    """
    inputs, features = source_body(source, input_shape, recipe.feature_layer)
    x, start = features, None
    if probe is not None:
        mean, variance, *start = probe(keras.Model(inputs, features))
        x = keras.layers.Normalization(mean=mean, variance=variance, name=HEAD[0])(x)
    x = keras.layers.Dropout(recipe.dropout, name=HEAD[1])(x)
    head = keras.layers.Dense(len(class_names), activation="softmax", name=HEAD[2])
    outputs = head(x)
    if start:
        head.set_weights(start)
    model = keras.Model(inputs, outputs, name="transfer")
    set_body_trainable(model, False)
    return model


def _linear_probe(extractor: keras.Model, task: Task[Any, Any], data: LoadedData[Any], recipe: TrainRecipe) -> tuple:
    """Feature mean and variance, and a multinomial logistic regression on the
    standardised features of the train split (no augmentation)."""
    from sklearn.linear_model import LogisticRegression

    x, y = _features_and_labels(extractor, task, data.splits["train"], recipe, data.class_names)
    mean, variance = x.mean(0), np.where(x.var(0) > 1e-12, x.var(0), 1.0)
    z = (x - mean) / np.sqrt(variance)
    if len(np.unique(y)) < 2:
        raise UserError(f"Expected at least two classes in the train split. Received: {np.unique(y).tolist()}")
    # Binary logistic scores split evenly between the two softmax logits.
    fit = LogisticRegression(C=1.0, max_iter=300).fit(z, y)
    return (mean, variance, *_dense_weights(fit, len(data.class_names), x.shape[1], half=True))


def _dense_weights(fit: Any, k: int, d: int, half: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """A fitted scikit-learn linear classifier as a `[d, k]` kernel and `[k]` bias.

    Classes absent from its training data get a very low bias, so they never
    win. scikit-learn keeps one row for two classes; it becomes `-s, +s`
    (halved with `half`, which keeps a binary logistic model's probabilities).
    """
    kernel, bias = np.zeros((d, k)), np.full(k, -1e3)
    coef, intercept = fit.coef_, fit.intercept_
    if len(fit.classes_) == 2:
        scale = 0.5 if half else 1.0
        coef = scale * np.stack([-coef[0], coef[0]])
        intercept = scale * np.array([-intercept[0], intercept[0]])
    kernel[:, fit.classes_], bias[fit.classes_] = coef.T, intercept
    return kernel, bias


def _input_shape(task: Task[Any, Any], recipe: TrainRecipe, class_names: list[str]) -> tuple:
    return tuple(task.build_model(recipe, class_names).input_shape)


def is_classifier(model: keras.Model) -> bool:
    """One softmax output: the shape transfer's new head and the SVM apply to."""
    try:
        output, shape = model.output, model.output_shape
    except (AttributeError, ValueError):  # Subclassed detectors without one symbolic output.
        return False
    return not isinstance(output, (dict, list, tuple)) and len(shape) == 2


def copy_matching_weights(source: keras.Model, target: keras.Model) -> int:
    """Copies weights layer by layer, in graph order, while the shapes agree.

    For tasks whose outputs are maps or boxes rather than one softmax (a
    U-Net, a detector), transfer keeps the task's own architecture: a model
    of the same task on other data, or of a task with the same body, starts
    from the source's weights. Layers whose shapes differ (a head for other
    classes) keep their fresh initialisation.

    Returns:
        The number of layers copied.
    """
    copied = 0
    pairs = zip([layer for layer in source.layers if layer.weights], [layer for layer in target.layers if layer.weights])
    for a, b in pairs:
        wa, wb = a.get_weights(), b.get_weights()
        if len(wa) == len(wb) and all(x.shape == y.shape for x, y in zip(wa, wb)):
            b.set_weights(wa)
            copied += 1
    return copied


# --- Approaches -----------------------------------------------------------------


def train_transfer(task: Task[Any, Any], recipe: TrainRecipe, data: LoadedData[Any], run_dir: Path, source: SourceArg, *,
                   strategy: str = "auto", resume: bool = False, metadata: dict | None = None) -> keras.Model:
    """Head on a frozen body, then fine-tuning; each phase a trainer run.

    Writes `run_dir/head/` (phase 1, a complete run directory) and the usual
    run files in `run_dir` (phase 2). `config.json` records the recipe as
    given; the fine-tuning rate is recorded beside it.

    Args:
        task: the `suite.task.Task`.
        recipe: the resolved recipe (`head_epochs`, `finetune_lr_scale`,
            `finetune_bn`, `feature_layer`, `dropout` are read here).
        data: the target `LoadedData`; its classes may differ from the source's.
        run_dir: the run directory.
        source: a file from `resolve_source`.
        strategy: see `suite.trainer.make_strategy`. Defaults to `"auto"`.
        resume: continue an interrupted run (either phase). Defaults to False.
        metadata: extra facts for `config.json`.

    Returns:
        The better of the fine-tuned and the frozen-body model on validation.
    """
    run_dir, head_dir = Path(run_dir), Path(run_dir) / "head"
    facts = {**(metadata or {}), "approach": "transfer", "source": str(source)}
    target = task.build_model(recipe, data.class_names)
    if not is_classifier(target):
        return _transfer_weights(task, recipe, data, run_dir, source, target, strategy, resume, facts)
    trainer.write_run_config(run_dir, task, recipe, data, {**facts, "phase": "head"})
    input_shape = tuple(target.input_shape)
    mode = "min" if task.monitor.endswith("loss") else "max"

    if not (head_dir / "last.keras").exists():  # last.keras marks a finished phase.
        print(f"[{task.name}] transfer phase 1: new head on the frozen body of {source}", flush=True)
        head_recipe = dataclasses.replace(recipe, epochs=recipe.head_epochs,
                                          early_stopping_patience=recipe.head_epochs)
        trainer.train(task, head_recipe, data, head_dir, strategy=strategy,
                      resume=resume and (head_dir / "history.csv").exists(), metadata=facts,
                      build_model=lambda: transfer_model(source, input_shape, recipe, data.class_names,
                                                         lambda e: _linear_probe(e, task, data, recipe)))

    def unfrozen():
        model = load_model(head_dir / "best.keras")
        set_body_trainable(model, True, recipe.finetune_bn)
        return model

    rate = recipe.learning_rate * recipe.finetune_lr_scale
    print(f"[{task.name}] transfer phase 2: fine-tune at learning rate {rate:g}", flush=True)
    tuned = trainer.train(
        task, dataclasses.replace(recipe, learning_rate=rate), data, run_dir, strategy=strategy,
        resume=resume and (run_dir / "history.csv").exists(), build_model=unfrozen,
        # The recipe as given (not the phase's scaled rate), so --resume and export see it.
        metadata={**facts, "phase": "finetune", "recipe": dataclasses.asdict(recipe),
                  "finetune_learning_rate": rate},
    )
    head_best = trainer.best_so_far(head_dir / "history.csv", task.monitor, mode)
    tuned_best = trainer.best_so_far(run_dir / "history.csv", task.monitor, mode)
    kept = "finetune"
    if head_best is not None and tuned_best is not None:
        if (head_best > tuned_best) if mode == "max" else (head_best < tuned_best):
            kept = "head"
            shutil.copyfile(head_dir / "best.keras", run_dir / "best.keras")
            tuned = load_model(run_dir / "best.keras")
            print(f"[{task.name}] fine-tuning never beat the frozen body on {task.monitor} "
                  f"({tuned_best:.4f} < {head_best:.4f}): keeping the frozen-body model", flush=True)
    config = json.loads((run_dir / "config.json").read_text())
    write_json(run_dir / "config.json", {**config, "kept": kept, "head_best": head_best, "finetune_best": tuned_best})
    return tuned


def _transfer_weights(task, recipe, data, run_dir, source, target, strategy, resume, facts) -> keras.Model:
    """Transfer for non-classifier tasks: same architecture, source weights, one fine-tuning run."""
    if isinstance(source, Pretrained) and source.kind == "preset":
        return _transfer_preset(task, recipe, data, run_dir, source, strategy, resume, facts)
    if isinstance(source, Pretrained) or source.suffix == ".h5":
        raise UserError(f"Expected a --from model of a task with {task.name}'s architecture (a run, export or "
                        f".keras file): its outputs are not one softmax. Received: {source.name}, a Keras "
                        "Applications classifier body.")
    want = tuple(target.input_shape[1:])
    count = [0]

    def build():
        model = task.build_model(recipe, data.class_names)
        loaded = load_model(source)
        if tuple(loaded.input_shape[1:]) != want:
            raise UserError(f"Expected a --from model taking this task's input {want}. Received: {source}, "
                            f"which takes {tuple(loaded.input_shape[1:])}.")
        count[0] = copy_matching_weights(loaded, model)
        if count[0] == 0:
            raise UserError(f"Expected a --from model sharing layers with {task.name}'s. Received: {source}, "
                            "whose layer shapes match none.")
        print(f"[{task.name}] transfer: {count[0]} layers start from {source}", flush=True)
        return model

    rate = recipe.learning_rate * recipe.finetune_lr_scale
    model = trainer.train(
        task, dataclasses.replace(recipe, learning_rate=rate), data, run_dir, strategy=strategy,
        resume=resume and (run_dir / "history.csv").exists(), build_model=build,
        metadata={**facts, "phase": "finetune", "recipe": dataclasses.asdict(recipe),
                  "finetune_learning_rate": rate, "kept": "finetune"},
    )
    config = json.loads((run_dir / "config.json").read_text())
    write_json(run_dir / "config.json", {**config, "layers_transferred": count[0]})
    return model


def _transfer_preset(task, recipe, data, run_dir, source: Pretrained, strategy, resume, facts) -> keras.Model:
    """A detection task on a YOLOv8 backbone preset: the recipe's `backbone_preset` names it, so the
    task's own `build_model` builds the detector on it; the whole model fine-tunes at the scaled rate."""
    if not hasattr(recipe, "backbone_preset"):
        raise UserError(f"Expected --from preset: only for tasks with a YOLOv8 backbone (the detection tasks). "
                        f"Received: {source} for {task.name}.")
    recipe = dataclasses.replace(recipe, backbone_preset=source.name)

    def build():
        try:
            return task.build_model(recipe, data.class_names)
        except ValueError as e:
            raise UserError(str(e)) from None

    rate = recipe.learning_rate * recipe.finetune_lr_scale
    print(f"[{task.name}] transfer: detector on the backbone preset {source.name}, fine-tuned at {rate:g}",
          flush=True)
    return trainer.train(
        task, dataclasses.replace(recipe, learning_rate=rate), data, run_dir, strategy=strategy,
        resume=resume and (run_dir / "history.csv").exists(), build_model=build,
        metadata={**facts, "phase": "finetune", "recipe": dataclasses.asdict(recipe),
                  "finetune_learning_rate": rate, "kept": "finetune"},
    )


@keras.saving.register_keras_serializable(package="suite")
class Cosine(keras.layers.Layer):
    """`scale * cos(x)`: the nonlinearity of random Fourier features."""

    def __init__(self, scale: float = 1.0, **kwargs):
        super().__init__(**kwargs)
        self.scale = float(scale)

    def call(self, x):
        return self.scale * keras.ops.cos(x)

    def get_config(self):
        return {**super().get_config(), "scale": self.scale}


def _features_and_labels(extractor: keras.Model, task: Task[Any, Any], examples: Any, recipe: TrainRecipe,
                         class_names: list[str]) -> tuple[np.ndarray, np.ndarray]:
    xs, ys = [], []
    for x, y in task.dataset(examples, recipe, False, 256, class_names):  # No augmentation.
        xs.append(extractor(x, training=False).numpy())
        ys.append(y.numpy())
    if not xs:
        return np.zeros((0, extractor.output_shape[-1]), np.float32), np.zeros(0, np.int64)
    return np.concatenate(xs).astype(np.float64), np.concatenate(ys).astype(np.int64)


def _temperature(scores: np.ndarray, labels: np.ndarray) -> float:
    """The softmax temperature that minimises validation log loss (1.0 without data)."""
    if len(labels) == 0:
        return 1.0
    best, best_t = math.inf, 1.0
    for t in np.logspace(-2, 2, 81):
        z = t * scores
        z = z - z.max(1, keepdims=True)
        nll = -(z[np.arange(len(labels)), labels] - np.log(np.exp(z).sum(1))).mean()
        if nll < best:
            best, best_t = nll, float(t)
    return best_t


def train_features(task: Task[Any, Any], recipe: TrainRecipe, data: LoadedData[Any], run_dir: Path, source: SourceArg, *,
                   metadata: dict | None = None) -> keras.Model:
    """Source features -> standardisation -> linear SVM, folded into one Keras model.

    Writes `config.json`, `data_report.json`, `svm.json` (C values tried with
    their validation accuracy, the one kept, temperature, timings) and
    `best.keras` into `run_dir`.

    Args:
        task: the `suite.task.Task`.
        recipe: the resolved recipe (`feature_layer`, `svm_kernel`, `svm_c`,
            `rff_components`, `seed` are read here).
        data: the `LoadedData`; `train` fits the SVM, `val` chooses C.
        run_dir: the run directory.
        source: a file from `resolve_source`.
        metadata: extra facts for `config.json`.

    Returns:
        The Keras model: source body, `Normalization`, (random Fourier
        features), `Dense` SVM scores, temperature, softmax.
    """
    from sklearn.kernel_approximation import RBFSampler
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import LinearSVC

    if recipe.svm_kernel not in ("linear", "rbf"):
        raise UserError(f"Expected svm_kernel 'linear' or 'rbf'. Received: {recipe.svm_kernel!r}")
    run_dir = Path(run_dir)
    if not is_classifier(task.build_model(recipe, data.class_names)):
        raise UserError(f"Expected a classification task for --approach features (an SVM over the network's "
                        f"features). Received: {task.name}, whose model outputs maps or boxes; use transfer.")
    trainer.write_run_config(run_dir, task, recipe, data, {**(metadata or {}), "approach": "features",
                                                           "source": str(source), "strategy": "none (scikit-learn)"})
    keras.utils.set_random_seed(recipe.seed)
    start = time.perf_counter()
    inputs, features = source_body(source, _input_shape(task, recipe, data.class_names), recipe.feature_layer)
    extractor = keras.Model(inputs, features, name="features")
    x_train, y_train = _features_and_labels(extractor, task, data.splits["train"], recipe, data.class_names)
    x_val, y_val = _features_and_labels(extractor, task, data.splits["val"], recipe, data.class_names)
    extract_s = time.perf_counter() - start
    if len(set(y_train.tolist())) < 2:
        raise UserError(f"Expected at least two classes in the train split for an SVM. "
                        f"Received: {sorted(set(y_train.tolist()))}")

    scaler = StandardScaler().fit(x_train)
    z_train, z_val = scaler.transform(x_train), scaler.transform(x_val)
    rff = None
    if recipe.svm_kernel == "rbf":  # gamma = 1/d on unit-variance features (scikit-learn's "scale").
        rff = RBFSampler(gamma=1.0 / z_train.shape[1], n_components=recipe.rff_components,
                         random_state=recipe.seed).fit(z_train)
        z_train, z_val = rff.transform(z_train), rff.transform(z_val)
    tried: dict[str, float] = {}
    best: tuple[float, float, Any] | None = None
    for c in recipe.svm_c:
        svm = LinearSVC(C=c, max_iter=10000, random_state=recipe.seed).fit(z_train, y_train)
        score = float((svm.predict(z_val) == y_val).mean()) if len(y_val) else float(svm.score(z_train, y_train))
        tried[str(c)] = score
        if best is None or score > best[0]:
            best = (score, c, svm)
    assert best is not None, "Expected at least one svm_c value."  # The recipe type has a default.
    best_score, c, svm = best

    k = len(data.class_names)
    weights, bias = _dense_weights(svm, k, z_train.shape[1])  # One-vs-rest scores for every class id.
    temperature = _temperature(z_val @ weights + bias, y_val)

    layers = [keras.layers.Normalization(mean=scaler.mean_, variance=scaler.scale_**2, name="standardise")]
    if rff is not None:
        layers += [keras.layers.Dense(recipe.rff_components, name="rff"),
                   Cosine(math.sqrt(2.0 / recipe.rff_components), name="rff_cos")]
    layers.append(keras.layers.Dense(k, name="svm"))
    scores = features
    for layer in layers:
        scores = layer(scores)
    if rff is not None:
        layers[1].set_weights([rff.random_weights_, rff.random_offset_])
    layers[-1].set_weights([weights, bias])
    x = keras.layers.Rescaling(temperature, name="temperature")(scores)
    outputs = keras.layers.Softmax(name="probabilities")(x)
    model = keras.Model(inputs, outputs, name="features_svm")
    model.trainable = False  # Fitted by scikit-learn, not by gradient descent.

    # The folded model must give scikit-learn's scores (float32 vs float64 aside).
    check = x_val[:256] if len(x_val) else x_train[:256]
    want = svm.decision_function((rff.transform(scaler.transform(check)) if rff else scaler.transform(check)))
    want = want[:, None] * np.array([-1, 1]) if want.ndim == 1 else want
    got = check.astype(np.float32)
    for layer in layers:
        got = layer(got)
    got = np.asarray(got)[:, svm.classes_]
    if not np.allclose(got, want, atol=1e-3 * max(1.0, float(np.abs(want).max()))):
        raise RuntimeError(f"SVM folded into Keras disagrees with scikit-learn: max diff "
                           f"{np.abs(got - want).max():.3g}")
    model.save(run_dir / "best.keras")
    write_json(run_dir / "svm.json", {
        "kernel": recipe.svm_kernel, "c_tried_val_accuracy": tried, "c": c, "temperature": temperature,
        "features": int(x_train.shape[1]), "train_n": len(y_train), "val_n": len(y_val),
        "train_accuracy": float((svm.predict(z_train) == y_train).mean()),
        "extract_seconds": extract_s, "total_seconds": time.perf_counter() - start,
    })
    print(f"[{task.name}] features: {x_train.shape[1]} from {source.name}, {recipe.svm_kernel} SVM C={c} "
          f"(val accuracy {best_score:.4f}; tried {tried}), temperature {temperature:.3g}", flush=True)
    return model
