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

import numpy as np

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


def _from_nothing(task: str) -> tuple[dict, Path]:
    """Times `suite train TASK` in an empty folder (data made first) plus `suite export`."""
    import shutil

    work = WORK / task
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    start = time.perf_counter()
    suite("train", task, cwd=work)
    suite("export", task, cwd=work)
    seconds = time.perf_counter() - start
    run = sorted((work / "runs" / task).iterdir())[-1]
    metrics = json.loads((run / "metrics.json").read_text())
    epochs = len((run / "history.csv").read_text().strip().splitlines()) - 1
    return {"seconds": seconds, "test_accuracy": metrics["accuracy"], "test_macro_f1": metrics["macro_f1"],
            "test_n": metrics["n"], "epochs": epochs, "run": str(run.relative_to(ROOT))}, work


def bench_e2e() -> dict:
    """`suite train traffic_signs` from nothing (data made, trained, evaluated) plus export."""
    return _from_nothing("traffic_signs")[0]


def _sample(size: int = 8600) -> Path:
    data = WORK / "traffic_signs" / "datasets" / "traffic_signs"
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

    recipe = dataclasses.replace(TASK.recipes["default"], epochs=5, early_stopping_patience=100)
    data = TASK.load_data(_sample(), recipe)

    def bare() -> float:
        start = time.perf_counter()
        keras.utils.set_random_seed(recipe.seed)
        train = TASK.dataset(data.splits["train"], recipe, True, recipe.batch_size, data.class_names)
        val = TASK.dataset(data.splits["val"], recipe, False, recipe.batch_size, data.class_names)
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
    for _ in range(3):  # Interleaved, so drift hits both alike.
        times["bare"].append(bare())
        times["suite"].append(ours())
    best = {k: min(v) for k, v in times.items()}
    return {"epochs": recipe.epochs, "bare_seconds": best["bare"], "suite_seconds": best["suite"],
            "ratio": best["suite"] / best["bare"], "all": times}


def bench_loader() -> dict:
    """Training steps/s through the real loader (PPM files, warm cache) vs in-memory tensors."""
    import tensorflow as tf

    from tasks.traffic_signs import TASK, augmenter

    recipe = TASK.recipes["default"]
    data = TASK.load_data(_sample(), recipe)
    examples = data.splits["train"]
    loader = TASK.dataset(examples, recipe, True, recipe.batch_size, data.class_names)
    x = np.concatenate([b for b, _ in TASK.dataset(examples, recipe, False, 512, data.class_names)])
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
    work = WORK / "traffic_signs"
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


def _macs(model) -> int:
    """Multiply-accumulates of one example through the conv and dense layers."""
    import keras

    total = 0
    for layer in model.layers:
        if isinstance(layer, (keras.layers.Conv2D, keras.layers.DepthwiseConv2D, keras.layers.Dense)):
            out = layer.output.shape
            kernel = layer.kernel.shape  # Conv2D: kh, kw, in, out; depthwise: kh, kw, in, mult; dense: in, out.
            spatial = int(np.prod(out[1:-1])) if len(out) > 2 else 1
            total += spatial * int(np.prod(kernel))
    return total


def bench_speech() -> dict:
    """speech_commands default recipe end to end, model size, export latency, real clips."""
    import keras
    import tensorflow as tf

    import tasks.speech_commands  # noqa: F401  Registers the custom layers best.keras uses.

    result, work = _from_nothing("speech_commands")
    run = ROOT / result["run"]
    model = keras.saving.load_model(run / "best.keras")
    export = work / "saved_models" / "speech_commands" / "1"
    loaded = tf.saved_model.load(str(export))
    wave = tf.random.uniform([1, 16000], -0.1, 0.1)
    wav = tf.constant([next((work / "datasets" / "speech_commands" / "yes").glob("*.wav")).read_bytes()])
    latency = {}
    for name, call in (("waveform", lambda: loaded.serve_waveform(wave)), ("wav_bytes", lambda: loaded.serve_wav(wav))):
        for _ in range(20):
            call()
        times = []
        for _ in range(200):
            t = time.perf_counter()
            call()["probabilities"].numpy()
            times.append(time.perf_counter() - t)
        latency[name] = {"p50_ms": 1000 * float(np.median(times)), "p95_ms": 1000 * float(np.percentile(times, 95))}
    frames = 101
    result.update({
        "params": int(model.count_params()), "macs_network": _macs(model),
        "macs_frontend": int(frames * (512 // 2 * 9 + 257 * 40)),  # FFT (n/2 log2 n) + mel matrix.
        "latency_batch1": latency,
        "export_mb": sum(f.stat().st_size for f in export.rglob("*") if f.is_file()) / 1e6,
    })
    real = REALDATA / "speech_commands" / "speech_commands_v0.01"
    if real.exists():
        out = json.loads(suite("evaluate", "speech_commands", "--model", str(export), "--data", str(real),
                               "--split", "all", "--json", cwd=work).strip().splitlines()[-1])
        per_class = out["per_class_accuracy"]
        result["real_sc"] = {"accuracy": out["accuracy"], "n": out["n"], "macro_f1": out["macro_f1"],
                             "keyword_accuracy": float(np.mean([v for k, v in per_class.items() if not k.startswith("_")])),
                             "unknown_accuracy": per_class.get("_unknown_")}
    return result


def bench_digits() -> dict:
    """Spoken digits: leave one speaker out, train the default recipe on the other three."""
    root = REALDATA / "spoken_digits"
    if not root.exists():
        return {"skipped": f"{root} absent"}
    folds = {}
    for speaker in ("jackson", "nicolas", "theo", "yweweler"):
        run = WORK / "digits" / speaker
        if run.exists():
            import shutil

            shutil.rmtree(run)
        start = time.perf_counter()
        suite("train", "speech_commands", "--data", str(root), "--run-dir", str(run),
              "--set", f"test_speakers={speaker}", cwd=WORK)
        m = json.loads((run / "metrics.json").read_text())
        folds[speaker] = {"accuracy": m["accuracy"], "n": m["n"], "seconds": time.perf_counter() - start}
    return {"folds": folds, "mean_accuracy": float(np.mean([f["accuracy"] for f in folds.values()]))}


BENCHES = {"e2e": bench_e2e, "overhead": bench_overhead, "loader": bench_loader, "real": bench_real,
           "speech": bench_speech, "digits": bench_digits}


def _span(values: list) -> str:
    return f"{min(values):.1f}-{max(values):.1f}"


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
                     f"epochs, best of 3 interleaved) | <= 1.05 | {o['ratio']:.3f} ({o['suite_seconds']:.1f} s vs "
                     f"{o['bare_seconds']:.1f} s; all runs: suite {_span(o['all']['suite'])} s, "
                     f"bare {_span(o['all']['bare'])} s) |")
    lo = results.get("loader")
    if lo:
        lines.append(f"| training steps/s through the real loader (PPM files, cache warm) vs from in-memory tensors "
                     f"| >= 0.90 | {lo['ratio']:.3f} ({lo['loader_steps_per_s']:.1f} vs {lo['memory_steps_per_s']:.1f} "
                     f"steps/s, best of 2; all runs: loader {_span(lo['all']['loader'])}, memory "
                     f"{_span(lo['all']['memory'])}; first, cache-filling epoch {lo['cold_first_epoch_steps_per_s']:.1f} "
                     f"steps/s) |")
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
    sp = results.get("speech")
    if sp:
        lat = sp["latency_batch1"]
        lines += [
            "",
            "## speech_commands",
            "",
            "| what | target | measured |",
            "|---|---|---|",
            f"| default recipe end to end (`suite train speech_commands` from no data: synthesize ~5,000 clips, "
            f"train {sp['epochs']} epochs, evaluate; then `suite export`) | <= 600 s | {sp['seconds']:.0f} s |",
            f"| test accuracy, generated test split ({sp['test_n']} clips, 12 classes) | >= 97% | "
            f"{100 * sp['test_accuracy']:.2f}% (macro-F1 {sp['test_macro_f1']:.4f}) |",
            f"| model size | tens of thousands of params | {sp['params']:,} params; {sp['macs_network'] / 1e6:.1f} M MACs "
            f"(network) + ~{sp['macs_frontend'] / 1e6:.1f} M (log-mel front end) per 1 s clip; export {sp['export_mb']:.1f} MB |",
            f"| SavedModel latency, batch 1, CPU | (reported) | waveform p50 {lat['waveform']['p50_ms']:.2f} ms "
            f"(p95 {lat['waveform']['p95_ms']:.2f}); WAV bytes p50 {lat['wav_bytes']['p50_ms']:.2f} ms "
            f"(p95 {lat['wav_bytes']['p95_ms']:.2f}) |",
        ]
        if "real_sc" in sp:
            r = sp["real_sc"]
            lines.append(f"| real Speech Commands clips (`../shared/realdata/speech_commands`, {r['n']} clips of 30 words; "
                         f"the 20 non-keyword words count as `_unknown_`), model trained on synthesized speech only | "
                         f"(reported) | {100 * r['accuracy']:.1f}% overall; mean per-keyword accuracy "
                         f"{100 * r['keyword_accuracy']:.1f}%, `_unknown_` {100 * (r['unknown_accuracy'] or 0):.1f}% |")
    dg = results.get("digits")
    if dg and "skipped" not in dg:
        folds = ", ".join(f"{k} {100 * v['accuracy']:.1f}%" for k, v in dg["folds"].items())
        lines.append(f"| spoken digits (8 kHz, 4 speakers), default recipe, leave one speaker out | (reported) | "
                     f"mean {100 * dg['mean_accuracy']:.1f}% on the held-out speaker ({folds}) |")
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
