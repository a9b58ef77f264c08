"""Shared layers: BatchNorm on TensorFlow's fused kernel trains, saves and predicts as Keras' layer does."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

import suite.layers
from suite.layers import BatchNorm


def _ops(layer, x) -> set[str]:
    """The op types of one traced training call."""
    graph = tf.function(lambda v: layer(v, training=True)).get_concrete_function(x).graph
    return {op.type for op in graph.get_operations()}


def _step(layer, x, weights, target):
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = layer(x, training=True)
        # Weighted by channel and against a random target: no gradient is zero by symmetry (then only rounding).
        loss = tf.reduce_sum(tf.square(y - target) * weights)
    return (y, *tape.gradient(loss, [x, layer.gamma, layer.beta]))


@pytest.mark.parametrize("shape, axis, fused", [
    ((8, 12, 10, 16), -1, True),  # Conv2D features.
    ((8, 30, 16), -1, True),  # Conv1D features: folded to the kernel's 4-D layout.
    ((8, 16, 12, 10), 1, False),  # Channels first: Keras' path.
])
def test_batchnorm_trains_like_keras_own_layer(shape, axis, fused, monkeypatch):
    # The fused path is taken only where oneDNN runs (without it, it was no faster); here it is forced on any CPU.
    monkeypatch.setattr(suite.layers, "onednn_enabled", lambda: True)
    rng = np.random.default_rng(0)
    ours, theirs = BatchNorm(axis=axis, momentum=0.9), keras.layers.BatchNormalization(axis=axis, momentum=0.9)
    for layer in (ours, theirs):
        layer.build(shape)
    gamma = rng.normal(1.0, 0.3, shape[axis]).astype("float32")
    ours.gamma.assign(gamma)
    theirs.gamma.assign(gamma)
    weights = tf.reshape(tf.range(shape[axis], dtype=tf.float32), [-1] + [1] * (len(shape) - 1 - (axis % len(shape))))
    assert ("FusedBatchNormV3" in _ops(ours, tf.zeros(shape))) is fused
    for _ in range(3):  # The moving statistics follow several batches.
        x = tf.constant(rng.normal(2.0, 3.0, shape).astype("float32"))
        target = tf.constant(rng.normal(0.5, 1.0, shape).astype("float32"))
        (y1, dx1, dg1, db1), (y2, dx2, dg2, db2) = _step(ours, x, weights, target), _step(theirs, x, weights, target)
        np.testing.assert_allclose(y1, y2, atol=1e-4)
        for a, b in ((dx1, dx2), (dg1, dg2), (db1, db2)):  # Relative to the largest: float32 sums differ in order.
            assert np.abs(a - b).max() <= 1e-3 * np.abs(b).max(), (np.abs(a - b).max(), np.abs(b).max())
    np.testing.assert_allclose(ours.moving_mean, theirs.moving_mean, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(ours.moving_variance, theirs.moving_variance, rtol=1e-4)
    np.testing.assert_allclose(ours(x, training=False), theirs(x, training=False), atol=1e-4)


def test_batchnorm_keeps_keras_path_without_onednn(monkeypatch):
    """With Eigen's kernels the fused one was no faster (docs/benchmarks.md, "BatchNorm on the fused kernel")."""
    monkeypatch.setattr(suite.layers, "onednn_enabled", lambda: False)
    assert "FusedBatchNormV3" not in _ops(BatchNorm(), tf.zeros((4, 6, 5, 3)))


def test_a_saved_batchnorm_loads_as_itself_and_predicts_the_same(tmp_path):
    inputs = keras.Input((6, 5, 3))
    model = keras.Model(inputs, BatchNorm(momentum=0.5)(keras.layers.Conv2D(4, 3)(inputs)))
    x = np.random.default_rng(1).normal(size=(4, 6, 5, 3)).astype("float32")
    model.compile(optimizer="adam", loss="mse")
    model.fit(x, np.ones((4, 4, 3, 4), "float32"), epochs=2, verbose=0)  # Moving statistics away from 0 and 1.
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras")
    assert type(loaded.layers[-1]) is BatchNorm
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0), atol=1e-6)
