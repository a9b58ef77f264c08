"""The task contract: what a task module hands the shared core.

A task module (`tasks/<name>.py`) ends with `TASK = Task(...)`. The core reads
nothing else from it, so the contract is the whole interface between a use case
and the trainer, exporter and CLI.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from suite.data import DataReport


@dataclasses.dataclass
class LoadedData:
    """What a task's loader returns.

    Args:
        splits: split name (`"train"`, `"val"`, `"test"`, `"all"`) to the
            task's own examples object. The core only calls `len()` on it and
            hands it back to the task.
        class_names: one name per class id.
        report: files that were skipped and why.
        layout: which on-disk layout was recognised, in words.
    """

    splits: dict[str, Any]
    class_names: list[str]
    report: DataReport
    layout: str


@dataclasses.dataclass(frozen=True)
class Task:
    """A use case the suite can train, evaluate and export by name.

    Args:
        name: the one name used for the module, registry key, CLI argument,
            `datasets/<name>/` and `saved_models/<name>/`.
        summary: one line saying what the task does.
        data_format: the real dataset's on-disk layout, in words.
        model_summary: the model family, in words.
        recipes: recipe name to a frozen recipe dataclass (a subclass of
            `suite.config.TrainRecipe`); must hold `"default"` and `"smoke"`.
        primary_metric: key of the headline metric in `metrics.json`.
        higher_is_better: direction of `primary_metric`.
        monitor: Keras log key watched for the best checkpoint and early
            stopping, for example `"val_accuracy"`.
        sample_size: default number of examples the generator writes.
        smoke_size: examples the generator writes for smoke runs and tests.
        smoke_floor: a `primary_metric` value the smoke recipe beats on
            `smoke_size` generated examples; the tests hold it to that.
        make_data: `(out_dir, size, seed) -> None`; writes a sample dataset in
            the real dataset's own layout.
        load_data: `(data_dir, recipe) -> LoadedData`; reads the real layout
            and raises `UserError` when the folder holds no such layout.
        dataset: `(examples, recipe, training, batch_size, class_names) ->
            tf.data.Dataset` of batched `(inputs, targets)`; `batch_size` is
            the global batch (per-replica batch x replicas), chosen by the
            trainer; targets index `class_names`.
        build_model: `(recipe, class_names) -> keras.Model`, uncompiled.
        compile_args: `(recipe) -> dict` of `loss` and `metrics` for
            `model.compile`; called inside the strategy scope.
        evaluate: `(model, examples, recipe, class_names, out_dir) -> dict`;
            `model` is a Keras model or a loaded SavedModel of this task;
            may write plots and tables to `out_dir`.
        export_endpoints: `(model, recipe, class_names) -> dict` of endpoint
            name to `(tf_function, input_signature)`; the first is the default
            serving signature. Pre- and postprocessing live inside them.
        predict_files: `(loaded_savedmodel, paths, class_names) -> list[str]`;
            readable predictions for `suite predict`.
        corruptions: names in `suite.corruptions.ALL` the evaluation matrix
            applies to what this task's export receives. Defaults to none.
        slices: `(examples, class_names) -> {family: [value per example]}`;
            the matrix evaluates each value's subset. Defaults to none.
        known_limits: what the data and model do not cover, for the model
            card. Defaults to none.
    """

    name: str
    summary: str
    data_format: str
    model_summary: str
    recipes: Mapping[str, Any]
    primary_metric: str
    higher_is_better: bool
    monitor: str
    sample_size: int
    smoke_size: int
    smoke_floor: float
    make_data: Callable[[Path, int, int], None]
    load_data: Callable[[Path, Any], LoadedData]
    dataset: Callable[..., Any]
    build_model: Callable[[Any, Sequence[str]], Any]
    compile_args: Callable[[Any], dict]
    evaluate: Callable[..., dict]
    export_endpoints: Callable[..., dict]
    predict_files: Callable[..., list[str]]
    corruptions: tuple[str, ...] = ()
    slices: Callable[..., dict[str, Sequence[str]]] | None = None
    known_limits: tuple[str, ...] = ()

    def __post_init__(self):
        missing = {"default", "smoke"} - set(self.recipes)
        if missing:
            raise ValueError(
                f"Task '{self.name}' must define the recipes 'default' and "
                f"'smoke'. Received: {sorted(self.recipes)}"
            )
