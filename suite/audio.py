"""Audio helpers shared by the loader and the exported graph: check, decode,
resample and fit WAV clips, all in TensorFlow ops so both paths agree."""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np
import tensorflow as tf

SAMPLE_RATE = 16_000


def check_wav_file(path: Path) -> str | None:
    """Returns why a WAV file is unusable, or None when it can be decoded.

    Usable means RIFF/WAVE, 16-bit PCM (what `tf.audio.decode_wav` reads),
    at least one frame, and all the frames its header promises.
    """
    try:
        with wave.open(str(path), "rb") as w:
            frames, width, channels = w.getnframes(), w.getsampwidth(), w.getnchannels()
            if width != 2:
                return f"unsupported WAV: {8 * width}-bit, expected 16-bit PCM"
            if frames == 0:
                return "empty: no audio frames"
            got = len(w.readframes(frames))
    except (wave.Error, EOFError) as e:
        return f"not a WAV: {e}"
    except OSError as e:
        return f"unreadable: {e.strerror or e}"
    if got < frames * width * channels:
        return f"truncated: {got} bytes of audio, expected {frames * width * channels}"
    return None


def resample(signal: tf.Tensor, rate_in: tf.Tensor, rate_out: int = SAMPLE_RATE) -> tf.Tensor:
    """Band-limited (FFT) resampling of a 1-D float signal; identity at equal rates."""

    def fft_resample():
        n = tf.size(signal)
        m = tf.cast(tf.round(tf.cast(n, tf.float64) * rate_out / tf.cast(rate_in, tf.float64)), tf.int32)
        spectrum = tf.signal.rfft(signal)
        keep = tf.minimum(tf.size(spectrum), m // 2 + 1)
        spectrum = tf.pad(spectrum[:keep], [[0, m // 2 + 1 - keep]])
        scale = tf.cast(m, tf.float32) / tf.cast(n, tf.float32)
        return tf.signal.irfft(spectrum, fft_length=[m]) * scale

    return tf.cond(tf.equal(tf.cast(rate_in, tf.int32), rate_out), lambda: signal, fft_resample)


def fit_length(signal: tf.Tensor, length: int = SAMPLE_RATE) -> tf.Tensor:
    """Zero-pads short clips evenly; crops long ones to their loudest window."""
    n = tf.size(signal)

    def pad():
        left = (length - n) // 2
        return tf.pad(signal, [[left, length - n - left]])

    def crop():
        energy = tf.concat([[0.0], tf.cumsum(tf.square(signal))], 0)
        start = tf.argmax(energy[length:] - energy[: n - length + 1], output_type=tf.int32)
        return signal[start : start + length]

    return tf.ensure_shape(tf.cond(n <= length, pad, crop), [length])


def decode_wav(data: tf.Tensor, length: int | None = SAMPLE_RATE) -> tf.Tensor:
    """WAV bytes (16-bit PCM, any rate, any channels) to mono float32 at 16 kHz.

    Args:
        data: scalar string tensor with the file's bytes.
        length: pad or crop to this many samples; None keeps the full clip.

    Returns:
        float32 `[length]` (or `[n]`) in [-1, 1].
    """
    audio, rate = tf.audio.decode_wav(data)
    mono = tf.reduce_mean(audio, axis=1)
    mono = resample(mono, rate)
    return mono if length is None else fit_length(mono, length)


def write_wav(path: Path, signal: np.ndarray, rate: int = SAMPLE_RATE) -> None:
    """Writes float samples in [-1, 1] as a mono 16-bit PCM WAV."""
    pcm = (np.clip(signal, -1, 1) * 32767).astype("<i2")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm.tobytes())
