"""Benchmarks; results go to docs/benchmarks.json and docs/benchmarks.md.

Run from the project root (about 12 minutes on 2 cores):

    make bench                                   # everything
    .venv/bin/python bench/run.py --only overhead,loader

Each comparison is measured side by side in one run and reported as a ratio;
nothing here is a pass/fail test.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
REALDATA = Path(os.environ.get("SUITE_REALDATA", ROOT.parent / "shared" / "realdata"))
WORK = ROOT / "bench" / "out"  # git-ignored scratch.
RESULTS = ROOT / "docs" / "benchmarks.json"


def suite(*args: str, cwd: Path) -> str:
    proc = subprocess.run([sys.executable, "-m", "suite.cli", *args], cwd=cwd, capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    if proc.returncode:
        raise RuntimeError(f"suite {' '.join(args)} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return proc.stdout


def bench_e2e() -> dict:
    """`suite train traffic_signs` from nothing (data made, trained, evaluated) plus export."""
    work = WORK / "e2e"
    if work.exists():
        import shutil

        shutil.rmtree(work)
    work.mkdir(parents=True)
    start = time.perf_counter()
    suite("train", "traffic_signs", cwd=work)
    suite("export", "traffic_signs", cwd=work)
    seconds = time.perf_counter() - start
    run = sorted((work / "runs" / "traffic_signs").iterdir())[-1]
    metrics = json.loads((run / "metrics.json").read_text())
    epochs = len((run / "history.csv").read_text().strip().splitlines()) - 1
    return {"seconds": seconds, "test_accuracy": metrics["accuracy"], "test_macro_f1": metrics["macro_f1"],
            "test_n": metrics["n"], "epochs": epochs, "run": str(run.relative_to(ROOT))}


def _sample(size: int = 8600) -> Path:
    data = WORK / "e2e" / "datasets" / "traffic_signs"
    if not data.exists():
        from tasks.traffic_signs import make_data

        data = WORK / "sample"
        if not data.exists():
            make_data(data, size, 0)
    return data


def bench_overhead() -> dict:
    """Wall time of `suite.trainer.train` vs a bare `model.fit` of the same model and data."""
    import keras

    from suite import trainer
    from tasks.traffic_signs import TASK

    recipe = dataclasses.replace(TASK.recipes["default"], epochs=3, early_stopping_patience=100)
    data = TASK.load_data(_sample(), recipe)

    def bare() -> float:
        start = time.perf_counter()
        keras.utils.set_random_seed(recipe.seed)
        train = TASK.dataset(data.splits["train"], recipe, True, recipe.batch_size)
        val = TASK.dataset(data.splits["val"], recipe, False, recipe.batch_size)
        model = TASK.build_model(recipe, data.class_names)
        model.compile(optimizer=keras.optimizers.AdamW(recipe.learning_rate, weight_decay=recipe.weight_decay),
                      **TASK.compile_args(recipe))
        model.fit(train, validation_data=val, epochs=recipe.epochs, verbose=0)
        return time.perf_counter() - start

    def ours() -> float:
        start = time.perf_counter()
        trainer.train(TASK, recipe, data, Path(tempfile.mkdtemp(dir=WORK)), verbose=0)
        return time.perf_counter() - start

    times = {"bare": [], "suite": []}
    for _ in range(2):  # Interleaved, so drift hits both alike.
        times["bare"].append(bare())
        times["suite"].append(ours())
    best = {k: min(v) for k, v in times.items()}
    return {"epochs": recipe.epochs, "bare_seconds": best["bare"], "suite_seconds": best["suite"],
            "ratio": best["suite"] / best["bare"], "all": times}


def bench_loader() -> dict:
    """Training steps/s through the real loader (PPM files, warm cache) vs in-memory tensors."""
    import keras
    import numpy as np
    import tensorflow as tf

    from tasks.traffic_signs import TASK, augmenter

    recipe = TASK.recipes["default"]
    data = TASK.load_data(_sample(), recipe)
    examples = data.splits["train"]
    loader = TASK.dataset(examples, recipe, True, recipe.batch_size)
    x = np.concatenate([b for b, _ in TASK.dataset(examples, recipe, False, 512)])
    y = examples.labels
    layers = augmenter(recipe)  # Same augmentation, applied the same way, from memory.
    memory = (tf.data.Dataset.from_tensor_slices((x, y)).shuffle(len(y), seed=recipe.seed)
              .batch(recipe.batch_size).map(lambda a, b: (layers(a, training=True), b), num_parallel_calls=tf.data.AUTOTUNE)
              .prefetch(tf.data.AUTOTUNE))
    steps = int(np.ceil(len(y) / recipe.batch_size))
    model = TASK.build_model(recipe, data.class_names)
    model.compile(optimizer="adam", **TASK.compile_args(recipe))
    cold_start = time.perf_counter()
    model.fit(loader, epochs=1, verbose=0)  # Fills the cache (decode once).
    cold = steps / (time.perf_counter() - cold_start)
    model.fit(memory, epochs=1, verbose=0)  # Warm-up for the in-memory path.
    rates = {"loader": [], "memory": []}
    for _ in range(2):
        for name, ds in (("loader", loader), ("memory", memory)):
            start = time.perf_counter()
            model.fit(ds, epochs=2, verbose=0)
            rates[name].append(2 * steps / (time.perf_counter() - start))
    best = {k: max(v) for k, v in rates.items()}
    return {"loader_steps_per_s": best["loader"], "memory_steps_per_s": best["memory"],
            "ratio": best["loader"] / best["memory"], "cold_first_epoch_steps_per_s": cold,
            "steps_per_epoch": steps, "all": rates}


def bench_real() -> dict:
    """Accuracy on the shared real GTSRB samples: (a) generated-only model, (b) trained on real."""
    real = REALDATA / "traffic_signs" / "GTSRB"
    if not real.exists():
        return {"skipped": f"{real} absent"}
    work = WORK / "e2e"
    runs = sorted((work / "runs" / "traffic_signs").iterdir()) if (work / "runs").exists() else []
    if not runs:
        raise RuntimeError("run the e2e benchmark first: it trains the generated-data model")
    generated = json.loads(suite("evaluate", "traffic_signs", "--model", str(runs[-1]), "--data", str(real),
                                 "--split", "all", "--json", cwd=work).strip().splitlines()[-1])
    own = WORK / "real"
    if own.exists():
        import shutil

        shutil.rmtree(own)
    start = time.perf_counter()
    suite("train", "traffic_signs", "--data", str(real), "--run-dir", str(own), cwd=work)
    seconds = time.perf_counter() - start
    trained = json.loads((own / "metrics.json").read_text())
    config = json.loads((own / "config.json").read_text())
    from tasks.traffic_signs import RECIPES, load_data

    data = load_data(real, RECIPES["default"])
    return {
        "generated_only_accuracy": generated["accuracy"], "generated_only_macro_f1": generated["macro_f1"],
        "generated_only_n": generated["n"],
        "real_trained_accuracy": trained["accuracy"], "real_trained_macro_f1": trained["macro_f1"],
        "real_trained_test_n": trained["n"], "real_train_n": len(data.splits["train"]),
        "real_val_n": len(data.splits["val"]), "real_test_classes": len(trained["per_class_accuracy"]),
        "real_train_seconds": seconds, "fingerprint": config["data_fingerprint"],
    }


BENCHES = {"e2e": bench_e2e, "overhead": bench_overhead, "loader": bench_loader, "real": bench_real}


def render(results: dict) -> str:
    from suite.config import library_versions

    v = results.get("versions", library_versions())
    lines = [
        "# Benchmarks",
        "",
        "Written by `bench/run.py` (`make bench`); comparisons are measured side by side in one run.",
        f"Machine: {results.get('machine', '?')}; tensorflow {v.get('tensorflow')}, keras {v.get('keras')}, "
        f"python {v.get('python')}. Raw numbers: `docs/benchmarks.json`.",
        "",
        "## traffic_signs",
        "",
        "| what | target | measured |",
        "|---|---|---|",
    ]
    e = results.get("e2e")
    if e:
        lines.append(f"| default recipe end to end (`suite train traffic_signs` from no data: generate 10,320 images, "
                     f"train {e['epochs']} epochs, evaluate; then `suite export`) | <= 600 s | {e['seconds']:.0f} s |")
        lines.append(f"| test accuracy, generated test split ({e['test_n']} images) | >= 98% | "
                     f"{100 * e['test_accuracy']:.2f}% (macro-F1 {e['test_macro_f1']:.4f}) |")
    o = results.get("overhead")
    if o:
        lines.append(f"| trainer overhead: `suite.trainer.train` vs bare `model.fit` (same model, data, {o['epochs']} "
                     f"epochs, best of 2 interleaved) | <= 1.05 | {o['ratio']:.3f} ({o['suite_seconds']:.1f} s vs "
                     f"{o['bare_seconds']:.1f} s) |")
    lo = results.get("loader")
    if lo:
        lines.append(f"| training steps/s through the real loader (PPM files, cache warm) vs from in-memory tensors "
                     f"| >= 0.90 | {lo['ratio']:.3f} ({lo['loader_steps_per_s']:.1f} vs {lo['memory_steps_per_s']:.1f} "
                     f"steps/s; first, cache-filling epoch {lo['cold_first_epoch_steps_per_s']:.1f} steps/s) |")
    r = results.get("real")
    if r and "skipped" not in r:
        lines += [
            "",
            "### Real GTSRB samples (`../shared/realdata/traffic_signs`, 990 images, 43 classes, whole tracks)",
            "",
            "| model | tested on | accuracy | macro-F1 |",
            "|---|---|---|---|",
            f"| (a) default recipe on generated data only | all {r['generated_only_n']} real images | "
            f"{100 * r['generated_only_accuracy']:.1f}% | {r['generated_only_macro_f1']:.3f} |",
            f"| (b) default recipe on {r['real_train_n']} real images (+{r['real_val_n']} val), split by track | "
            f"{r['real_trained_test_n']} held-out real images of unseen tracks ({r['real_test_classes']} classes) | "
            f"{100 * r['real_trained_accuracy']:.1f}% | {r['real_trained_macro_f1']:.3f} |",
        ]
    elif r:
        lines += ["", f"Real GTSRB samples: skipped ({r['skipped']})."]
    notes = results.get("notes", [])
    if notes:
        lines += ["", "## Notes", ""] + [f"- {n}" for n in notes]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", help=f"comma-separated subset of {','.join(BENCHES)}")
    parser.add_argument("--render", action="store_true", help="only rewrite the markdown from the JSON")
    args = parser.parse_args()
    from suite.config import library_versions

    WORK.mkdir(parents=True, exist_ok=True)
    results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    if not args.render:
        names = args.only.split(",") if args.only else list(BENCHES)
        for name in names:
            print(f"bench {name} ...", flush=True)
            results[name] = BENCHES[name]()
            print(json.dumps(results[name], indent=1), flush=True)
        results["versions"] = library_versions()
        results["machine"] = f"{os.cpu_count()} CPU cores, no GPU" if not os.environ.get("CUDA_VISIBLE_DEVICES") else "GPU"
        RESULTS.parent.mkdir(exist_ok=True)
        RESULTS.write_text(json.dumps(results, indent=1, default=str) + "\n")
    (ROOT / "docs" / "benchmarks.md").write_text(render(results))
    print(render(results))


if __name__ == "__main__":
    main()
