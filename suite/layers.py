"""Layers the tasks' own models share."""

from __future__ import annotations

import functools

import keras
import tensorflow as tf

FUSED_MIN_EPSILON = 1.001e-5  # The fused kernel raises a smaller epsilon to this; such layers keep Keras' path.


@functools.cache
def onednn_enabled() -> bool:
    """Whether TensorFlow runs oneDNN's kernels in this process (`TF_ENABLE_ONEDNN_OPTS`, else TensorFlow's own
    choice by CPU). TensorFlow answers it only through a private module; where that is gone, False."""
    try:
        from tensorflow.python.util import _pywrap_util_port
    except ImportError:
        return False
    return bool(_pywrap_util_port.IsMklEnabled())


@keras.saving.register_keras_serializable(package="suite")
class BatchNorm(keras.layers.BatchNormalization):
    """`keras.layers.BatchNormalization` whose training step runs TensorFlow's fused kernel.

    Keras 3 computes a training batch's moments and the normalisation as a
    chain of separate ops, each a pass over the activations, and the gradient
    goes back through all of them. Where TensorFlow runs oneDNN's kernels (its
    default on AVX-512 VNNI CPUs) the fused one makes a single pass: a
    speech_commands training step (batch 32, 2 cores) took 58 ms with this
    layer against 99 ms with Keras' (the fastest of six interleaved rounds;
    `bench/run.py --only batchnorm` measures it per task). With Eigen's
    kernels (TensorFlow's default on other CPUs) the fused one was no faster,
    so there the layer keeps Keras' path.

    The weights, the moving statistics (updated with the biased batch
    variance, as Keras' layer does) and inference are Keras' own, so a model
    saved with this layer loads and predicts as one with Keras' would, and
    `isinstance(layer, keras.layers.BatchNormalization)` holds. Channels-last
    inputs of rank 3 are folded to the kernel's 4-D layout (a reshape, no
    copy). What the kernel does not take (rank 2, channels first, not
    float32, a mask, renorm, synchronized statistics, no scale or no centre,
    an epsilon under 1.001e-5) trains through Keras' path.
    """

    def _fusable(self, inputs, training, mask) -> bool:
        return (training is True and onednn_enabled() and self.trainable and mask is None and not self.renorm
                and not self.synchronized and self.scale and self.center and self.epsilon >= FUSED_MIN_EPSILON
                and len(inputs.shape) in (3, 4) and self.axis in (-1, len(inputs.shape) - 1)
                and inputs.dtype == tf.float32)

    def call(self, inputs, training=None, mask=None):
        if not self._fusable(inputs, training, mask):
            return super().call(inputs, training=training, mask=mask)
        channels = inputs.shape[-1]
        x = inputs if len(inputs.shape) == 4 else tf.reshape(inputs, [-1, 1, 1, channels])
        outputs, mean, variance = tf.compat.v1.nn.fused_batch_norm(
            x, self.gamma, self.beta, epsilon=self.epsilon, is_training=True)
        # The kernel returns the unbiased variance; Keras' moving variance follows the biased one.
        n = tf.cast(tf.size(inputs) // channels, variance.dtype)
        variance = variance * (n - 1.0) / tf.maximum(n, 1.0)
        self.moving_mean.assign(self.moving_mean * self.momentum + mean * (1.0 - self.momentum))
        self.moving_variance.assign(self.moving_variance * self.momentum + variance * (1.0 - self.momentum))
        return outputs if len(inputs.shape) == 4 else tf.reshape(outputs, tf.shape(inputs))
