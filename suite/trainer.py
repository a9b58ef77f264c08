"""The shared trainer: Keras `compile` + `fit` inside a tf.distribute strategy.

Intentionally short. Everything a task owns (data, model, loss, metrics) comes
through the `Task` contract; everything a run needs to be trusted (resume,
best checkpoint, history, TensorBoard, config with versions) is a Keras
callback or a file written here.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import math
import os
import signal
import sys
import threading
from pathlib import Path
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import keras
import tensorflow as tf

from suite.config import TrainRecipe, library_versions, worker_role, write_json

if TYPE_CHECKING:
    from suite.task import LoadedData, Task


# One per process: TensorFlow configures a process's collectives once (a transfer run trains twice).
_MULTIWORKER: tf.distribute.Strategy | None = None


def make_strategy(name: str = "auto") -> tf.distribute.Strategy:
    """Chooses the distribution strategy.

    Args:
        name: `"auto"`, `"default"`, `"mirrored"` or `"multiworker"`. `"auto"`
            picks MultiWorkerMirroredStrategy when `TF_CONFIG` names several
            processes (chief and workers), MirroredStrategy over all GPUs when there are any, and
            the default strategy on CPU-only hosts, where one mirrored CPU
            replica only adds copies and cross-device reductions.
            `"mirrored"` on a CPU-only host mirrors over all logical CPUs.
            Defaults to `"auto"`.

    Returns:
        A `tf.distribute.Strategy`.
    """
    cluster = json.loads(os.environ.get("TF_CONFIG", "{}") or "{}").get("cluster", {})
    processes = len(cluster.get("chief", [])) + len(cluster.get("worker", []))
    if name == "multiworker" or (name == "auto" and processes > 1):
        # Before anything lists devices: collectives are configured when TensorFlow's context starts.
        global _MULTIWORKER
        if _MULTIWORKER is None:
            _MULTIWORKER = tf.distribute.MultiWorkerMirroredStrategy()
        return _MULTIWORKER
    gpus = [d.name for d in tf.config.list_logical_devices("GPU")]
    if name == "auto":
        name = "mirrored" if gpus else "default"
    if name == "mirrored":
        if gpus:
            return tf.distribute.MirroredStrategy(gpus)
        cpus = [d.name for d in tf.config.list_logical_devices("CPU")]
        # NCCL needs GPUs; on CPUs gradients are summed on one device.
        return tf.distribute.MirroredStrategy(
            cpus, cross_device_ops=tf.distribute.ReductionToOneDevice()
        )
    if name == "default":
        return tf.distribute.get_strategy()
    raise ValueError(
        "Expected strategy 'auto', 'default', 'mirrored' or 'multiworker'. "
        f"Received: {name!r}"
    )


def describe(strategy: tf.distribute.Strategy) -> dict:
    """The strategy's class name, replica count and devices, for logs and config."""
    try:
        devices = list(strategy.extended.worker_devices)
    except RuntimeError:  # The default strategy runs where TF places ops.
        gpus = tf.config.list_logical_devices("GPU")
        devices = [(gpus or tf.config.list_logical_devices("CPU"))[0].name]
    return {
        "strategy": type(strategy).__name__,
        "replicas": strategy.num_replicas_in_sync,
        "devices": devices,
    }


class Preempted(Exception):
    """Training stopped on SIGTERM (a scheduler's notice before it preempts or kills)."""


class StopOnSigterm(keras.callbacks.Callback):
    """Turns SIGTERM into a stop at the next batch boundary, never inside a backup:
    BackupAndRestore keeps the last finished epoch, and `--resume` redoes the
    interrupted one from there (Keras restores whole epochs)."""

    def __init__(self) -> None:
        super().__init__()
        self.signalled = False

    def handler(self, signum: int, frame: Any) -> None:
        self.signalled = True

    def _check(self, batch: int, logs: dict | None = None) -> None:
        if self.signalled:
            raise Preempted(f"stopped by SIGTERM during epoch {self.epoch + 1}; the backup of the last finished "
                            "epoch is kept")

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self.epoch = epoch
        self._check(0)

    on_train_batch_end = _check
    on_test_batch_end = _check


def _fix_keras_multiworker_reduce() -> None:
    """Keras 3.15's TF trainer averages each step's logs across workers with
    `strategy.reduce("MEAN", v, axis=0)`, which fails for the scalar losses and
    metrics every step returns ("Invalid reduction dimension 0 for input with 0
    dimensions"): MultiWorkerMirroredStrategy could not `fit` at all. Scalars
    are averaged over replicas (axis None) instead; everything else is Keras' own."""
    from keras.src.backend.tensorflow import trainer as keras_tf_trainer
    from keras.src import tree

    original = keras_tf_trainer.reduce_per_replica
    if getattr(original, "_suite_fix", False):
        return

    def reduce_per_replica(values, strategy, reduction):
        if reduction in ("auto", "mean") and keras_tf_trainer._collective_all_reduce_multi_worker(strategy):
            def mean(v):
                local = strategy.experimental_local_results(v)[0] if hasattr(v, "values") else v
                return strategy.reduce("MEAN", v, axis=0 if local.shape.rank else None)

            return tree.map_structure(mean, values)
        return original(values, strategy, reduction)

    reduce_per_replica._suite_fix = True  # type: ignore[attr-defined]
    keras_tf_trainer.reduce_per_replica = reduce_per_replica


class SyncMovingStatistics(keras.callbacks.Callback):
    """Averages the non-trainable float variables (BatchNorm's moving mean and
    variance) over all replicas at each epoch's end, before anything is saved.

    Keras updates them on each replica from its own batches and never syncs
    them, so under MultiWorkerMirroredStrategy every worker ended with its
    own statistics (speech_commands, 2 epochs: up to 0.04 apart) and the
    chief's checkpoint described half the data.
    """

    def __init__(self, strategy: tf.distribute.Strategy) -> None:
        super().__init__()
        self.strategy = strategy

    def on_train_begin(self, logs: dict | None = None) -> None:
        self.variables = [v for v in self.model.non_trainable_variables if "float" in str(v.dtype)]

        strategy = self.strategy

        @tf.function
        def means():
            # Each replica's own copy (a MirroredVariable read in replica context), then averaged across all.
            local = strategy.run(lambda: [tf.identity(v.value) for v in self.variables])
            return [strategy.reduce("MEAN", t, axis=None) for t in local]

        self.means = means

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if not self.variables:
            return
        for v, mean in zip(self.variables, self.means()):
            v.assign(mean)


class AveragedWeights(keras.callbacks.Callback):
    """Puts the optimizer's moving average of the weights (`use_ema=True`) into the model for validation
    and for the callbacks after this one at each epoch's end, and the raw weights back before the next
    epoch trains on.

    Keras' `SwapEMAWeights` swaps the two in place, so the average holds the raw weights while the model
    holds the average; when early stopping ends the run there, `fit` then overwrites the model with the
    "average", the raw weights. Here the raw weights wait in memory and the average stays the average.
    The average is read from the optimizer's private `_model_variables_moving_average`, as Keras' callback does.
    """

    def __init__(self) -> None:
        super().__init__()
        self.raw: list | None = None

    def _average_in(self, *args: Any) -> None:
        if self.raw is None:
            self.raw = [v.numpy() for v in self.model.trainable_variables]
            for v, average in zip(self.model.trainable_variables, self.model.optimizer._model_variables_moving_average):
                if average is not None:
                    v.assign(average)

    def _raw_back(self, *args: Any) -> None:
        if self.raw is not None:
            for v, raw in zip(self.model.trainable_variables, self.raw):
                v.assign(raw)
            self.raw = None

    on_test_begin = on_epoch_end = _average_in
    on_test_end = on_epoch_begin = _raw_back


def shard_by_data(ds: tf.data.Dataset) -> tf.data.Dataset:
    """`ds` with tf.data's DATA auto-sharding: each worker keeps every Nth batch.

    The tasks' pipelines read in-memory lists (paths, arrays), not files
    tf.data could split by name, so FILE sharding does not apply; saying DATA
    outright skips the failed FILE attempt and its warning."""
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return ds.with_options(options)


def record_shard(dist: tf.distribute.Strategy, ds: tf.data.Dataset, path: Path) -> None:
    """Writes what this worker reads in one epoch, distributed as `fit` does: a
    digest of every example (inputs and target) of the unshuffled, unaugmented
    pipeline, for checking that workers read disjoint shards covering the data."""
    import hashlib

    import numpy as np

    def digests(tensors):
        flat = [np.asarray(t) for t in tf.nest.flatten(tensors)]
        return [hashlib.sha1(b"".join(a[i].tobytes() for a in flat)).hexdigest()[:16] for i in range(len(flat[0]))]

    seen: list[str] = []
    for batch in dist.experimental_distribute_dataset(ds):
        for local in dist.experimental_local_results(batch):
            seen += digests(local)
    config = json.loads(os.environ.get("TF_CONFIG", "{}") or "{}")
    write_json(path, {"task": config.get("task", {}), "examples": len(seen), "digests": seen})


def best_so_far(history: Path, monitor: str, mode: str) -> float | None:
    """The best monitored value in an interrupted run's history, if any."""
    if not history.exists():
        return None
    with history.open() as f:
        values = [float(r[monitor]) for r in csv.DictReader(f) if r.get(monitor)]
    if not values:
        return None
    return max(values) if mode == "max" else min(values)


def write_run_config(run_dir: Path, task: Task[Any, Any], recipe: TrainRecipe, data: LoadedData[Any], facts: dict) -> None:
    """Writes `config.json` (recipe, library versions, command, `facts`) and
    `data_report.json` into `run_dir`, creating it."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    write_json(
        run_dir / "config.json",
        {
            "task": task.name,
            "recipe": dataclasses.asdict(recipe),
            "recipe_class": type(recipe).__name__,
            "versions": library_versions(),
            "command": sys.argv,
            **facts,
        },
    )
    write_json(run_dir / "data_report.json", data.report.to_dict())


def rate_once_per_step(optimizer: keras.optimizers.Optimizer) -> None:
    """Makes a traced train step compute `optimizer`'s scheduled learning rate once, not once per variable.

    Keras' TensorFlow optimizer reads `optimizer.learning_rate` again for each variable's decoupled weight
    decay (AdamW), and each read of a schedule adds the schedule's ops to the graph: a detector's train
    step computed the cosine-with-warmup rate 185 times, seconds of tracing per run (docs/benchmarks.md,
    "Learning rate once per traced step"). Within one graph the rate is the same tensor each time (the step
    count changes only after the update), so the first one made in a graph is reused; eager calls and
    other graphs (a loop or `cond` body) compute their own. The optimizer's config is untouched, so what
    is saved with a model is a standard AdamW and schedule. Private Keras API, skipped where it is gone.
    """
    compute = getattr(optimizer, "_get_current_learning_rate", None)
    if compute is None:
        return
    rate = None

    def current_rate() -> Any:
        nonlocal rate
        if tf.executing_eagerly():
            return compute()
        if getattr(rate, "graph", None) is not tf.compat.v1.get_default_graph():  # The tensor knows its graph.
            rate = compute()
        return rate

    optimizer._get_current_learning_rate = current_rate


def train(
    task: Task[Any, Any],
    recipe: TrainRecipe,
    data: LoadedData[Any],
    run_dir: Path,
    *,
    strategy: str = "auto",
    resume: bool = False,
    metadata: dict | None = None,
    verbose: int | None = None,
    build_model: Callable[[], keras.Model] | None = None,
) -> keras.Model:
    """Trains `task` on `data` and returns the best model.

    Writes into `run_dir`: `config.json` (resolved recipe, library versions,
    strategy and devices, plus `metadata`), `data_report.json`, `history.csv`,
    `tensorboard/`, `backup/` (deleted when training ends), `best.keras` and
    `last.keras`.

    Args:
        task: a `suite.task.Task`.
        recipe: the resolved recipe.
        data: the task's `LoadedData`; needs `"train"` and `"val"` splits.
        run_dir: the run directory; created if absent.
        strategy: see `make_strategy`. Defaults to `"auto"`.
        resume: continue from `run_dir/backup` (BackupAndRestore) rather
            than requiring a fresh directory. Defaults to False.
        metadata: extra facts for `config.json` (data dir, fingerprint ...).
        verbose: Keras verbosity; defaults to a progress bar on a terminal
            and one line per epoch otherwise.
        build_model: makes the (uncompiled) model inside the strategy
            scope; defaults to `task.build_model(recipe, data.class_names)`.
            `suite.approaches` passes one that starts from a trained network.

    Returns:
        The model with the best `task.monitor` value, loaded from `best.keras`.
    """
    keras.utils.set_random_seed(recipe.seed)
    if recipe.deterministic:
        tf.config.experimental.enable_op_determinism()
    dist = make_strategy(strategy)
    info = describe(dist)
    global_batch = recipe.batch_size * dist.num_replicas_in_sync
    print(
        f"[{task.name}] strategy {info['strategy']} with {info['replicas']} replica(s) "
        f"on {', '.join(info['devices'])}; global batch {global_batch} "
        f"= {recipe.batch_size} x {info['replicas']}",
        flush=True,
    )
    run_dir = Path(run_dir) / worker_role()  # Non-chief workers write to a scratch dir of their own.
    write_run_config(run_dir, task, recipe, data, {"global_batch": global_batch, **info, **(metadata or {})})

    train_ds = task.dataset(data.splits["train"], recipe, True, global_batch, data.class_names)
    val_ds = task.dataset(data.splits["val"], recipe, False, global_batch, data.class_names)
    if isinstance(dist, tf.distribute.MultiWorkerMirroredStrategy):
        _fix_keras_multiworker_reduce()
        train_ds, val_ds = (shard_by_data(ds) for ds in (train_ds, val_ds))
        record_shard(dist, shard_by_data(task.dataset(data.splits["train"], recipe, False, global_batch,
                                                      data.class_names)), run_dir / "shard.json")
    # Steps per epoch for the schedule: the pipeline's own count when it knows
    # it (a task may draw several crops per example), else examples / batch.
    known = int(train_ds.cardinality())
    steps = known if known > 0 else max(1, math.ceil(len(data.splits["train"]) / global_batch))
    warmup = min(recipe.warmup_epochs * steps, recipe.epochs * steps - 1)
    schedule = keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=0.0,
        decay_steps=max(1, recipe.epochs * steps - warmup),
        alpha=0.01,
        warmup_target=recipe.learning_rate,
        warmup_steps=warmup,
    )
    with dist.scope():
        model = build_model() if build_model else task.build_model(recipe, data.class_names)
        model.compile(
            optimizer=keras.optimizers.AdamW(schedule, weight_decay=recipe.weight_decay,
                                             global_clipnorm=recipe.clipnorm or None,
                                             use_ema=recipe.ema_momentum > 0, ema_momentum=recipe.ema_momentum),
            **task.compile_args(recipe),
        )
        # Optimizer, loss and metric variables built here, not inside the first traced train step: TensorFlow
        # traces a function that creates variables twice, and tracing is most of a detector's first epoch
        # (pedestrians smoke, first step: 27 s -> 14 s). Keras builds this way itself under a distribution
        # strategy (`_maybe_symbolic_build`), from shapes only; the private call is skipped where it is gone.
        model.optimizer.build(model.trainable_variables)
        rate_once_per_step(model.optimizer)
        symbolic_build = getattr(model, "_symbolic_build", None)
        if symbolic_build is not None:
            symbolic_build(data_batch=train_ds.element_spec)
            # Built: `fit` and `evaluate` need not build again from a batch they pull and average across
            # replicas, which fails under MultiWorkerMirroredStrategy (Keras 3.15 reduces a PerReplica eagerly:
            # "Attempt to convert a value (PerReplica ...) to a Tensor").
            model._maybe_symbolic_build = lambda iterator=None, data_batch=None: None

    if resume and worker_role() and (run_dir.parent / "backup").is_dir():
        # A worker resumes from the chief's backup where it can see it (a shared run directory): each process
        # saves its own at the end of an epoch, and a kill between the two saves would leave them an epoch apart.
        import shutil

        shutil.rmtree(run_dir / "backup", ignore_errors=True)
        shutil.copytree(run_dir.parent / "backup", run_dir / "backup")
    mode = "min" if task.monitor.endswith("loss") else "max"
    best = best_so_far(run_dir / "history.csv", task.monitor, mode) if resume else None
    callbacks = [
        # Several machines: the BatchNorm statistics made equal on all of them before any is saved.
        *([SyncMovingStatistics(dist)] if isinstance(dist, tf.distribute.MultiWorkerMirroredStrategy) else []),
        # First of the rest, so an epoch is only logged once its state is safely backed up.
        keras.callbacks.BackupAndRestore(str(run_dir / "backup"), double_checkpoint=True),
        # With `ema_momentum`: validation and every epoch-end callback from here on see the averaged weights; the
        # backup above keeps the raw ones (and the average), so a resumed run goes on from where it was.
        *([AveragedWeights()] if recipe.ema_momentum > 0 else []),
        keras.callbacks.ModelCheckpoint(
            str(run_dir / "best.keras"),
            monitor=task.monitor,
            mode=mode,
            save_best_only=True,
            initial_value_threshold=best,
        ),
        # BackupAndRestore already keeps the latest state every epoch; the full
        # last model is written once, at the end (saving it every epoch slowed training).
        keras.callbacks.LambdaCallback(on_train_end=lambda logs: model.save(run_dir / "last.keras")),
        keras.callbacks.EarlyStopping(
            monitor=task.monitor,
            mode=mode,
            patience=recipe.early_stopping_patience,
            baseline=best,
        ),
        keras.callbacks.TensorBoard(str(run_dir / "tensorboard"), write_graph=False, profile_batch=0),
        keras.callbacks.CSVLogger(str(run_dir / "history.csv"), append=True),
        stopper := StopOnSigterm(),
    ]
    if verbose is None:
        verbose = 1 if sys.stdout.isatty() else 2
    # Signal handlers can only be set from the main thread (a notebook's worker thread trains without one).
    main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, stopper.handler) if main_thread else None
    try:
        model.fit(
            train_ds,
            validation_data=val_ds,
            epochs=recipe.epochs,
            callbacks=callbacks,
            verbose=verbose,
            shuffle=False,  # The tf.data pipeline shuffles.
        )
    finally:
        if main_thread:
            signal.signal(signal.SIGTERM, previous)
    if not (run_dir / "best.keras").exists():  # No epoch beat a resumed best.
        model.save(run_dir / "best.keras")
    return keras.saving.load_model(run_dir / "best.keras")
