"""The task contract: what a task module hands the shared core.

A task module (`tasks/<name>.py`) ends with `TASK = Task(...)`. The core reads
nothing else from it, so the contract is the whole interface between a use case
and the trainer, exporter and CLI.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar

from suite.config import TrainRecipe
from suite.data import DataReport
from suite.fetch import Source

if TYPE_CHECKING:
    import keras
    import tensorflow as tf

# Each task has its own recipe class (a `TrainRecipe` subclass) and its own
# examples type (whatever its loader returns per split); the contract is
# generic in both, so a type checker holds every callable of one task to the
# same two types.
R = TypeVar("R", bound=TrainRecipe)
E = TypeVar("E")
R_contra = TypeVar("R_contra", bound=TrainRecipe, contravariant=True)
E_contra = TypeVar("E_contra", contravariant=True)

# What an export endpoint is: a traceable function and its input signature.
Endpoints = dict[str, tuple[Callable[..., Any], list["tf.TensorSpec"]]]


@dataclasses.dataclass
class LoadedData(Generic[E]):
    """What a task's loader returns.

    Args:
        splits: split name (`"train"`, `"val"`, `"test"`, `"all"`) to the
            task's own examples object. The core only calls `len()` on it and
            hands it back to the task.
        class_names: one name per class id.
        report: files that were skipped and why.
        layout: which on-disk layout was recognised, in words.
    """

    splits: dict[str, E]
    class_names: list[str]
    report: DataReport
    layout: str


# --- The callables a task provides (positional arguments, in this order) -------------


class MakeData(Protocol):
    """Writes a sample dataset of about `size` examples in the real dataset's own layout; `style` names
    one of the generator's looks, "" its default."""

    def __call__(self, out_dir: Path, size: int, seed: int, style: str = "", /) -> None: ...


class LoadData(Protocol[R_contra, E]):
    """Reads the real layout (and the sample) from `data_dir`; raises `UserError` when
    the folder holds no such layout."""

    def __call__(self, data_dir: Path, recipe: R_contra, /) -> LoadedData[E]: ...


class MakeDataset(Protocol[R_contra, E_contra]):
    """Batched `(inputs, targets)`; `batch_size` is the global batch chosen by the trainer."""

    def __call__(self, examples: E_contra, recipe: R_contra, training: bool, batch_size: int,
                 class_names: list[str], /) -> tf.data.Dataset: ...


class BuildModel(Protocol[R_contra]):
    """The uncompiled Keras model for these classes."""

    def __call__(self, recipe: R_contra, class_names: list[str], /) -> keras.Model: ...


class CompileArgs(Protocol[R_contra]):
    """`loss` and `metrics` (any `model.compile` keywords but the optimizer)."""

    def __call__(self, recipe: R_contra, /) -> dict[str, Any]: ...


class Evaluate(Protocol[R_contra, E_contra]):
    """Metrics of a Keras model or a loaded export of this task; may write plots and tables to `out_dir`
    (None: the metrics only, as the matrix asks for every condition but the clean one)."""

    def __call__(self, model: Any, examples: E_contra, recipe: R_contra, class_names: list[str],
                 out_dir: Path | None, /) -> dict[str, Any]: ...


class ExportEndpoints(Protocol[R_contra]):
    """Endpoint name to `(function, input_signature)`; the first is the default signature."""

    def __call__(self, model: keras.Model, recipe: R_contra, class_names: list[str], /) -> Endpoints: ...


class PredictFiles(Protocol[R_contra]):
    """Readable lines for `suite predict`, from a loaded export and the recipe it was
    exported with; with `out_dir`, tasks that draw write annotated copies there
    (the others raise `UserError`)."""

    def __call__(self, loaded: Any, paths: list[Path], recipe: R_contra, class_names: list[str],
                 out_dir: Path | None, /) -> list[str]: ...


class Slices(Protocol[R_contra, E_contra]):
    """Family name to one value per example; the matrix evaluates each value's subset."""

    def __call__(self, examples: E_contra, recipe: R_contra, class_names: list[str], /) -> dict[str, list[str]]: ...


@dataclasses.dataclass(frozen=True)
class Task(Generic[R, E]):
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
        smoke_floors: metric name -> a value the smoke recipe beats on
            `smoke_size` generated examples (the `primary_metric` among
            them); the tests hold its run and its export to every one. Set
            where a broken model cannot reach (about half the lowest value
            measured), not at chance.
        make_data: `MakeData`: `(out_dir, size, seed, style="") -> None`; writes a
            sample dataset in the real dataset's own layout.
        load_data: `LoadData`: `(data_dir, recipe) -> LoadedData`; reads the
            real layout and raises `UserError` when the folder holds no such
            layout.
        dataset: `MakeDataset`: `(examples, recipe, training, batch_size,
            class_names) -> tf.data.Dataset` of batched `(inputs, targets)`;
            `batch_size` is the global batch (per-replica batch x replicas),
            chosen by the trainer; targets index `class_names`.
        build_model: `BuildModel`: `(recipe, class_names) -> keras.Model`,
            uncompiled.
        compile_args: `CompileArgs`: `(recipe) -> dict` of `loss` and
            `metrics` for `model.compile`; called inside the strategy scope.
        evaluate: `Evaluate`: `(model, examples, recipe, class_names,
            out_dir) -> dict`; `model` is a Keras model or a loaded SavedModel
            of this task; may write plots and tables to `out_dir` (None:
            metrics only).
        export_endpoints: `ExportEndpoints`: `(model, recipe, class_names) ->
            {name: (function, input_signature)}`; the first is the default
            serving signature. Pre- and postprocessing live inside them.
        predict_files: `PredictFiles`: `(loaded_savedmodel, paths, recipe,
            class_names, out_dir) -> list[str]`; readable predictions for
            `suite predict`, with the recipe the export was made with.
        corruptions: names in `suite.corruptions.ALL` the evaluation matrix
            applies to what this task's export receives. Defaults to none.
        slices: `Slices`: `(examples, recipe, class_names) -> {family: [value
            per example]}`; the matrix evaluates each value's subset, with the
            export's recipe. Defaults to none.
        known_limits: what the data and model do not cover, for the model
            card. Defaults to none.
        sources: the public datasets `suite data fetch` downloads for this
            task (`suite.fetch.Source`), in the layout `load_data` reads; the
            first is the default. Defaults to none.
    """

    name: str
    summary: str
    data_format: str
    model_summary: str
    recipes: Mapping[str, R]
    primary_metric: str
    higher_is_better: bool
    monitor: str
    sample_size: int
    smoke_size: int
    smoke_floors: Mapping[str, float]
    make_data: MakeData
    load_data: LoadData[R, E]
    dataset: MakeDataset[R, E]
    build_model: BuildModel[R]
    compile_args: CompileArgs[R]
    evaluate: Evaluate[R, E]
    export_endpoints: ExportEndpoints[R]
    predict_files: PredictFiles[R]
    corruptions: tuple[str, ...] = ()
    slices: Slices[R, E] | None = None
    known_limits: tuple[str, ...] = ()
    sources: tuple[Source, ...] = ()

    def __post_init__(self) -> None:
        missing = {"default", "smoke"} - set(self.recipes)
        if missing:
            raise ValueError(
                f"Task '{self.name}' must define the recipes 'default' and "
                f"'smoke'. Received: {sorted(self.recipes)}"
            )
        if self.primary_metric not in self.smoke_floors:
            raise ValueError(f"Task '{self.name}' must give a smoke floor for its primary metric "
                             f"'{self.primary_metric}'. Received: {sorted(self.smoke_floors)}")
