"""Exports appear atomically: a failed export leaves nothing behind."""

from __future__ import annotations

import types

import keras
import pytest
import tensorflow as tf

from suite import export as export_lib


def _tiny():
    inputs = keras.Input((4,))
    model = keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(inputs))

    def endpoints(model, recipe, class_names):
        def serve(x):
            return {"probabilities": model(x)}

        return {"serve": (serve, [tf.TensorSpec([None, 4], tf.float32, name="x")])}

    task = types.SimpleNamespace(name="tiny", summary="s", model_summary="m", export_endpoints=endpoints)
    return task, model


def test_failed_export_leaves_no_version(tmp_path, monkeypatch):
    task, model = _tiny()
    archive_cls = type(keras.export.ExportArchive())  # The backend's subclass.
    real_write = archive_cls.write_out

    def broken(self, path, **kwargs):
        real_write(self, path, **kwargs)  # Half the work is on disk ...
        raise OSError("disk full")  # ... when the export fails.

    monkeypatch.setattr(archive_cls, "write_out", broken)
    with pytest.raises(OSError, match="disk full"):
        export_lib.export(task, model, types.SimpleNamespace(), ["a", "b"], tmp_path, {})
    assert list(tmp_path.iterdir()) == []


def test_export_writes_a_complete_version(tmp_path):
    task, model = _tiny()
    import dataclasses

    @dataclasses.dataclass
    class R:
        epochs: int = 1

    target = export_lib.export(task, model, R(), ["a", "b"], tmp_path, {"metrics": {"accuracy": 0.5}})
    assert target == tmp_path / "1"
    assert (target / "labels.txt").read_text() == "a\nb\n"
    assert "| accuracy | 0.5 |" in (target / "model_card.md").read_text()
    loaded, meta = export_lib.load_export(target, "tiny")
    assert meta["class_names"] == ["a", "b"]
    x = tf.ones([3, 4])
    assert float(tf.reduce_max(tf.abs(loaded.serve(x)["probabilities"] - model(x)))) < 1e-6
    assert export_lib.latest_export(tmp_path) == target
