"""Audio helpers shared by the loader and the exported graph: check, decode,
resample and fit WAV clips, all in TensorFlow ops so both paths agree; and the
in-model front end speech tasks share (log-mel with per-clip `Decibels`,
`SpecAugment` with speaker and tempo warps) and their two networks (`ds_cnn`,
`bc_resnet`)."""

from __future__ import annotations

import struct
import wave
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from suite.data import bytes_at
from suite.layers import BatchNorm

SAMPLE_RATE = 16_000


def check_wav_file(path: Path) -> str | None:
    """Returns why a WAV file is unusable, or None when it can be decoded.

    Usable means RIFF/WAVE, 16-bit PCM (what `tf.audio.decode_wav` reads),
    at least one frame, and all the frames its header promises.
    """
    try:
        with open(path, "rb") as f:
            head = f.read(36)
    except OSError as e:
        return f"unreadable: {e.strerror or e}"
    if len(head) < 36 or head[:4] != b"RIFF" or head[8:16] != b"WAVEfmt ":
        return "not a WAV: expected RIFF/WAVE with its `fmt ` chunk first"
    # The fields TensorFlow's decoder checks against each other (Python's `wave` does not): a file it refuses
    # would stop training at the batch that holds it.
    _, channels, rate, byte_rate, align, bits = struct.unpack("<HHIIHH", head[20:36])
    if channels and bits == 16 and (byte_rate != rate * channels * 2 or align != channels * 2):
        return (f"bad WAV header: byte rate {byte_rate} and block align {align}, expected {rate * channels * 2} and "
                f"{channels * 2} for {channels} channel(s) at {rate} Hz")
    try:
        with wave.open(str(path), "rb") as w:
            frames, width, channels = w.getnframes(), w.getsampwidth(), w.getnchannels()
            if w.getframerate() < 1000:  # `decode_wav` refuses these: resampling them would explode.
                return f"unsupported WAV: {w.getframerate()} Hz, expected at least 1000 Hz"
            if width != 2:
                return f"unsupported WAV: {8 * width}-bit, expected 16-bit PCM"
            if frames == 0:
                return "empty: no audio frames"
            got = len(w.readframes(frames))
    except (wave.Error, EOFError, struct.error, RuntimeError) as e:  # `wave` raises RuntimeError on some bad chunks.
        return f"not a WAV: {type(e).__name__}: {e}"
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


def _wav_layout_checks(data: tf.Tensor) -> list[tf.Operation]:
    """Assertions that `data` is RIFF/WAVE with `fmt ` first and, walking the
    chunks as TensorFlow's decoder does, a non-empty `data` chunk that fits
    in the bytes present."""
    length = tf.cast(tf.strings.length(data), tf.int64)
    head = bytes_at(data, 0, 16)
    signature = tf.reduce_all(tf.equal(tf.gather(head, [0, 1, 2, 3, 8, 9, 10, 11, 12, 13, 14, 15]),
                                       tf.constant(list(b"RIFFWAVEfmt "), tf.int64)))
    riff = tf.debugging.Assert(signature, [tf.strings.format(
        "Expected a WAV file (RIFF/WAVE with its `fmt ` chunk first). Received: {} bytes without those "
        "signatures.", length)])
    data_id = tf.constant(list(b"data"), tf.int64)

    def walk(offset, found, size, steps):
        b = bytes_at(data, offset, 8)
        n = b[4] + b[5] * 2**8 + b[6] * 2**16 + b[7] * 2**24
        is_data = tf.reduce_all(tf.equal(b[:4], data_id))
        return offset + tf.where(is_data, tf.constant(0, tf.int64), 8 + n), is_data, n, steps + 1

    offset, found, size, _ = tf.while_loop(
        lambda offset, found, size, steps: ~found & (offset + 8 <= length) & (steps < 64), walk,
        (tf.constant(12, tf.int64), tf.constant(False), tf.constant(0, tf.int64), tf.constant(0)))
    fits = tf.debugging.Assert(found & (size > 0) & (offset + 8 + size <= length), [tf.strings.format(
        "Expected a WAV with a non-empty `data` chunk within its {} bytes. Received: {}.", (length, tf.where(
            found, tf.strings.format("a data chunk declaring {} bytes", size), "chunk sizes that run past the end "
            "(or no data chunk)")))])
    return [riff, fits]


# Served exports refuse longer WAVs; recipes carry it as `max_audio_seconds`.
MAX_AUDIO_SECONDS = 60.0


def decode_wav(data: tf.Tensor, length: int | None = SAMPLE_RATE,
               max_seconds: float | None = MAX_AUDIO_SECONDS) -> tf.Tensor:
    """WAV bytes (16-bit PCM, any rate, any channels) to mono float32 at 16 kHz.

    TensorFlow's decoder checks the chunk sizes against the bytes present (a
    header that lies about its length is an error); the duration is checked
    here, before resampling, whose output grows with frames / rate (a 1 MB
    file declaring a 1 Hz rate would resample to 16 billion samples).

    Args:
        data: scalar string tensor with the file's bytes.
        length: pad or crop to this many samples; None keeps the full clip.
        max_seconds: refuse (an `InvalidArgumentError` naming the limit and
            the clip's length) longer clips; None accepts any. Defaults to
            `MAX_AUDIO_SECONDS`.

    Returns:
        float32 `[length]` (or `[n]`) in [-1, 1].
    """
    # The decoder's own messages for a bad header quote the raw bytes it found (chunk ids), which Python cannot
    # always decode (a UnicodeDecodeError instead of the error): the layout is checked first, with our messages.
    with tf.control_dependencies(_wav_layout_checks(data)):
        audio, rate = tf.audio.decode_wav(data)
    checks = [tf.debugging.Assert(rate >= 1000, [tf.strings.format(
        "Expected a WAV sample rate of at least 1000 Hz. Received: {} Hz.", rate)])]
    if max_seconds is not None:
        seconds = tf.cast(tf.shape(audio)[0], tf.float64) / tf.cast(tf.maximum(rate, 1), tf.float64)
        checks.append(tf.debugging.Assert(seconds <= max_seconds, [tf.strings.format(
            "Expected a WAV of at most {} s (the export's max_audio_seconds). Received: {} s ({} frames at {} Hz).",
            (max_seconds, seconds, tf.shape(audio)[0], rate))]))
    with tf.control_dependencies(checks):
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


def colored_noise(rng: np.random.Generator, n: int, exponent: float) -> np.ndarray:
    """Noise with power ~ 1/f**exponent (0 white, 1 pink, 2 brown), unit RMS."""
    spectrum = rng.normal(size=n // 2 + 1) + 1j * rng.normal(size=n // 2 + 1)
    f = np.arange(n // 2 + 1, dtype=np.float64)
    f[0] = 1.0
    x = np.fft.irfft(spectrum / f ** (exponent / 2), n)
    return (x / (x.std() + 1e-12)).astype(np.float32)


def random_tilt(x: tf.Tensor, largest_db: float, seed: int | None = None) -> tf.Tensor:
    """Tilts each clip's spectrum by its own random slope, up to `largest_db`
    dB per octave either way about 1 kHz (flat below 100 Hz): brighter or
    duller voices and microphones.

    A training augmentation for `[batch, samples]` 16 kHz waveforms. The
    per-band mean removal of `Decibels` does not undo a tilt: it moves which
    bands sit at the `top_db` floor, and a model trained on espeak-ng's bright
    voices scored real clips 5 points higher with +6 dB/octave added to them.
    Trained with it (`tilt_db=9`), the model gained nothing on real clips;
    `Decibels(peak="band")` is what made it steady (docs/benchmarks.md,
    speech_commands ablation).

    Args:
        x: waveforms, `[batch, samples]`.
        largest_db: largest slope, dB per octave. 0 returns `x` unchanged.
        seed: optional seed of the slopes.

    Returns:
        The tilted waveforms, same shape.
    """
    if not largest_db:
        return x
    return tilt(x, tf.random.uniform([tf.shape(x)[0], 1], -largest_db, largest_db, seed=seed))


def tilt(x: tf.Tensor, db_per_octave: tf.Tensor | float) -> tf.Tensor:
    """`x` (`[batch, samples]`, 16 kHz) with its spectrum tilted by `db_per_octave`
    (a number, or one per clip, `[batch, 1]`) about 1 kHz, flat below 100 Hz."""
    n = x.shape[-1] or tf.shape(x)[-1]
    hz = tf.linspace(0.0, SAMPLE_RATE / 2, n // 2 + 1)
    octaves = tf.math.log(tf.maximum(hz, 100.0) / 1000.0) / tf.math.log(2.0)
    gain = tf.pow(10.0, tf.cast(db_per_octave, tf.float32) * octaves[None, :] / 20.0)
    return tf.signal.irfft(tf.signal.rfft(x) * tf.complex(gain, 0.0), [n])


# --- Model layers (in-model front end, shared by speech tasks) -------------------------


@keras.saving.register_keras_serializable(package="suite")
class Decibels(keras.layers.Layer):
    """Log-mel in dB relative to each example's peak, floored at `-top_db`,
    with each band's mean over time removed.

    Per example, unlike Keras' `power_to_db` (which floors at the whole
    batch's peak). Floor and mean removal keep digital silence (zero padding,
    the empty upper bands of 8 kHz recordings) close to the quiet noise the
    model sees in training, instead of a -100 dB cliff it never saw.

    Args:
        top_db: dynamic range kept below the peak. Defaults to 60.
        band_mean: over what each band's mean is taken and removed: "window"
            (every frame), "recording" (the frames that are not digital
            silence, so a word reads the same whatever padding follows it in a
            long window), or "none". Defaults to "window".
        peak: the level the floor is measured from: "clip" (the example's
            loudest bin) or "band" (each band's loudest frame, so every band
            keeps `top_db` of range and a steady channel response, such as a
            dull microphone, changes nothing). On 8 kHz speakers (FSDD) it
            lost to "clip" (docs/benchmarks.md, digits_nested). Defaults to
            "clip".
    """

    def __init__(self, top_db: float = 60.0, band_mean: str = "window", peak: str = "clip", **kwargs):
        super().__init__(**kwargs)
        if band_mean not in ("window", "recording", "none"):
            raise ValueError(f"Expected band_mean 'window', 'recording' or 'none'. Received: {band_mean!r}")
        if peak not in ("clip", "band"):
            raise ValueError(f"Expected peak 'clip' or 'band'. Received: {peak!r}")
        self.top_db = top_db
        self.band_mean = band_mean
        self.peak = peak

    def call(self, x):  # x: power, [batch, mel, time].
        db = 10.0 * keras.ops.log10(keras.ops.maximum(x, 1e-10))
        peak = keras.ops.max(db, axis=(1, 2) if self.peak == "clip" else 2, keepdims=True)
        db = keras.ops.maximum(db - peak, -self.top_db)
        if self.band_mean == "none":
            return db
        # Per-band mean over time (cepstral mean normalisation): bands a
        # recording lacks (8 kHz sets) read ~0 with or without training noise.
        if self.band_mean == "window":
            return db - keras.ops.mean(db, axis=2, keepdims=True)
        sound = keras.ops.cast(keras.ops.max(x, axis=1, keepdims=True) > 1e-10, db.dtype)  # [batch, 1, time]
        mean = keras.ops.sum(db * sound, axis=2, keepdims=True) / keras.ops.maximum(
            keras.ops.sum(sound, axis=2, keepdims=True), 1.0)
        return db - mean

    def get_config(self):
        return {**super().get_config(), "top_db": self.top_db, "band_mean": self.band_mean, "peak": self.peak}


@keras.saving.register_keras_serializable(package="suite")
class SpecAugment(keras.layers.Layer):
    """Time and frequency masking (Park et al. 2019), in training only.

    Args:
        time_masks: masks along time per example.
        time_width: largest time mask, in frames.
        freq_masks: masks along frequency per example.
        freq_width: largest frequency mask, in bins.
        seed: optional seed.
        freq_warp: largest relative stretch of the mel axis per example (0.1:
            factors 0.9-1.1), a vocal-tract-length perturbation (VTLP, Jaitly
            and Hinton 2013) in the feature domain: other speakers. Defaults to 0.
        time_warp: largest relative stretch of the time axis about the clip's
            centre, a tempo perturbation: other speaking rates. Defaults to 0.
    """

    def __init__(self, time_masks=2, time_width=10, freq_masks=2, freq_width=5, seed=None,
                 freq_warp=0.0, time_warp=0.0, **kwargs):
        super().__init__(**kwargs)
        self.time_masks, self.time_width = time_masks, time_width
        self.freq_masks, self.freq_width = freq_masks, freq_width
        self.freq_warp, self.time_warp = freq_warp, time_warp
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def _mask(self, batch, size, count, width):
        keep = tf.ones([batch, size])
        positions = tf.range(size, dtype=tf.float32)[None, :]
        for _ in range(count):
            w = keras.random.uniform([batch, 1], 0, width + 1, seed=self.seed_generator)
            start = keras.random.uniform([batch, 1], 0, 1, seed=self.seed_generator) * (size - w)
            keep *= 1.0 - tf.cast((positions >= start) & (positions < start + tf.floor(w)), tf.float32)
        return keep

    def _warp(self, x, axis, largest):
        """Stretches `axis` (1: time, 2: mel) by a random factor per example,
        with linear interpolation, about bin 0 (mel) or the middle (time), edges held."""
        size = x.shape[axis]
        factor = 1.0 + keras.random.uniform([tf.shape(x)[0], 1], -largest, largest, seed=self.seed_generator)
        centre = 0.0 if axis == 2 else (size - 1) / 2  # Mel warps keep 0 Hz; time stretches keep the middle.
        source = tf.clip_by_value(centre + (tf.range(size, dtype=tf.float32)[None, :] - centre) / factor, 0, size - 1)
        low = tf.cast(tf.floor(source), tf.int32)
        high = tf.minimum(low + 1, size - 1)
        t = source - tf.cast(low, tf.float32)
        moved = tf.transpose(x, [0, axis, 3 - axis, 3])  # The warped axis second, for gathers per example.
        mixed = (tf.gather(moved, low, batch_dims=1) * (1 - t)[:, :, None, None]
                 + tf.gather(moved, high, batch_dims=1) * t[:, :, None, None])
        return tf.transpose(mixed, [0, axis, 3 - axis, 3])

    def call(self, x, training=None):
        if not training:
            return x
        if self.freq_warp:
            x = self._warp(x, 2, self.freq_warp)
        if self.time_warp:
            x = self._warp(x, 1, self.time_warp)
        shape = tf.shape(x)  # [batch, time, freq, 1]
        t = self._mask(shape[0], x.shape[1], self.time_masks, self.time_width)
        f = self._mask(shape[0], x.shape[2], self.freq_masks, self.freq_width)
        return x * t[:, :, None, None] * f[:, None, :, None]

    def get_config(self):
        return {**super().get_config(), "time_masks": self.time_masks, "time_width": self.time_width,
                "freq_masks": self.freq_masks, "freq_width": self.freq_width, "seed": self.seed,
                "freq_warp": self.freq_warp, "time_warp": self.time_warp}


def log_mel(waveform: keras.KerasTensor, mel_bins: int, top_db: float, band_mean: str = "window",
            peak: str = "clip") -> keras.KerasTensor:
    """The log-mel front end inside a model: 16 kHz waveform `[batch, samples]`
    in, `[batch, time, mel_bins, 1]` out, normalised per clip.

    25 ms windows every 10 ms, 20-7600 Hz. Decibels come from `Decibels`:
    Keras' `power_to_db` floors at the whole batch's maximum, so a clip's
    features would depend on what else is in its batch. Then a fixed scaling,
    not BatchNorm: the features are already normalised per clip, and moving
    statistics lag badly on small sets (FSDD collapsed to one class at
    inference with them).

    Args:
        waveform: the model's waveform input.
        mel_bins: mel bands.
        top_db: dynamic range kept below each clip's peak.
        band_mean: over what each band's mean is removed (`Decibels`). Defaults to "window".
        peak: what the floor is measured from (`Decibels`). Defaults to "clip".

    Returns:
        The features, ready for 2-D convolutions.
    """
    x = keras.layers.MelSpectrogram(
        fft_length=512, sequence_length=400, sequence_stride=160, sampling_rate=SAMPLE_RATE,
        num_mel_bins=mel_bins, min_freq=20.0, max_freq=7600.0, power_to_db=False,
    )(waveform)
    x = Decibels(top_db, band_mean, peak)(x)
    x = keras.layers.Permute((2, 1))(x)  # [time, mel]
    x = keras.layers.Reshape((-1, mel_bins, 1))(x)
    return keras.layers.Rescaling(1 / 20, name="input_norm")(x)


def _bn_relu(x: keras.KerasTensor) -> keras.KerasTensor:  # Momentum 0.9: statistics settle in tens of steps.
    return keras.layers.ReLU()(BatchNorm(momentum=0.9)(x))


def ds_cnn(x: keras.KerasTensor, width: int, blocks: int) -> keras.KerasTensor:
    """Depthwise-separable CNN (DS-CNN, Zhang et al. 2017) over log-mels.

    Args:
        x: features `[batch, time, mel, 1]`.
        width: channels (DS-CNN-S: 64).
        blocks: depthwise-separable blocks after the first convolution.

    Returns:
        `[batch, width]` after global average pooling.
    """
    x = _bn_relu(keras.layers.Conv2D(width, (10, 4), strides=(2, 2), padding="same", use_bias=False)(x))
    for _ in range(blocks):
        x = _bn_relu(keras.layers.DepthwiseConv2D(3, padding="same", use_bias=False)(x))
        x = _bn_relu(keras.layers.Conv2D(width, 1, use_bias=False)(x))
    return keras.layers.GlobalAveragePooling2D()(x)


def _every_other_band(x: keras.KerasTensor) -> keras.KerasTensor:
    """Keeps the frequency bands a "same" convolution with stride 2 would centre on.

    TensorFlow's depthwise kernel takes unequal strides only where oneDNN is on
    (not on every CPU, nor on GPU): "Current implementation only supports equal
    length strides in the row and column dimensions." A stride-1 depthwise
    convolution followed by this gives exactly the stride-(1, 2) result.
    """
    if x.shape[2] % 2 == 0:  # "same", stride 2, even size: windows centre on bands 1, 3, 5, ...
        x = keras.layers.Cropping2D(((0, 0), (1, 0)))(x)
    return keras.layers.MaxPooling2D((1, 1), strides=(1, 2))(x)


def bc_resnet(x: keras.KerasTensor, width: int, dropout: float = 0.1) -> keras.KerasTensor:
    """Broadcasted residual learning (BC-ResNet, Kim et al. 2021) over log-mels.

    Each block convolves along frequency on the full 2-D map, averages the
    frequency axis away, convolves along (dilated) time on that 1-D summary
    and broadcasts the result back: 2-D features at close to 1-D cost.

    Args:
        x: features `[batch, time, mel, 1]`.
        width: the first stage's channels (BC-ResNet-1 is 8); the stages
            have 1, 1.5, 2 and 2.5 times it.
        dropout: spatial dropout in the temporal branch. Defaults to 0.1.

    Returns:
        `[batch, channels]` after pooling over time and frequency.
    """
    def block(x, channels, freq_stride, dilation):
        transition = x.shape[-1] != channels
        if transition:
            x = _bn_relu(keras.layers.Conv2D(channels, 1, use_bias=False)(x))
        aux = keras.layers.DepthwiseConv2D((1, 3), padding="same", use_bias=False)(x)  # f2: along frequency.
        if freq_stride > 1:
            aux = _every_other_band(aux)
        aux = BatchNorm(momentum=0.9)(aux)
        y = keras.layers.AveragePooling2D((1, aux.shape[2]))(aux)  # Frequency averaged away.
        y = keras.layers.DepthwiseConv2D((3, 1), dilation_rate=(dilation, 1), padding="same", use_bias=False)(y)
        y = keras.layers.Activation("swish")(BatchNorm(momentum=0.9)(y))
        y = keras.layers.SpatialDropout2D(dropout)(keras.layers.Conv2D(channels, 1, use_bias=False)(y))
        parts = [aux, y] if transition or freq_stride > 1 else [x, aux, y]
        return keras.layers.ReLU()(keras.layers.Add()(parts))  # y: [b, t, 1, c], broadcast over frequency.

    x = _bn_relu(keras.layers.Conv2D(2 * width, 5, strides=(1, 2), padding="same", use_bias=False)(x))
    for i, (blocks, scale) in enumerate(((2, 1.0), (2, 1.5), (4, 2.0), (4, 2.5))):
        for j in range(blocks):
            x = block(x, int(width * scale), 2 if (j == 0 and i in (1, 2)) else 1, 2**i)
    x = keras.layers.DepthwiseConv2D((5, x.shape[2]), padding="valid", use_bias=False)(
        keras.layers.ZeroPadding2D(((2, 2), (0, 0)))(x))  # Head: all frequency bands at once.
    x = _bn_relu(keras.layers.Conv2D(4 * width, 1, use_bias=False)(x))
    return keras.layers.GlobalAveragePooling2D()(x)
