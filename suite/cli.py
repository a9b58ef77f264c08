"""`suite`: train, evaluate, export and predict any registered task by name.

The CLI is the only part of the core that reads the task registry.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from suite.config import DATASETS, RUNS, SAVED_MODELS, has_data
from suite.errors import UserError, closest
from suite.fetch import MANIFEST, dataset_dir

if TYPE_CHECKING:
    from suite.task import Task


def get_task(name: str) -> Task[Any, Any]:
    """Looks a task up in the registry, or raises a UserError naming the tasks."""
    from tasks import TASKS

    if name not in TASKS:
        raise UserError(
            f"Unknown task '{name}'.{closest(name, TASKS)} "
            f"Expected one of: {', '.join(TASKS)}. Received: {name!r}"
        )
    return TASKS[name]


def _recipe(task: Task[Any, Any], name: str, sets: list[str]) -> Any:
    from suite.config import apply_overrides

    if name not in task.recipes:
        raise UserError(
            f"Unknown recipe '{name}' for task '{task.name}'.{closest(name, task.recipes)} "
            f"Expected one of: {', '.join(task.recipes)}. Received: {name!r}"
        )
    return apply_overrides(task.recipes[name], sets)


# --- Commands: each parses its arguments and calls the core ---------------------


def cmd_list(args: argparse.Namespace) -> None:
    from suite.export import latest_export
    from suite.runs import latest_run
    from tasks import TASKS

    for name, task in TASKS.items():
        run = latest_run(RUNS / name)
        export = latest_export(SAVED_MODELS / name)
        print(f"{name}: {task.summary}")
        print(f"  data format:    {task.data_format}")
        print(f"  model:          {task.model_summary}")
        print(f"  primary metric: {task.primary_metric} ({'higher' if task.higher_is_better else 'lower'} is better)")
        print(f"  data:           {DATASETS / name if has_data(DATASETS / name) else 'none (suite data make ' + name + ')'}")
        print(f"  trained run:    {run or 'none'}")
        print(f"  export:         {export or 'none'}")
        for source in task.sources:
            fetched = dataset_dir(DATASETS, name, source.name)
            where = f"fetched: {fetched}" if (fetched / MANIFEST).exists() else \
                f"`suite data fetch {name} --source {source.name}`" + (" --archive FILE" if source.manual else "")
            print(f"  source {source.name}: {source.title} ({where})")


def cmd_data_make(args: argparse.Namespace) -> None:
    task = get_task(args.task)
    out = Path(args.out) if args.out else DATASETS / task.name
    if has_data(out) and not args.force:
        raise UserError(f"Expected an empty or absent folder. Received: {out}, which holds files. Use --force to overwrite.")
    size = args.size or task.sample_size
    print(f"[{task.name}] writing {size} sample examples to {out} ...", flush=True)
    task.make_data(out, size, args.seed, args.style)
    print(f"[{task.name}] done: {out}")


def cmd_data_fetch(args: argparse.Namespace) -> None:
    from suite.fetch import fetch, find_source

    task = get_task(args.task)
    source = find_source(task.sources, args.source, task.name)
    out = Path(args.out) if args.out else dataset_dir(DATASETS, task.name, source.name)
    print(f"[{task.name}] fetching {source.title} into {out}", flush=True)
    root = fetch(source, out, archives=[Path(a) for a in args.archive], cache=args.cache, force=args.force,
                 mirror=args.mirror, quiet=args.quiet, log=_log)
    data = source.name if not args.out else str(root)
    print(f"[{task.name}] done: {root}\n  train on it: suite train {task.name} --data {data}")


def _data(task: Task[Any, Any], value: str | None) -> Path | None:
    """`--data` as a folder, or the name of a fetched source (`suite data fetch`)."""
    from suite.fetch import resolve_data

    return resolve_data(value, task.name, task.sources, DATASETS) if value else None


def _log(line: str) -> None:
    print(line, flush=True)


def cmd_train(args: argparse.Namespace) -> None:
    from suite import runs

    task = get_task(args.task)
    data_dir = _data(task, args.data)
    if args.resume:
        if args.mix or args.mix_share is not None:
            raise UserError("Expected no --mix or --mix-share with --resume: a run resumes with its saved data. "
                            f"Received: --mix {args.mix} --mix-share {args.mix_share}")
        if args.sets:
            raise UserError("Expected no --set with --resume: a run resumes with its saved recipe. "
                            f"Received: {args.sets}")
        runs.resume_task(task, Path(args.run_dir) if args.run_dir else None, data_dir=data_dir,
                         strategy=args.strategy, log=_log)
        return
    runs.train_task(task, _recipe(task, args.recipe, args.sets), data_dir, recipe_name=args.recipe,
                    approach=args.approach, source=args.source, run_dir=Path(args.run_dir) if args.run_dir else None,
                    strategy=args.strategy, mix=_data(task, args.mix), mix_share=args.mix_share, log=_log)


def cmd_evaluate(args: argparse.Namespace) -> None:
    from suite.runs import load_trained, summary

    task = get_task(args.task)
    model, recipe, meta, _ = load_trained(task, Path(args.model) if args.model else None)
    data_dir = _data(task, args.data) or DATASETS / task.name
    data = task.load_data(data_dir, recipe)
    if args.split not in data.splits:
        raise UserError(f"Expected a split in {sorted(data.splits)}. Received: {args.split!r}")
    if len(data.splits[args.split]) == 0:
        raise UserError(f"Expected examples in split '{args.split}' of {data_dir}. Received: none.")
    out = Path(args.out) if args.out else None  # No --out: the metrics only, no plots.
    metrics = task.evaluate(model, data.splits[args.split], recipe, meta.get("class_names", data.class_names), out)
    result = {"task": task.name, "model": str(args.model or "latest run"), "data": str(data_dir),
              "split": args.split, "skipped_files": len(data.report.skipped), **metrics}
    if args.json:
        print(json.dumps(result))
    else:
        print(f"[{task.name}] {args.split} split of {data_dir} ({metrics.get('n', '?')} examples): {summary(metrics)}")


def cmd_export(args: argparse.Namespace) -> None:
    from suite.runs import export_run

    task = get_task(args.task)
    target = export_run(task, Path(args.run) if args.run else None, Path(args.out) if args.out else None)
    print(f"[{task.name}] exported {target}")


def cmd_predict(args: argparse.Namespace) -> None:
    from suite.config import recipe_from_dict
    from suite.export import latest_export, load_export

    task = get_task(args.task)
    path = Path(args.model) if args.model else latest_export(SAVED_MODELS / task.name)
    if path is None:
        raise UserError(f"Expected an export under {SAVED_MODELS / task.name}/. Received: none. "
                        f"Run `suite export {task.name}` first or pass --model.")
    files = [Path(f) for f in args.files]
    for f in files:
        if not f.is_file():
            raise UserError(f"Expected a readable file. Received: {f}, which does not exist.")
    loaded, meta = load_export(path, task.name)
    recipe = recipe_from_dict(type(task.recipes["default"]), meta["recipe"])  # The export's own recipe.
    for line in task.predict_files(loaded, files, recipe, meta["class_names"], Path(args.out) if args.out else None):
        print(line)


def cmd_recipe(args: argparse.Namespace) -> None:
    from suite.config import describe_recipe

    task = get_task(args.task)
    recipe = _recipe(task, args.recipe, args.sets)
    rows = describe_recipe(recipe, task.recipes["default"])
    if args.json:
        print(json.dumps({"task": task.name, "recipe": args.recipe, "values": rows}, default=list))
        return
    print(f"{task.name}, recipe {args.recipe!r} (recipes: {', '.join(task.recipes)}; "
          f"change any value with `suite train {task.name} --set KEY=VALUE`)")
    width = max(len(r["key"]) for r in rows)
    for r in rows:
        value = _show(r["value"])
        default = "" if r["value"] == r["default"] else f"  (default {_show(r['default'])})"
        print(f"  {r['key']:<{width}}  {r['type']:<5} = {value}{default}")
        if r["reason"]:
            print(f"  {'':<{width}}  {r['reason']}")


def _show(value: Any) -> str:
    if isinstance(value, tuple):
        return ",".join(str(v) for v in value) or "(empty)"
    return repr(value) if isinstance(value, str) else str(value)


# --- Parser -------------------------------------------------------------------

# One example per command, shown in its --help (TASK stands for any registered task).
EXAMPLES = {
    "list": "suite list",
    "data make": "suite data make traffic_signs --size 500",
    "data fetch": "suite data fetch pedestrians            # then: suite train pedestrians --data penn_fudan",
    "train": "suite train traffic_signs --recipe smoke --set epochs=3",
    "evaluate": "suite evaluate traffic_signs --split val --out reports/signs",
    "export": "suite export traffic_signs               # saved_models/traffic_signs/<N>/",
    "matrix": "suite matrix --tasks traffic_signs,speech_commands --limit 100",
    "predict": "suite predict traffic_signs photo.png",
    "recipe": "suite recipe machinery_proximity --recipe smoke",
}


def _epilog(command: str, names: list[str]) -> str:
    return f"tasks: {', '.join(names)}\nexample:\n  {EXAMPLES[command]}"


def _versions() -> str:
    from suite.config import library_versions

    v = library_versions()
    return "suite " + v.pop("suite", "?") + " (" + ", ".join(f"{k} {x}" for k, x in v.items()) + ")"


def _pairs(values: list[str], what: str, known) -> dict[str, list[str]]:
    """`TASK=VALUE` arguments by task; every TASK must be registered."""
    out: dict[str, list[str]] = {}
    for value in values:
        name, sep, rest = value.partition("=")
        if not sep or not rest:
            raise UserError(f"Expected {what} as TASK=PATH. Received: {value!r}")
        if name not in known:
            get_task(name)
        out.setdefault(name, []).append(rest)
    return out


def cmd_matrix(args: argparse.Namespace) -> None:
    import os
    import shlex

    from suite import matrix, runs
    from suite.export import latest_export
    from tasks import TASKS

    if (args.sets or args.recipe != "default") and not args.train_missing:
        raise UserError("Expected --recipe and --set only with --train-missing (they choose what it trains). "
                        f"Received: --recipe {args.recipe} --set {args.sets} without --train-missing.")
    names = [n.strip() for n in args.tasks.split(",") if n.strip()] if args.tasks else list(TASKS)
    tasks = {n: get_task(n) for n in names}
    models = _pairs([m for m in args.models if m != "latest"], "--models", TASKS)
    datas = {k: [str(_data(TASKS[k], d)) for d in v] for k, v in _pairs(args.data, "--data", TASKS).items()}
    entries = []
    for name, task in tasks.items():
        folders = [Path(d) for d in datas.get(name, [DATASETS / name])]
        paths: list[Path | None] = [Path(m) for m in models.get(name, [])] or [latest_export(SAVED_MODELS / name)]
        for path in paths:
            if path is None and args.train_missing:
                _log(f"[matrix] {name}: no export under {SAVED_MODELS / name}/: training the {args.recipe} recipe ...")
                run_dir = runs.train_task(task, _recipe(task, args.recipe, args.sets),
                                          folders[0] if name in datas else None, recipe_name=args.recipe, log=_log)
                path = runs.export_run(task, run_dir)
            if path is None:
                entries.append(matrix.Entry(task, None, folders[0], f"no export under {SAVED_MODELS / name}/ (run "
                                            f"`suite train {name} && suite export {name}`, or pass --train-missing)"))
                continue
            for data in folders:  # Each model on each of its task's datasets: generated beside real, say.
                if not has_data(data) and name in datas:
                    raise UserError(f"Expected a dataset folder for {name}. Received: {data}, which is empty or "
                                    "absent.")
                runs.ensure_sample(task, data, task.recipes["default"].seed, log=lambda line: _log(f"[matrix] {line}"))
                entries.append(matrix.Entry(task, path, data))
    command = "suite matrix " + shlex.join(sys.argv[2:] if sys.argv[1:2] == ["matrix"] else [])
    machine = f"{os.cpu_count()} CPU cores" + ("" if not os.environ.get("CUDA_VISIBLE_DEVICES") else " + GPU")
    matrix.run(entries, Path(args.out), args.limit, command.strip(), machine, TASKS, seed=args.seed)
    print(f"[matrix] wrote {Path(args.out) / 'matrix.md'} (and .csv, .json, .png, per-task model cards)")


def build_parser() -> argparse.ArgumentParser:
    from tasks import TASKS

    names = list(TASKS)
    formatter = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(
        prog="suite", description=__doc__.splitlines()[0], formatter_class=formatter,
        epilog=f"tasks: {', '.join(names)}\nexamples:\n" + "\n".join(
            f"  {EXAMPLES[c]}" for c in ("train", "evaluate", "export", "matrix", "recipe")))
    parser.add_argument("--version", action="version", version=_versions())
    parser.add_argument("--verbose", action="store_true",
                        help="show TensorFlow's start-up and C++ log lines (hidden by default)")

    def add(group: Any, command: str, help: str) -> argparse.ArgumentParser:
        leaf = command.split()[-1]
        p = group.add_parser(leaf, help=help, description=help, epilog=_epilog(command, names),
                             formatter_class=formatter)
        p.add_argument("--verbose", action="store_true", default=argparse.SUPPRESS,
                       help="show TensorFlow's start-up and C++ log lines")
        return p

    sub = parser.add_subparsers(dest="command", required=True)

    p = add(sub, "list", "every task, its data, model, metric and what exists")
    p.set_defaults(fn=cmd_list)

    data = sub.add_parser("data", help="sample datasets and real ones").add_subparsers(dest="action", required=True)
    p = add(data, "data make", "write the sample dataset in the real layout")
    p.add_argument("task")
    p.add_argument("--out", help="folder; defaults to datasets/TASK")
    p.add_argument("--size", type=int, help="number of examples; defaults to the task's")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--style", default="", help="a named look, where the generator has several (traffic_signs and "
                   "cell_microscopy: baseline, the sample before it was matched to real images; realistic; "
                   "speech_commands: digits, spoken digits in FSDD's layout; drawn_voices, half the speakers drawn "
                   "voices, not espeak-ng's shipped ones); defaults to the task's default sample")
    p.add_argument("--force", action="store_true", help="write into a folder that holds files")
    p.set_defaults(fn=cmd_data_make)

    p = add(data, "data fetch", "download a task's real dataset (checksums verified, safe extraction)")
    p.add_argument("task")
    p.add_argument("--source", help="one of the task's sources (`suite list`); defaults to its first")
    p.add_argument("--out", help="folder; defaults to datasets/TASK-SOURCE (then `--data SOURCE` finds it)")
    p.add_argument("--archive", action="append", default=[], metavar="FILE",
                   help="use a file you already have instead of downloading it (repeat for several)")
    p.add_argument("--cache", help="download cache; defaults to $SUITE_CACHE_DIR or ~/.cache/suite")
    p.add_argument("--mirror", metavar="URL", help="a base URL serving the same file names")
    p.add_argument("--force", action="store_true", help="replace an existing dataset folder")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(fn=cmd_data_fetch)

    p = add(sub, "train", "train a task")
    p.add_argument("task")
    p.add_argument("--data", help="dataset folder or a fetched source's name; defaults to datasets/TASK "
                   "(made if absent)")
    p.add_argument("--recipe", default="default")
    p.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--run-dir", help="defaults to runs/TASK/<timestamp>")
    p.add_argument("--resume", action="store_true", help="continue an interrupted run")
    p.add_argument("--mix", metavar="DIR|SOURCE", help="another dataset of the task (a generated sample, say) whose "
                   "training split joins --data's; validation and test stay --data's")
    p.add_argument("--mix-share", type=float, metavar="FRACTION", help="share of the training examples drawn from "
                   "--mix (the epoch keeps its length); defaults to all of both, once")
    p.add_argument("--strategy", default="auto", choices=["auto", "default", "mirrored", "multiworker"])
    p.add_argument("--approach", default="scratch", choices=["scratch", "transfer", "features"],
                   help="scratch (default); transfer: new head on a --from network, then fine-tune; "
                   "features: --from network features -> linear SVM")
    p.add_argument("--from", dest="source", metavar="RUN_DIR|SAVEDMODEL_DIR|MODEL.keras|WEIGHTS.h5|imagenet:NAME|preset:NAME",
                   help="the trained network transfer and features start from: a run, an export, a file, "
                   "imagenet:<KerasApplicationsName>[,alpha=A] (Keras downloads and caches the weights), or "
                   "preset:<keras-cv YOLOv8 backbone preset or folder> for the detection tasks")
    p.set_defaults(fn=cmd_train)

    p = add(sub, "evaluate", "metrics of a run or an export")
    p.add_argument("task")
    p.add_argument("--model", help="run dir or SavedModel version dir; defaults to the latest run")
    p.add_argument("--data", help="dataset folder or a fetched source's name; defaults to datasets/TASK")
    p.add_argument("--split", default="test", choices=["train", "val", "test", "all"])
    p.add_argument("--out", help="folder for plots and tables (without it: the metrics only)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(fn=cmd_evaluate)

    p = add(sub, "export", "write saved_models/TASK/<N>/")
    p.add_argument("task")
    p.add_argument("--run", help="defaults to the latest run")
    p.add_argument("--out", help="defaults to saved_models/TASK")
    p.set_defaults(fn=cmd_export)

    p = add(sub, "matrix", "every task's export under every condition: clean, corrupted, sliced")
    p.add_argument("--tasks", help="comma-separated tasks; defaults to every registered task")
    p.add_argument("--models", nargs="+", default=["latest"], metavar="latest|TASK=PATH",
                   help="exports to compare (several per task allowed); defaults to each task's latest")
    p.add_argument("--data", action="append", default=[], metavar="TASK=DIR",
                   help="dataset (a folder or a fetched source's name) whose test split is used; repeat it "
                   "for one task (its generated sample and real data, say) and every model of that task is "
                   "scored on each, in rows of their own; defaults to datasets/TASK (made if absent)")
    p.add_argument("--out", default="reports", help="folder for matrix.md/.csv/.json/.png and model cards")
    p.add_argument("--limit", type=int, default=300,
                   help="test examples per task, evenly spread (0: all). Defaults to 300")
    p.add_argument("--train-missing", action="store_true",
                   help="train and export --recipe for tasks without an export (else they are skipped)")
    p.add_argument("--recipe", default="default", help="the recipe --train-missing trains. Defaults to default")
    p.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE",
                   help="recipe overrides for --train-missing, as in `suite train`")
    p.add_argument("--seed", type=int, default=0, help="corruption noise seed")
    p.set_defaults(fn=cmd_matrix)

    p = add(sub, "predict", "readable predictions from the latest export")
    p.add_argument("task")
    p.add_argument("files", nargs="+")
    p.add_argument("--model", help="SavedModel version dir; defaults to the latest export")
    p.add_argument("--out", help="also write annotated copies here (tasks that draw: detection)")
    p.set_defaults(fn=cmd_predict)

    p = add(sub, "recipe", "every recipe value a task takes with --set: its type, value, default and reason")
    p.add_argument("task")
    p.add_argument("--recipe", default="default")
    p.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE",
                   help="show the recipe with these overrides applied (checked as `suite train` checks them)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(fn=cmd_recipe)
    return parser


# TensorFlow's start-up lines on hosts without a GPU: absl's notice, CUDA probing, CPU-feature advice.
NOISE = ("All log messages before absl::InitializeLog", "Could not find cuda drivers", "failed call to cuInit",
         "cpu_feature_guard", "To enable the following instructions", "oneDNN custom operations",
         "Unable to register cu", "computation placer already registered", "TF-TRT Warning")


def import_tensorflow(verbose: bool = False) -> None:
    """Imports TensorFlow and Keras and probes for GPUs with the process's stderr
    captured, then re-prints what is not start-up noise (`NOISE`): real errors
    still show. With `verbose`, nothing is captured and TensorFlow logs at INFO.

    A no-op when TensorFlow is already imported (the noise, if any, is out).
    """
    import os
    import tempfile

    if "tensorflow" in sys.modules:
        return
    if verbose:
        os.environ["TF_CPP_MIN_LOG_LEVEL"] = "0"
        import tensorflow as tf

        tf.config.list_physical_devices("GPU")
        return
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)  # C++ writes to file descriptor 2 directly; sys.stderr alone would miss it.
        try:
            import keras  # noqa: F401
            import tensorflow as tf

            tf.config.list_physical_devices("GPU")  # The CUDA probe, and its complaint, happen here.
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            kept = not_noise(captured.read().decode(errors="replace"))
            if kept:
                print("\n".join(kept), file=sys.stderr)


def not_noise(text: str) -> list[str]:
    """The lines of captured start-up output that are not `NOISE`."""
    return [ln for ln in text.splitlines() if ln.strip() and not any(n in ln for n in NOISE)]


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    import_tensorflow(verbose="--verbose" in argv)  # Before the registry: the tasks import TensorFlow.
    args = build_parser().parse_args(argv)
    try:
        args.fn(args)
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as e:
        from suite.trainer import Preempted

        if not isinstance(e, Preempted):
            raise
        print(f"stopped: {e}", file=sys.stderr)
        return 143  # 128 + SIGTERM, as a shell reports a process the signal ended.
    return 0


if __name__ == "__main__":
    sys.exit(main())
