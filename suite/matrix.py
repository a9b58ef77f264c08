"""The evaluation matrix: each task's shipped SavedModel under every condition.

Rows are (task, model); columns are conditions: the clean test split, each
corruption the task declares at severities 1-3, and each slice the task
declares. Cells are the task's primary metric; every metric goes to the JSON.

Corruptions are applied to what the export's own pixel or waveform endpoint
receives, by a thin wrapper around the loaded SavedModel that the task's
`evaluate` is handed instead of it, so this module knows no task by name and
evaluates exactly what is shipped. The task registry is never imported here:
the CLI hands the tasks in.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import math
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from suite import corruptions
from suite.config import recipe_from_dict, write_json
from suite.data import generated_by, progress, take
from suite.errors import UserError
from suite.export import load_export

if TYPE_CHECKING:
    from suite.config import TrainRecipe
    from suite.task import Task

SLICE_MIN = 5  # Slices with fewer examples are reported with their n but left out of "worst slice".


@dataclasses.dataclass
class Entry:
    """One row: a task, the export to evaluate and the data whose test split is used."""

    task: Task[Any, Any]
    model: Path | None
    data: Path
    skipped: str = ""  # Why this row has no numbers.


class Corrupted:
    """A loaded SavedModel whose `serve_*` endpoints corrupt their pixel or
    waveform input first; it records which endpoint was used and one input."""

    def __init__(self, loaded: Any, corruption: str | None = None, severity: int = 0, seed: int = 0):
        self._loaded = loaded
        self._fn = corruptions.ALL[corruption] if corruption else None
        self._severity = severity
        self._rng = np.random.default_rng(seed)
        self.used: dict[str, np.ndarray] = {}  # endpoint name -> its first input
        self.corrupted_calls = 0

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._loaded, name)
        if not name.startswith("serve") or not callable(attr):
            return attr

        def call(x, *args, **kwargs):
            x = np.asarray(x)
            self.used.setdefault(name, x)
            kind = "image" if x.dtype == np.uint8 and x.shape[-1:] == (3,) else \
                "audio" if x.dtype == np.float32 and x.ndim == 2 else None
            if self._fn is not None and kind == self._fn.kind:
                x = self._fn(x, self._severity, self._rng)
                self.corrupted_calls += 1
            return attr(x, *args, **kwargs)

        return call


def _limited(examples: Any, limit: int) -> Any:
    """At most `limit` examples, evenly spread over the split (deterministic)."""
    n = len(examples)
    if not limit or n <= limit:
        return examples
    return take(examples, np.linspace(0, n - 1, limit).round().astype(int).tolist())


def _numbers(metrics: dict) -> dict:
    """Metrics as JSON-safe values (NaN -> None)."""
    return json.loads(json.dumps(metrics, default=float).replace("NaN", "null"))


def evaluate_condition(task: Task[Any, Any], loaded: Any, examples: Any, recipe: TrainRecipe, class_names: list[str],
                       corruption: str | None, severity: int, out_dir: Path | None, seed: int = 0
                       ) -> tuple[dict, Corrupted]:
    """The task's own `evaluate` on the export, with one corruption applied (plots and tables in
    `out_dir`, none when it is None).

    Raises:
        UserError: when the corruption never reached the model (the task's
            evaluate did not go through a pixel or waveform endpoint of the
            corruption's kind), so a cell is never silently clean.
    """
    proxy = Corrupted(loaded, corruption, severity, seed)
    metrics = task.evaluate(proxy, examples, recipe, class_names, out_dir)
    if corruption and severity and not proxy.corrupted_calls:
        kind = corruptions.ALL[corruption].kind
        raise UserError(f"Expected task '{task.name}' to evaluate through an {kind} endpoint so '{corruption}' "
                        f"applies. Received: calls to {sorted(proxy.used) or 'no endpoint'} with other inputs.")
    return metrics, proxy


def _speed(loaded: Any, used: dict[str, np.ndarray], repeats: int = 32, budget_s: float = 3.0) -> dict:
    """Batch-1 latency (p50, p95) and batch-32 throughput of the endpoint evaluate used.

    `repeats` (32) timed calls of one, or as many as fit in `budget_s` seconds (at least
    8): a segmenter taking 0.4 s per image would otherwise spend 13 s of every matrix
    row here. The count is reported (`latency_calls`). An endpoint that takes one image
    per call has no batch: its throughput is that of the timed calls of one."""
    if not used:
        return {}
    name, x = next(iter(used.items()))
    fn = getattr(loaded, name)
    single = x.dtype == np.uint8 and x.ndim == 3  # An endpoint taking one image per call.
    one = x if single else x[:1]
    for _ in range(3):
        fn(one)
    times: list[float] = []
    while len(times) < repeats and (len(times) < 8 or sum(times) < budget_s):
        t = time.perf_counter()
        fn(one)
        times.append(time.perf_counter() - t)
    if single:
        seconds = 32 * float(np.mean(times))
    else:
        batch = np.repeat(one, 32, axis=0)
        fn(batch)
        start = time.perf_counter()
        for _ in range(3):
            fn(batch)
        seconds = (time.perf_counter() - start) / 3
    return {"endpoint": name, "latency_calls": len(times), "latency_p50_ms": 1000 * float(np.median(times)),
            "latency_p95_ms": 1000 * float(np.percentile(times, 95)),
            "throughput_per_s_batch32": 32 / seconds, "batch32": "32 calls of one" if single else "one batch of 32"}


def _size_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in Path(path).rglob("*") if p.is_file())


def run_entry(entry: Entry, report_dir: Path, limit: int, seed: int = 0, log: Callable = print) -> dict:
    """Every condition of one row (the clean one's plots and tables go to
    `report_dir`); returns the row for `matrix.json`."""
    task, model = entry.task, entry.model
    if model is None:
        raise ValueError(f"Expected an entry with an export. Received: {task.name}, skipped ({entry.skipped}).")
    loaded, meta = load_export(model, task.name)
    recipe = recipe_from_dict(type(task.recipes["default"]), meta["recipe"])
    data = task.load_data(entry.data, recipe)
    class_names = meta.get("class_names", data.class_names)
    test = _limited(data.splits["test"], limit)
    if not len(test):
        raise UserError(f"Expected examples in the test split of {entry.data}. Received: none.")
    task_dir = Path(report_dir)
    cells: dict[str, dict] = {}

    def cell(name: str, metrics: dict, **facts) -> None:
        value = metrics.get(task.primary_metric, float("nan"))
        cells[name] = {"value": None if value is None or math.isnan(value) else float(value),
                       "n": metrics.get("n"), **facts, "metrics": _numbers(metrics)}

    start = time.perf_counter()
    declared = task.slices(test, recipe, class_names) if task.slices else {}  # The export's own recipe.
    n_conditions = 1 + len(task.corruptions) * len(corruptions.SEVERITIES) + sum(
        len(set(np.asarray(v).tolist())) for v in declared.values())
    bar = progress(total=n_conditions, desc=f"[matrix] {task.name}", unit="condition")
    metrics, proxy = evaluate_condition(task, loaded, test, recipe, class_names, None, 0, task_dir)
    cell("clean", metrics, kind="clean")
    bar.update()
    # The other conditions write no plots or tables (out_dir None): a classifier's plots cost about a second
    # per condition, more than its evaluation on a few examples.
    for name in task.corruptions:
        for severity in corruptions.SEVERITIES:
            metrics, _ = evaluate_condition(task, loaded, test, recipe, class_names, name, severity, None, seed)
            cell(f"{name}@{severity}", metrics, kind="corruption", corruption=name, severity=severity)
            bar.update()
    for family, listed in declared.items():
        values = np.asarray(listed)
        for value in sorted(set(values.tolist())):
            index = np.flatnonzero(values == value).tolist()
            metrics, _ = evaluate_condition(task, loaded, take(test, index), recipe, class_names, None, 0, None)
            cell(f"{family}={value}", metrics, kind="slice", family=family, slice=value)
            bar.update()
    bar.close()
    seconds = time.perf_counter() - start
    log(f"[matrix] {task.name}: {len(cells)} conditions on {len(test)} test examples in {seconds:.0f} s")
    variables = getattr(loaded, "variables", [])
    made_by = generated_by(entry.data)
    return {
        "task": task.name, "model": str(entry.model), "data": str(entry.data), "data_layout": data.layout,
        # Generated or real, so a model's score on its own sample is never read as a score on real data.
        "data_kind": "generated" if made_by else "real", "generated_by": made_by,
        "primary_metric": task.primary_metric, "higher_is_better": task.higher_is_better,
        "test_examples": len(test), "test_split_size": len(data.splits["test"]),
        "skipped_files": len(data.report.skipped), "trained": meta.get("created", ""),
        "params": int(sum(int(np.prod(v.shape)) for v in variables)),
        "size_mb": _size_bytes(model) / 2**20, **_speed(loaded, proxy.used),
        "seconds": seconds, "report_dir": str(task_dir), "cells": cells,
    }


# --- Reports ---------------------------------------------------------------------


def summary_columns(rows: list[dict]) -> list[str]:
    """`clean`, every corruption (mean over severities) in first-seen order, `worst slice`."""
    names = []
    for row in rows:
        for c in row.get("cells", {}).values():
            if c["kind"] == "corruption" and c["corruption"] not in names:
                names.append(c["corruption"])
    return ["clean", *names, "worst slice"]


def summary(row: dict) -> dict[str, float | None]:
    """One row of the summary table: the primary metric per summary column."""
    cells = row.get("cells", {})
    out: dict[str, float | None] = {"clean": cells.get("clean", {}).get("value")}
    by_name: dict[str, list] = {}
    for c in cells.values():
        if c["kind"] == "corruption":
            by_name.setdefault(c["corruption"], []).append(c["value"])
    for name, values in by_name.items():
        values = [v for v in values if v is not None]
        out[name] = float(np.mean(values)) if values else None
    slices = [c["value"] for c in cells.values()
              if c["kind"] == "slice" and c["value"] is not None and (c["n"] or 0) >= SLICE_MIN]
    if slices:
        out["worst slice"] = min(slices) if row["higher_is_better"] else max(slices)
    return out


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.0f}" if abs(value) >= 100 else f"{value:.3f}"
    return "—" if value is None else str(value)


def _row_name(row: dict) -> str:
    if not row.get("model"):
        return row["task"]
    name = f"{row['task']} ({Path(row['model']).parent.name}/{Path(row['model']).name})"
    if "data_kind" not in row:
        return name
    return f"{name} on {row['data_kind']} `{Path(row['data']).name}`"


def _provenance(row: dict) -> str:
    """Where a row's data came from, in words: the generator and its values, or real data."""
    return f"generated by {row['generated_by']}" if row.get("generated_by") else "real data, not made by the suite"


def write_reports(rows: list[dict], out_dir: Path, command: str, machine: str, tasks: dict) -> None:
    """`matrix.json`, `matrix.csv`, `matrix.md`, `matrix.png` and `<task>/model_card.md`."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    columns = summary_columns(rows)
    write_json(out_dir / "matrix.json", {"command": command, "machine": machine, "columns": columns,
                                         "rows": rows})
    with (out_dir / "matrix.csv").open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["task", "model", "condition", "kind", "corruption", "severity", "slice_family",
                         "slice_value", "metric", "value", "n"])
        for row in rows:
            for name, c in row.get("cells", {}).items():
                writer.writerow([row["task"], row.get("model", ""), name, c["kind"], c.get("corruption", ""),
                                 c.get("severity", ""), c.get("family", ""), c.get("slice", ""),
                                 row["primary_metric"], "" if c["value"] is None else f"{c['value']:.6f}", c["n"]])
    done = [r for r in rows if "cells" in r]
    lines = [
        "# Evaluation matrix", "",
        f"`{command}` on {machine}. Cells are each task's primary metric on its test split "
        "(corruptions: mean over severities 1-3; worst slice: the lowest slice with at least "
        f"{SLICE_MIN} examples, or the highest for lower-is-better metrics); `—` means not applicable. "
        "Every metric of every cell is in `matrix.json`.", "",
        "| task (model) | metric | " + " | ".join(columns) + " | params | size MB | p50 ms | p95 ms | per s (32) |",
        "|---|---|" + "---|" * len(columns) + "---|---|---|---|---|",
    ]
    for row in done:
        s = summary(row)
        lines.append(f"| {_row_name(row)} | {row['primary_metric']} | " + " | ".join(_fmt(s.get(c)) for c in columns)
                     + f" | {row['params']:,} | {row['size_mb']:.1f} | {_fmt(row.get('latency_p50_ms'))} | "
                     f"{_fmt(row.get('latency_p95_ms'))} | {_fmt(row.get('throughput_per_s_batch32'))} |")
    for row in rows:
        if "cells" not in row:
            lines.append(f"| {row['task']} | skipped: {row['skipped']} |" + " |" * (len(columns) + 5))
    for row in done:
        lines += ["", f"## {_row_name(row)}", "",
                  f"Model `{row['model']}`; data `{row['data']}` ({row['data_layout']}; {_provenance(row)}); "
                  f"{row['test_examples']} of {row['test_split_size']} test examples; speed measured on "
                  f"`{row.get('endpoint', '?')}` ({row.get('batch32', '')}); {row['seconds']:.0f} s.", "",
                  "| condition | " + row["primary_metric"] + " | n |", "|---|---|---|"]
        lines += [f"| {name} | {_fmt(c['value'])} | {c['n']} |" for name, c in row["cells"].items()]
    (out_dir / "matrix.md").write_text("\n".join(lines) + "\n")
    _heatmap(done, columns, out_dir / "matrix.png")
    for row in done:
        Path(row["report_dir"]).mkdir(parents=True, exist_ok=True)
        (Path(row["report_dir"]) / "model_card.md").write_text(model_card(row, tasks[row["task"]]))


def _heatmap(rows: list[dict], columns: list[str], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    summaries = [summary(r) for r in rows]
    values = np.array([[np.nan if s.get(c) is None else s[c] for c in columns] for s in summaries]
                      if rows else np.zeros((0, len(columns))), float)
    clean = values[:, :1] if len(values) else values
    relative = np.divide(values, clean, out=np.full_like(values, np.nan), where=clean > 0)
    fig, ax = plt.subplots(figsize=(1.2 + 0.9 * len(columns), 1.2 + 0.6 * max(len(rows), 1)))
    ax.imshow(relative, cmap="RdYlGn", vmin=0, vmax=1.1, aspect="auto")
    for i in range(values.shape[0]):
        for j in range(values.shape[1]):
            if not np.isnan(values[i, j]):
                ax.text(j, i, f"{values[i, j]:.2f}", ha="center", va="center", fontsize=7)
    ax.set_xticks(range(len(columns)), columns, rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(len(rows)), [f"{r['task']}, {r.get('data_kind', '?')}\n({r['primary_metric']})" for r in rows],
                  fontsize=8)
    ax.set_title("Primary metric by condition (colour: share of clean)", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def model_card(row: dict, task: Task[Any, Any]) -> str:
    """Intended use, data and its coverage, metrics by condition and slice, known limits."""
    cells = row["cells"]
    metric, better = row["primary_metric"], row["higher_is_better"]
    clean = cells["clean"]["value"]
    lines = [f"# Model card: {task.name}", "", "## Intended use", "", task.summary, "",
             f"Model: {task.model_summary}; {row['params']:,} parameters, {row['size_mb']:.1f} MB SavedModel "
             f"(`{row['model']}`). CPU latency at batch 1: p50 {_fmt(row.get('latency_p50_ms'))} ms, "
             f"p95 {_fmt(row.get('latency_p95_ms'))} ms.", "",
             "## Data and its coverage", "",
             f"Evaluated on `{row['data']}` ({row['data_layout']}; {_provenance(row)}), {row['test_examples']} "
             "test examples. "
             f"Real format: {task.data_format}.", ""]
    slices = [(n, c) for n, c in cells.items() if c["kind"] == "slice"]
    if slices:
        lines += ["| slice | test examples |", "|---|---|"] + [f"| {n} | {c['n']} |" for n, c in slices] + [""]
    lines += ["## Metrics", "", f"Primary metric `{metric}` ({'higher' if better else 'lower'} is better): "
              f"clean {_fmt(clean)}.", "", "| condition | value | n |", "|---|---|---|"]
    lines += [f"| {n} | {_fmt(c['value'])} | {c['n']} |" for n, c in cells.items() if n != "clean"]
    lines += ["", "## Known limits", ""] + [f"- {text}" for text in task.known_limits]
    if clean is not None:
        drops = [(n, c["value"]) for n, c in cells.items() if c["kind"] == "corruption" and c["value"] is not None]
        if drops:
            name, worst = min(drops, key=lambda d: d[1] if better else -d[1])
            lines.append(f"- Measured: the largest loss under corruption is `{name}`: {metric} {_fmt(worst)} "
                         f"against {_fmt(clean)} clean.")
        sized = [(n, c["value"], c["n"]) for n, c in slices if c["value"] is not None and (c["n"] or 0) >= SLICE_MIN]
        if len(sized) >= 2:
            lo = min(sized, key=lambda d: d[1] if better else -d[1])
            hi = max(sized, key=lambda d: d[1] if better else -d[1])
            lines.append(f"- Measured: the slice gap (possible bias) is {_fmt(abs(hi[1] - lo[1]))} in {metric}: "
                         f"`{lo[0]}` {_fmt(lo[1])} (n={lo[2]}) against `{hi[0]}` {_fmt(hi[1])} (n={hi[2]}).")
        small = [n for n, c in slices if (c["n"] or 0) < SLICE_MIN]
        if small:
            lines.append(f"- Too few test examples to judge: {', '.join(f'`{n}`' for n in small)}.")
    plots = sorted(p.name for p in Path(row["report_dir"]).glob("*.png"))
    if plots:
        lines += ["", "## Plots", ""] + [f"- `{p}`" for p in plots]
    return "\n".join(lines) + "\n"


def run(entries: Sequence[Entry], out_dir: Path, limit: int, command: str, machine: str, tasks: dict,
        seed: int = 0, log: Callable = print) -> list[dict]:
    """Evaluates every entry (skipped ones keep their reason) and writes the reports."""
    rows = []
    per_task = {e.task.name: sum(f.task.name == e.task.name for f in entries) for e in entries}
    seen: dict[str, int] = {}
    for i, entry in enumerate(entries, 1):
        name = entry.task.name
        seen[name] = seen.get(name, 0) + 1
        log(f"[matrix] {i}/{len(entries)} {name}: {entry.model or 'no export'}")
        if entry.skipped:
            log(f"[matrix] {name}: skipped ({entry.skipped})")
            rows.append({"task": name, "skipped": entry.skipped})
            continue
        report_dir = Path(out_dir) / name / (str(seen[name]) if per_task[name] > 1 else "")
        rows.append(run_entry(entry, report_dir, limit, seed, log))
    write_reports(rows, out_dir, command, machine, tasks)
    return rows
