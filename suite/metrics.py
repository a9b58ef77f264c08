"""Classification metrics and their tables and plots."""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path

import numpy as np


def classification_metrics(
    y_true: np.ndarray, probabilities: np.ndarray, class_names: Sequence[str]
) -> dict:
    """Accuracy, macro-F1, per-class accuracy and the confusion matrix.

    Args:
        y_true: integer labels, shape `[n]`.
        probabilities: shape `[n, num_classes]`.
        class_names: one name per class id.

    Returns:
        A dict with `accuracy`, `macro_f1` (over classes present in `y_true`
        or predicted), `per_class_accuracy` (name -> accuracy, for classes
        present), `confusion_matrix` (rows true, columns predicted) and `n`.
    """
    y_true = np.asarray(y_true, dtype=np.int64)
    y_pred = np.argmax(probabilities, axis=-1)
    k = len(class_names)
    cm = np.zeros((k, k), dtype=np.int64)
    np.add.at(cm, (y_true, y_pred), 1)
    tp = np.diag(cm).astype(float)
    support, predicted = cm.sum(1), cm.sum(0)
    present = (support + predicted) > 0
    f1 = np.divide(2 * tp, support + predicted, out=np.zeros(k), where=present)
    return {
        "n": int(len(y_true)),
        "accuracy": float((y_pred == y_true).mean()) if len(y_true) else 0.0,
        "macro_f1": float(f1[present].mean()) if present.any() else 0.0,
        "per_class_accuracy": {
            class_names[i]: float(tp[i] / support[i]) for i in range(k) if support[i]
        },
        "confusion_matrix": cm.tolist(),
    }


def save_confusion(cm: Sequence[Sequence[int]], class_names: Sequence[str], out_dir: Path) -> None:
    """Writes `confusion_matrix.csv` and `confusion_matrix.png` into `out_dir`."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    with (out_dir / "confusion_matrix.csv").open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["true \\ predicted", *class_names])
        for name, row in zip(class_names, cm):
            writer.writerow([name, *row])

    import matplotlib

    matplotlib.use("Agg")  # No display on servers and CI.
    import matplotlib.pyplot as plt

    counts = np.asarray(cm, dtype=float)
    rows = counts / np.maximum(counts.sum(1, keepdims=True), 1)
    size = max(6, 0.22 * len(class_names))
    fig, ax = plt.subplots(figsize=(size, size))
    ax.imshow(rows, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(class_names)), class_names, rotation=90, fontsize=6)
    ax.set_yticks(range(len(class_names)), class_names, fontsize=6)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title("Confusion matrix (row-normalised)")
    fig.tight_layout()
    fig.savefig(out_dir / "confusion_matrix.png", dpi=120)
    plt.close(fig)


# --- Shared by classification tasks ------------------------------------------


def classification_compile_args(recipe) -> dict:
    """`model.compile` arguments for a softmax classifier over integer labels."""
    import keras

    return {"loss": keras.losses.SparseCategoricalCrossentropy(), "metrics": ["accuracy"]}


def evaluate_classifier(
    labels: np.ndarray, probabilities: np.ndarray, class_names: Sequence[str], out_dir: Path | None
) -> dict:
    """`classification_metrics` plus the expected calibration error (`ece`, 15
    bins of top-class confidence), with the confusion matrix, a reliability
    diagram and one-vs-rest precision-recall curves written to `out_dir`
    (nothing written when it is None: the plots cost about a second a call)."""
    metrics = classification_metrics(labels, probabilities, class_names)
    cm = metrics.pop("confusion_matrix")
    if out_dir is None:
        metrics["ece"] = calibration(np.asarray(labels), np.asarray(probabilities))[0]
        return metrics
    save_confusion(cm, class_names, out_dir)
    metrics["ece"] = save_calibration_and_pr(np.asarray(labels), np.asarray(probabilities), class_names, out_dir)
    return metrics


def precision_recall(hits: np.ndarray, scores: np.ndarray, positives: int) -> tuple[np.ndarray, np.ndarray]:
    """Precision and recall at every score cut, highest score first."""
    order = np.argsort(-scores, kind="stable")
    tp = np.cumsum(hits[order])
    return tp / np.arange(1, len(tp) + 1), tp / max(positives, 1)


def plot_pr(curves: dict[str, tuple[np.ndarray, np.ndarray]], title: str, path: Path) -> None:
    """Precision-recall curves, one per name, into one PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 4))
    for name, (precision, recall) in curves.items():
        ax.plot(recall, precision, label=name, linewidth=1)
    ax.set_xlabel("recall")
    ax.set_ylabel("precision")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.set_title(title, fontsize=9)
    if len(curves) <= 12:
        ax.legend(fontsize=6, loc="lower left")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def calibration(labels: np.ndarray, probabilities: np.ndarray, bins: int = 15
                ) -> tuple[float, np.ndarray, np.ndarray, np.ndarray]:
    """The expected calibration error over `bins` bins of top-class confidence,
    and per bin the example count, the accuracy and the mean confidence."""
    if not len(labels):
        return float("nan"), np.zeros(bins), np.zeros(bins), np.zeros(bins)
    confidence, correct = probabilities.max(1), (probabilities.argmax(1) == labels).astype(float)
    edges = np.linspace(0, 1, bins + 1)
    which = np.clip(np.digitize(confidence, edges) - 1, 0, bins - 1)
    counts = np.bincount(which, minlength=bins)
    accuracy = np.bincount(which, correct, bins) / np.maximum(counts, 1)
    mean_conf = np.bincount(which, confidence, bins) / np.maximum(counts, 1)
    return float(np.sum(counts / len(labels) * np.abs(accuracy - mean_conf))), counts, accuracy, mean_conf


def save_calibration_and_pr(labels: np.ndarray, probabilities: np.ndarray, class_names: Sequence[str],
                            out_dir: Path, bins: int = 15) -> float:
    """Writes `calibration.png` (reliability diagram) and `pr_curves.png` (micro
    average and the five weakest classes); returns the expected calibration error."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if not len(labels):
        return float("nan")
    ece, counts, accuracy, mean_conf = calibration(labels, probabilities, bins)
    fig, ax = plt.subplots(figsize=(4.5, 4))
    used = counts > 0
    ax.bar(mean_conf[used], accuracy[used], width=1 / bins, alpha=0.7, edgecolor="k", label="accuracy")
    ax.plot([0, 1], [0, 1], "k--", linewidth=1, label="perfect calibration")
    ax.set_xlabel("confidence (top class)")
    ax.set_ylabel("accuracy")
    ax.set_title(f"Reliability diagram (ECE {ece:.3f}, n={len(labels)})", fontsize=9)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out_dir / "calibration.png", dpi=110)
    plt.close(fig)
    onehot = np.eye(probabilities.shape[1])[labels]
    curves = {"micro average": precision_recall(onehot.ravel(), probabilities.ravel(), int(onehot.sum()))}
    present = [c for c in range(len(class_names)) if onehot[:, c].any()]
    f1 = {c: (2 * onehot[:, c] @ (probabilities.argmax(1) == c)) / (onehot[:, c].sum() + (probabilities.argmax(1) == c).sum())
          for c in present}
    for c in sorted(present, key=lambda c: f1[c])[:5]:
        curves[f"{class_names[c]} (F1 {f1[c]:.2f})"] = precision_recall(onehot[:, c], probabilities[:, c],
                                                                         int(onehot[:, c].sum()))
    plot_pr(curves, "Precision-recall, one class vs rest (the five weakest classes)", out_dir / "pr_curves.png")
    return ece


def classifier_outputs(probabilities, class_names: Sequence[str], name_key: str = "class_name") -> dict:
    """An export's named outputs, in the graph: `class_id`, the name, `probabilities`."""
    import tensorflow as tf

    class_id = tf.argmax(probabilities, axis=-1)
    return {"class_id": class_id, name_key: tf.gather(tf.constant(list(class_names)), class_id),
            "probabilities": probabilities}


def predict_lines(paths, check, endpoint, class_names: Sequence[str], expected: str) -> list[str]:
    """`file: best class p | next: runner-up p`, one line per file; bad files say why.

    Args:
        paths: input files.
        check: path -> reason the file is unusable, or None.
        endpoint: an export endpoint taking a batch of file bytes.
        class_names: one name per class id.
        expected: what a good file is, for the skip message.
    """
    import tensorflow as tf

    lines: list[str] = []
    for path, data in usable_files(paths, check, expected, lines):
        p = endpoint(tf.constant([data]))["probabilities"].numpy()[0]
        top = np.argsort(p)[::-1][:2]
        lines.append(f"{path}: {class_names[top[0]]} (class {top[0]}) {p[top[0]]:.3f}"
                     f"  | next: {class_names[top[1]]} {p[top[1]]:.3f}")
    return lines


def usable_files(paths, check, expected: str, lines: list[str]):
    """Yields `(path, bytes)` of the files `check` accepts; for the others,
    appends `file: skipped (why); expected ...` to `lines` (for `suite predict`)."""
    for path in paths:
        problem = check(path)
        if problem:
            lines.append(f"{path}: skipped ({problem}); expected {expected}")
            continue
        yield path, Path(path).read_bytes()


def refuse_drawing(out_dir: Path | None, task_name: str) -> None:
    """For tasks whose `predict_files` writes nothing: a clear error when `--out` is given.

    Raises:
        UserError: when `out_dir` is not None.
    """
    if out_dir is not None:
        from suite.errors import UserError

        raise UserError(f"Expected --out only for tasks that write annotated files (detection). "
                        f"Received: --out {out_dir} for {task_name}.")
