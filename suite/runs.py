"""Runs as a user makes them: sample data when there is none, training with an
approach into `runs/<task>/<run-id>/`, resuming, test metrics, loading a
trained run or export, and exporting a run.

The CLI, the matrix's `--train-missing` and the benchmarks all call these, so
"train a task" means one thing everywhere. Like the rest of the core, nothing
here imports `tasks`: the task is handed in.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from suite.config import (DATASETS, RUNS, SAVED_MODELS, TrainRecipe, fingerprint, has_data,  # noqa: F401
                          recipe_from_dict, worker_role, write_json)
from suite.errors import UserError
from suite.task import LoadedData, Task

if TYPE_CHECKING:
    from suite.approaches import SourceArg

APPROACHES = ("scratch", "transfer", "features")
Log = Callable[[str], None]


def new_run_dir(root: Path) -> Path:
    """Creates and returns `root/<YYYYmmdd-HHMMSS>` (with a suffix if taken)."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    for n in range(1000):
        path = root / (stamp if n == 0 else f"{stamp}-{n}")
        try:
            path.mkdir()
            return path
        except FileExistsError:
            continue
    raise RuntimeError(f"Could not create a run directory under {root}")


def latest_run(root: Path, need: str = "best.keras") -> Path | None:
    """The newest run under `root` holding `need`, or None."""
    root = Path(root)
    if not root.is_dir():
        return None
    runs = sorted(
        (p for p in root.iterdir() if (p / need).exists()), key=lambda p: (p / need).stat().st_mtime
    )
    return runs[-1] if runs else None


def ensure_sample(task: Task[Any, Any], data_dir: Path, seed: int, log: Log = print) -> None:
    """Writes the task's sample dataset (default size) to `data_dir` unless data is already there."""
    if not has_data(data_dir):
        log(f"[{task.name}] no data at {data_dir}: making the sample dataset ...")
        task.make_data(Path(data_dir), task.sample_size, seed)


def load_model(path: Path) -> Any:
    """`keras.saving.load_model`, after registering every class a suite checkpoint may use.

    The core's layers and losses (`suite.audio`, `suite.segmentation`,
    `suite.approaches`) register on import; keras-cv is imported lazily (only
    commands that detect pay for it), so a saved detector's classes are
    registered through the adapter when the file names them.
    """
    import importlib
    import zipfile

    import keras

    for module in ("suite.audio", "suite.segmentation", "suite.approaches"):
        importlib.import_module(module)
    with zipfile.ZipFile(path) as archive:
        if b'"keras_cv' in archive.read("config.json"):
            importlib.import_module("suite.kerascv")
    return keras.saving.load_model(path)


def load_trained(task: Task[Any, Any], path: Path | None) -> tuple[Any, TrainRecipe, dict, Path]:
    """A run's best Keras model or an export, with the recipe it was made with, its facts and its path.

    Args:
        task: the task.
        path: a run directory or a SavedModel version folder; None means the
            latest run under `runs/<task>/`.

    Raises:
        UserError: when `path` is neither, or there is no run.
    """
    from suite.export import load_export

    found = Path(path) if path else latest_run(RUNS / task.name)
    if found is None:
        raise UserError(
            f"Expected a trained run under {RUNS / task.name}/. Received: none. "
            f"Train one with `suite train {task.name}` or pass --model."
        )
    recipe_cls = type(task.recipes["default"])
    if (found / "saved_model.pb").exists():
        loaded, meta = load_export(found, task.name)
        return loaded, recipe_from_dict(recipe_cls, meta["recipe"]), meta, found
    if (found / "best.keras").exists() and (found / "config.json").exists():
        config = json.loads((found / "config.json").read_text())
        return load_model(found / "best.keras"), recipe_from_dict(recipe_cls, config["recipe"]), config, found
    raise UserError(
        "Expected a run directory (best.keras, config.json) or a SavedModel "
        f"version folder (saved_model.pb, suite.json). Received: {found}"
    )


def fit(task: Task[Any, Any], recipe: TrainRecipe, data: LoadedData[Any], run_dir: Path, *,
        approach: str = "scratch", source: SourceArg | None = None, strategy: str = "auto", resume: bool = False,
        metadata: dict | None = None, verbose: int | None = None) -> Any:
    """Trains with one approach and returns the best Keras model.

    Args:
        task: the task.
        recipe: the resolved recipe.
        data: loaded data with `train` and `val` splits.
        run_dir: the run directory (created if absent).
        approach: `"scratch"`, `"transfer"` or `"features"`. Defaults to `"scratch"`.
        source: the network transfer and features start from (a resolved
            `--from` file).
        strategy: see `suite.trainer.make_strategy`. Defaults to `"auto"`.
        resume: continue an interrupted run in `run_dir`. Defaults to False.
        metadata: extra facts for `config.json`.
        verbose: Keras verbosity; defaults to the trainer's choice.
    """
    from suite import approaches, trainer

    if approach == "transfer":
        return approaches.train_transfer(task, recipe, data, run_dir, _need(source, approach), strategy=strategy,
                                         resume=resume, metadata=metadata)
    if approach == "features":  # Quick to redo, so resuming simply fits again.
        return approaches.train_features(task, recipe, data, run_dir, _need(source, approach), metadata=metadata)
    return trainer.train(task, recipe, data, run_dir, strategy=strategy, resume=resume, metadata=metadata,
                         verbose=verbose)


def _need(source: SourceArg | None, approach: str) -> SourceArg:
    if source is None:
        raise UserError(f"Expected --from RUN_DIR|SAVEDMODEL_DIR|MODEL.keras|WEIGHTS.h5|imagenet:NAME|preset:NAME "
                        f"with --approach "
                        f"{approach}. Received: no --from.")
    return source


def train_task(task: Task[Any, Any], recipe: TrainRecipe, data_dir: Path | None = None, *,
               recipe_name: str = "default", approach: str = "scratch", source: str | Path | None = None,
               run_dir: Path | None = None, strategy: str = "auto", mix: Path | None = None,
               mix_share: float | None = None, log: Log = print) -> Path:
    """Trains a task as `suite train` does and returns the run directory.

    Without `data_dir` the task's data is `datasets/<task>/`, made from the
    task's generator when absent. The run ends with the test split's metrics
    in `metrics.json`.

    Args:
        task: the task.
        recipe: the resolved recipe (overrides applied).
        data_dir: the dataset folder; defaults to `datasets/<task>/` (made if absent).
        recipe_name: the recipe's name, for the record.
        approach: `"scratch"`, `"transfer"` or `"features"`. Defaults to `"scratch"`.
        source: `--from` (run dir, export, `.keras` or weights file); needed
            by transfer and features, refused by scratch.
        run_dir: defaults to a new `runs/<task>/<timestamp>/`; must not hold a run.
        strategy: see `suite.trainer.make_strategy`. Defaults to `"auto"`.
        mix: another dataset of the task (a generated sample, say) whose
            training split joins `data_dir`'s; validation and test stay
            `data_dir`'s own, so every choice is made on the data that matters.
            Defaults to none.
        mix_share: the fraction of training examples drawn from `mix`
            (`suite.data.mix_in`); None: all of both, once. Defaults to None.
        log: where progress lines go. Defaults to `print`.

    Returns:
        The run directory.

    Raises:
        UserError: for an approach and `source` that do not fit, a run
            directory that already holds a run, or data the task cannot read.
    """
    from suite import approaches

    if approach not in APPROACHES:
        raise UserError(f"Expected --approach in {list(APPROACHES)}. Received: {approach!r}")
    if approach == "scratch" and source:
        raise UserError(f"Expected no --from with --approach scratch (it starts from random weights). "
                        f"Received: --from {source}. Use --approach transfer or features.")
    if approach != "scratch" and not source:
        _need(None, approach)
    if mix_share is not None and not (mix and 0 < mix_share < 1):
        raise UserError(f"Expected --mix-share strictly between 0 and 1, with --mix. Received: --mix-share {mix_share}"
                        + ("" if mix else " without --mix"))
    if run_dir and (Path(run_dir) / worker_role() / "config.json").exists():
        raise UserError(f"Expected a new run directory. Received: {run_dir}, which holds a run. "
                        "Add --resume to continue it.")
    resolved = approaches.resolve_source(source) if source else None
    if data_dir is None:
        data_dir = DATASETS / task.name
        ensure_sample(task, data_dir, recipe.seed, log)
    mixing = (Path(mix), mix_share) if mix else None
    return _run(task, recipe, Path(data_dir), recipe_name, approach, resolved, run_dir, strategy, False, mixing, log)


def resume_task(task: Task[Any, Any], run_dir: Path | None = None, *, data_dir: Path | None = None,
                strategy: str = "auto", log: Log = print) -> Path:
    """Continues an interrupted run from its last finished epoch, with its saved
    recipe, data and approach; returns the run directory.

    Args:
        task: the task.
        run_dir: the run; defaults to the newest run under `runs/<task>/`.
        data_dir: where the data is now, if it moved. Defaults to the run's own.
        strategy: see `suite.trainer.make_strategy`. Defaults to `"auto"`.
        log: where progress lines go. Defaults to `print`.
    """
    run_dir = Path(run_dir) if run_dir else latest_run(RUNS / task.name, "config.json")
    if run_dir is None or not (run_dir / "config.json").exists():
        raise UserError(f"Expected a run directory with config.json to resume. Received: {run_dir}")
    if not worker_role() and (run_dir / "metrics.json").exists():
        raise UserError(f"Expected an interrupted run to resume. Received: {run_dir}, which finished (it has "
                        "metrics.json). Start a new run instead.")
    own = run_dir / worker_role() / "config.json"  # A worker reads its own record where the run is not shared.
    config = json.loads((own if own.exists() else run_dir / "config.json").read_text())
    recipe = recipe_from_dict(type(task.recipes["default"]), config["recipe"])
    approach, source = config.get("approach", "scratch"), config.get("source")
    log(f"[{task.name}] resuming {run_dir} ({approach})")
    if source:
        from suite.approaches import resolve_source

        source = resolve_source(source)
    mixing = (Path(config["mix_dir"]), config.get("mix_share")) if config.get("mix_dir") else None
    return _run(task, recipe, Path(data_dir or config["data_dir"]), config["recipe_name"], approach,
                source or None, run_dir, strategy, True, mixing, log)


@contextlib.contextmanager
def run_lock(run_dir: Path) -> Iterator[None]:
    """Holds `run_dir`'s lock while a process trains there; a second one is refused.

    The lock is `fcntl.flock` on `run_dir/.lock` (a worker under TF_CONFIG
    locks its own `run_dir/worker-N/.lock`), which the kernel releases when the holder
    exits, however it dies: a killed run leaves no lock that blocks its
    `--resume`. The file keeps the holder's pid and start time, for the message.

    Raises:
        UserError: when another live process holds it.
    """
    import fcntl

    own = Path(run_dir) / worker_role()  # A worker writes only below its own folder.
    own.mkdir(parents=True, exist_ok=True)
    path = own / ".lock"
    with open(path, "a+") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.seek(0)
            holder = f.read().strip() or "another process"
            raise UserError(f"Expected no other training in {run_dir}. Received: a run in progress there ({holder}). "
                            "Wait for it, or train into another --run-dir.") from None
        f.seek(0)
        f.truncate()
        f.write(f"pid {os.getpid()} on {socket.gethostname()}, since {time.strftime('%Y-%m-%d %H:%M:%S')}\n")
        f.flush()
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _run(task: Task[Any, Any], recipe: TrainRecipe, data_dir: Path, recipe_name: str, approach: str,
         source: SourceArg | None, run_dir: Path | None, strategy: str, resume: bool,
         mixing: tuple[Path, float | None] | None, log: Log) -> Path:
    from suite.trainer import Preempted, make_strategy

    run_dir = Path(run_dir) if run_dir else new_run_dir(RUNS / task.name)
    if os.environ.get("TF_CONFIG"):  # Several processes: their collectives must be set up before any TF work.
        make_strategy(strategy)
    with run_lock(run_dir):
        try:
            return _locked_run(task, recipe, data_dir, recipe_name, approach, source, run_dir, strategy, resume,
                               mixing, log)
        except Preempted as e:
            raise Preempted(f"[{task.name}] {e}. Continue with: suite train {task.name} --resume --run-dir {run_dir}") \
                from None


def _locked_run(task: Task[Any, Any], recipe: TrainRecipe, data_dir: Path, recipe_name: str, approach: str,
                source: SourceArg | None, run_dir: Path, strategy: str, resume: bool,
                mixing: tuple[Path, float | None] | None, log: Log) -> Path:
    own = run_dir / worker_role()  # A worker's scratch folder, or the run itself.
    if not resume and (own / "config.json").exists():  # Checked again under the lock: a run may have begun.
        raise UserError(f"Expected a new run directory. Received: {run_dir}, which holds a run. "
                        "Add --resume to continue it.")
    data = task.load_data(data_dir, recipe)
    sizes = ", ".join(f"{k} {len(v)}" for k, v in data.splits.items() if k != "all")
    log(f"[{task.name}] {data.layout} at {data_dir}: {data.report.summary()}; {sizes}")
    for path, reason in data.report.skipped[:5]:
        log(f"  skipped {path}: {reason}")
    metadata = {"recipe_name": recipe_name, "data_dir": str(data_dir), "data_fingerprint": _data_fingerprint(data_dir),
                "data_layout": data.layout, "class_names": data.class_names, "approach": approach}
    if mixing:
        data, facts = _mixed(task, recipe, data, *mixing, log)
        metadata.update(facts)
    model = fit(task, recipe, data, run_dir, approach=approach, source=source, strategy=strategy, resume=resume,
                metadata=metadata)
    if worker_role():  # The chief evaluates and writes the run; a worker's copy of the model is the same.
        log(f"[{task.name}] {worker_role()}: training done; the chief writes the run's metrics")
        return run_dir
    metrics = task.evaluate(model, data.splits["test"], recipe, data.class_names, run_dir)
    write_json(run_dir / "metrics.json", {"split": "test", **metrics})
    log(f"[{task.name}] test: {summary(metrics)}")
    log(f"[{task.name}] run: {run_dir}")
    return run_dir


def _data_fingerprint(data_dir: Path) -> str:
    """The fingerprint of a dataset folder (`--data path/to/data.yaml`: its folder)."""
    return fingerprint(data_dir if data_dir.is_dir() else data_dir.parent)


def _mixed(task: Task[Any, Any], recipe: TrainRecipe, data: LoadedData[Any], mix_dir: Path, share: float | None,
           log: Log) -> tuple[LoadedData[Any], dict]:
    """`data` with `mix_dir`'s training split mixed into its own (`train_task`'s `mix`), and the facts to record."""
    from suite.data import mix_in

    extra = task.load_data(mix_dir, recipe)
    if extra.class_names != data.class_names:
        raise UserError(f"Expected --mix data with the classes of --data ({data.class_names}). "
                        f"Received: {mix_dir} with {extra.class_names}")
    if not len(extra.splits["train"]):
        raise UserError(f"Expected a training split in --mix data. Received: {mix_dir} with none")
    train = mix_in(data.splits["train"], extra.splits["train"], share, recipe.seed)
    log(f"[{task.name}] mixed in {extra.layout} at {mix_dir}: {extra.report.summary()}; "
        f"{len(extra.splits['train'])} training examples, share {'all' if share is None else share}: "
        f"train {len(data.splits['train'])} -> {len(train)}")
    for path, reason in extra.report.skipped[:5]:
        log(f"  skipped {path}: {reason}")
    # One report for the run: what either loader skipped or repaired is listed in data_report.json.
    ours, theirs = data.report, extra.report
    report = dataclasses.replace(ours, read=ours.read + theirs.read, skipped=ours.skipped + theirs.skipped,
                                 noted=ours.noted + theirs.noted)
    mixed = dataclasses.replace(data, splits={**data.splits, "train": train}, report=report)
    return mixed, {"mix_dir": str(mix_dir), "mix_share": share, "mix_fingerprint": _data_fingerprint(mix_dir),
                   "mix_train_examples": len(extra.splits["train"]), "mixed_train_examples": len(train)}


def export_run(task: Task[Any, Any], run: Path | None = None, out: Path | None = None) -> Path:
    """Exports a run (default: the latest) to `out` (default `saved_models/<task>/`); returns the version folder.

    Raises:
        UserError: when `run` is an export already, or there is no run.
    """
    from suite.export import export

    model, recipe, config, run_dir = load_trained(task, run)
    if not hasattr(model, "fit"):
        raise UserError(f"Expected a run directory to export. Received: {run_dir}, which is already an export.")
    metrics_path = run_dir / "metrics.json"
    metrics = json.loads(metrics_path.read_text()) if metrics_path.exists() else {}
    return export(task, model, recipe, config["class_names"], Path(out) if out else SAVED_MODELS / task.name, {
        "run_dir": str(run_dir), "data_dir": config.get("data_dir"),
        "fingerprint": config.get("data_fingerprint"), "recipe_name": config.get("recipe_name"),
        "metrics": metrics})


def summary(metrics: dict) -> str:
    """`name value, ...` of a metrics dict's float values, for one log line."""
    return ", ".join(f"{k} {v:.4f}" for k, v in metrics.items() if isinstance(v, float))
