"""speech_commands: loaders on the real clips, audio decoding, the generator's
layout, skipped bad WAVs, and SavedModel parity on real WAV bytes."""

from __future__ import annotations

import io
import wave
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

from conftest import realdata
from suite.audio import (Decibels, SpecAugment, _every_other_band, check_wav_file, decode_wav, fit_length, random_tilt,
                         resample, write_wav)
from tasks import speech_commands as sc

RECIPE = sc.RECIPES["smoke"]


def _wav_bytes(x: np.ndarray, rate: int, channels: int = 1) -> bytes:
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes((np.clip(x, -1, 1) * 32767).astype("<i2").tobytes())
    return buf.getvalue()


def test_loader_reads_real_speech_commands():
    root = realdata("speech_commands", "speech_commands_v0.01")
    data = sc.load_data(root, RECIPE)
    assert data.layout == "Speech Commands layout with split lists"
    assert data.class_names == [*RECIPE.words, "_silence_", "_unknown_"]
    assert data.report.skipped == [] and data.report.read == 150
    everything = data.splits["all"]
    assert len(everything) == 150
    labels = everything.labels.tolist()
    counts = {d.name: len(list(d.glob("*.wav"))) for d in root.iterdir() if d.is_dir()}
    assert labels.count("yes") == counts["yes"]
    assert labels.count("_unknown_") == sum(n for w, n in counts.items() if w not in RECIPE.words)
    # The official lists decide the splits: whole speakers, never in two.
    speakers = {k: set(data.splits[k].speakers.tolist()) - {"silence"} for k in ("train", "val", "test")}
    assert all(speakers.values())
    assert not speakers["train"] & speakers["val"] and not speakers["train"] & speakers["test"] \
        and not speakers["val"] & speakers["test"]
    listed = set((root / "testing_list.txt").read_text().split())
    for path, label in zip(data.splits["test"].paths, data.splits["test"].labels):
        if label != "_silence_":
            assert "/".join(path.split("/")[-2:]) in listed


def test_loader_reads_real_spoken_digits_and_splits_by_speaker():
    root = realdata("spoken_digits")
    data = sc.load_data(root, RECIPE)
    assert data.class_names == [str(d) for d in range(10)]
    assert len(data.splits["all"]) == 2000 and data.report.skipped == []
    speakers = {k: set(data.splits[k].speakers.tolist()) for k in ("train", "val", "test")}
    assert all(speakers.values()) and sum(map(len, speakers.values())) == 4
    held = sc.load_data(root, sc.dataclasses.replace(RECIPE, test_speakers=("theo",)))
    assert set(held.splits["test"].speakers.tolist()) == {"theo"} and len(held.splits["test"]) == 500
    # Leave one speaker out: the three others all train, and validation is a share (~10%) of their clips.
    others = {"jackson", "nicolas", "yweweler"}
    assert set(held.splits["train"].speakers.tolist()) == others == set(held.splits["val"].speakers.tolist())
    assert 100 <= len(held.splits["val"]) <= 200 and not set(held.splits["val"].paths) & set(held.splits["train"].paths)


def test_real_8khz_clip_decodes_to_one_second_at_16khz():
    path = realdata("spoken_digits", "recordings", "0_jackson_0.wav")
    out = decode_wav(tf.io.read_file(str(path))).numpy()
    assert out.shape == (16000,)
    with wave.open(str(path)) as w:
        n = w.getnframes()
    assert np.count_nonzero(out) >= 2 * n - 4  # Upsampled, then zero-padded around it.


def test_resample_keeps_a_tone_and_fit_length_crops_the_loudest_second():
    t = np.arange(8000) / 8000
    tone = np.sin(2 * np.pi * 440 * t).astype(np.float32)
    up = resample(tf.constant(tone), 8000).numpy()
    assert up.shape == (16000,)
    ref = np.sin(2 * np.pi * 440 * np.arange(16000) / 16000)
    assert np.max(np.abs(up[100:-100] - ref[100:-100])) < 1e-3
    long = np.zeros(40000, np.float32)
    long[30000:31000] = 1.0
    out = fit_length(tf.constant(long)).numpy()
    assert out.shape == (16000,) and out.sum() == 1000
    stereo = _wav_bytes(np.stack([tone, tone], 1).reshape(-1), 8000, channels=2)
    assert decode_wav(tf.constant(stereo)).shape == (16000,)


def test_bad_wavs_are_skipped_and_counted(tmp_path):
    root = tmp_path / "set"
    for label in ("cat", "dog"):
        (root / label).mkdir(parents=True)
        for k in range(3):
            write_wav(root / label / f"spk{k}_nohash_0.wav", np.random.default_rng(k).uniform(-0.5, 0.5, 8000))
    (root / "cat" / "empty_nohash_0.wav").write_bytes(b"")
    (root / "dog" / "notwav_nohash_0.wav").write_bytes(b"this is not audio")
    good = (root / "dog" / "spk0_nohash_0.wav").read_bytes()
    (root / "dog" / "cut_nohash_0.wav").write_bytes(good[: len(good) // 2])
    data = sc.load_data(root, RECIPE)
    reasons = sorted(r.split(":")[0] for _, r in data.report.skipped)
    assert reasons == ["not a WAV", "not a WAV", "truncated"]
    assert data.class_names == ["cat", "dog"] and len(data.splits["all"]) == 6
    for f in ("cat/empty_nohash_0.wav", "dog/notwav_nohash_0.wav"):
        (root / f).unlink()
    (root / "dog" / "cut_nohash_0.wav").unlink()
    for p in root.rglob("*.wav"):
        p.write_bytes(b"")
    with pytest.raises(sc.UserError, match="no usable WAV|Expected one of"):
        sc.load_data(root, RECIPE)


def test_generator_writes_the_speech_commands_layout(tmp_path):
    sc.TASK.make_data(tmp_path, 60, 0)
    assert (tmp_path / "validation_list.txt").exists() and (tmp_path / "testing_list.txt").exists()
    noise = sorted(p.name for p in (tmp_path / "_background_noise_").glob("*.wav"))
    assert {"babble.wav", "pink_noise.wav", "hum.wav"} <= set(noise)
    for word in RECIPE.words:
        clips = list((tmp_path / word).glob("*_nohash_*.wav"))
        assert clips, word
        with wave.open(str(clips[0])) as w:
            assert (w.getframerate(), w.getnchannels(), w.getsampwidth(), w.getnframes()) == (16000, 1, 2, 16000)
        assert check_wav_file(clips[0]) is None
    # Real speech, not silence: energy well above the noise floor somewhere.
    x = decode_wav(tf.io.read_file(str(next((tmp_path / "yes").glob("*.wav"))))).numpy()
    frames = np.sqrt(np.mean(x[: 16000 // 160 * 160].reshape(-1, 160) ** 2, axis=1))
    assert frames.max() > 5 * np.median(frames)
    listed = (tmp_path / "testing_list.txt").read_text().split()
    assert all(sc.which_set(p, 10, 10) == "test" for p in listed)


def test_drawn_voices_follow_their_variant_and_are_a_named_style(tmp_path):
    """`voices.random_variant` speakers: espeak-ng reads the variant written for it (a longer vocal tract,
    all formants lower, moves the spectrum down) from the binding's own data folder, never the package's;
    `--style drawn_voices` writes the keyword sample with drawn voices, the default in shipped voices only."""
    from tasks.samples.voices import Espeak, random_variant

    tts = Espeak.get()

    def centroid(tract_percent: int) -> float:
        text = "language variant\nname t\n" + "".join(f"formant {k} {tract_percent} 100 100\n" for k in range(9))
        spectrum = np.abs(np.fft.rfft(tts.say("seven", "en+" + tts.variant(text), 170, 50, 50), 16384))
        return float((spectrum * np.arange(len(spectrum))).sum() / spectrum.sum())

    # Measured 1.147-1.173 (espeak-ng keeps some state between voices, so it moves with what ran before in the
    # process); one voice for both (the variant ignored) gives 1.0. 1.08 sits between, with margin on both sides.
    assert centroid(120) > 1.08 * centroid(85)
    drawn = {tts.variant(random_variant(np.random.default_rng(seed))) for seed in range(3)}
    assert len(drawn) == 3 and all((tts.data / "voices" / "!v" / name).is_file() for name in drawn)
    import espeakng_loader

    assert not list((Path(espeakng_loader.get_data_path()) / "voices" / "!v").glob("suite_*"))
    sc.TASK.make_data(tmp_path / "stock", 26, 0)
    sc.TASK.make_data(tmp_path / "drawn", 26, 0, "drawn_voices")
    names = lambda d: sorted(p.relative_to(d).as_posix() for p in d.rglob("*.wav"))
    assert names(tmp_path / "stock") != names(tmp_path / "drawn")  # Other speakers, so other hashed names.


def test_split_rule_is_the_official_one():
    """Known pairs from Speech Commands v0.01's own lists; the old modulus (2**27 - 1) put each of these in train."""
    assert sc.which_set("bed/026290a7_nohash_0.wav", 10, 10) == "val"
    assert sc.which_set("bed/060cd039_nohash_1.wav", 10, 10) == "val"
    assert sc.which_set("bed/0c40e715_nohash_0.wav", 10, 10) == "test"
    assert sc.which_set("bed/0ea0e2f4_nohash_0.wav", 10, 10) == "test"
    root = realdata("speech_commands", "speech_commands_v0.01")
    for name, split in (("validation_list.txt", "val"), ("testing_list.txt", "test")):
        listed = (root / name).read_text().split()
        assert len(listed) > 6000 and all(sc.which_set(p, 10, 10) == split for p in listed), name


@pytest.mark.parametrize("smoke", ["speech_commands"], indirect=True)
def test_export_matches_model_predict_on_real_wav_bytes(smoke):
    paths = sorted(realdata("speech_commands", "speech_commands_v0.01").rglob("*.wav"))[::15][:6]
    paths += sorted(realdata("spoken_digits", "recordings").glob("*.wav"))[:2]  # 8 kHz, other lengths.
    raw = [p.read_bytes() for p in paths]
    loaded = tf.saved_model.load(str(smoke["export"]))
    model = keras.saving.load_model(smoke["work"] / "run" / "best.keras")
    waves = np.stack([decode_wav(tf.constant(b)).numpy() for b in raw])
    expected = model.predict(waves, verbose=0)
    out = loaded.serve_wav(tf.constant(raw))
    assert np.max(np.abs(out["probabilities"].numpy() - expected)) < 1e-4
    assert len(set(expected.argmax(-1))) >= 2  # A live model: 8 clips of several words are not all one label.
    np.testing.assert_array_equal(out["class_id"].numpy(), expected.argmax(-1))
    direct = loaded.serve_waveform(tf.constant(waves))["probabilities"].numpy()
    assert np.max(np.abs(direct - expected)) < 1e-4
    one = loaded.serve_wav(tf.constant(raw[:1]))["probabilities"].numpy()  # Batch-independent.
    assert np.max(np.abs(one - expected[:1])) < 1e-4


def test_silence_is_cut_from_the_background_noise_files(tmp_path):
    sc.TASK.make_data(tmp_path, 60, 0)
    data = sc.load_data(tmp_path, RECIPE)
    clips = next(c for c in (data.splits[k] for k in ("train", "val", "test")) if "_silence_" in c.labels)
    rows = np.flatnonzero(clips.labels == "_silence_")
    waves = np.concatenate([x.numpy() for x, _ in sc.dataset(clips, RECIPE, False, 512, data.class_names)])
    for i in rows:
        full = decode_wav(tf.io.read_file(clips.paths[i]), length=None).numpy()
        start = int(clips.offsets[i])
        np.testing.assert_allclose(waves[i], full[start : start + 16000], atol=1e-6)
        assert np.abs(waves[i]).max() > 0  # Noise, not digital silence.


def test_generated_clips_split_by_speaker(tmp_path):
    """The sample's file names carry the speaker hash, so the split lists keep each voice in one split."""
    sc.TASK.make_data(tmp_path, sc.TASK.smoke_size, 0)  # What the smoke run trains on.
    data = sc.load_data(tmp_path, RECIPE)
    speakers = {k: set(data.splits[k].speakers.tolist()) - {"silence"} for k in ("train", "val", "test")}
    assert all(speakers.values())
    assert not speakers["train"] & speakers["val"] and not speakers["train"] & speakers["test"] \
        and not speakers["val"] & speakers["test"]


def test_digits_sample_is_read_as_fsdd_and_mixes_beside_held_out_real_speakers(tmp_path):
    """`--style digits` writes FSDD's own layout at 8 kHz; a forced test speaker of the real set does not
    apply to the sample's voices (a --mix set), which split by hash instead."""
    sc.TASK.make_data(tmp_path, 60, 0, "digits")
    files = sorted((tmp_path / "recordings").glob("*.wav"))
    assert len(files) >= 60 and all(check_wav_file(f) is None for f in files)
    with wave.open(str(files[0])) as w:
        assert (w.getframerate(), w.getnchannels()) == (8000, 1) and w.getnframes() < 16000
    held = sc.dataclasses.replace(RECIPE, test_speakers=("theo",))
    data = sc.load_data(tmp_path, held)
    assert data.class_names == [str(d) for d in range(10)] and data.layout == "label_speaker_n.wav set (split by speaker)"
    assert len(set(data.splits["train"].speakers.tolist())) >= 2 and "theo" not in data.splits["test"].speakers
    with pytest.raises(sc.UserError, match="Expected test_speakers among"):  # Some but not all: a typo.
        sc.load_data(tmp_path, sc.dataclasses.replace(RECIPE, test_speakers=(data.splits["train"].speakers[0], "theo")))


def test_random_tilt_gives_each_clip_its_own_slope_within_the_limit():
    """White noise tilted: the level 3 octaves up (500 Hz -> 4 kHz) moves by 3x each clip's slope, no more than
    the limit allows, and differently per clip; a limit of 0 leaves the clip as it was."""
    x = tf.random.stateless_normal([64, 16000], seed=[1, 2])
    spectrum = np.abs(np.fft.rfft(random_tilt(x, 9.0).numpy(), axis=-1)) ** 2 / np.abs(np.fft.rfft(x.numpy(), axis=-1)) ** 2
    slope = 10 * np.log10(spectrum[:, 4000] / spectrum[:, 500]) / 3  # dB per octave; bins are 1 Hz apart.
    assert np.all(np.abs(slope) <= 9.0 + 1e-3) and slope.max() - slope.min() > 12.0
    np.testing.assert_allclose(random_tilt(x, 0.0).numpy(), x.numpy())


def test_band_peak_decibels_ignore_a_steady_channel_response():
    """With `peak="band"` each band keeps its own range below its own loudest frame, so a fixed gain per band (a
    dull or bright microphone) leaves the features as they were; measured from the clip's peak, it does not."""
    power = tf.random.stateless_uniform([2, 40, 101], seed=[3, 4], minval=1e-3, maxval=1.0) ** 3  # 90 dB of range.
    gain = 10.0 ** (tf.linspace(0.0, -3.0, 40)[None, :, None])  # -30 dB from the lowest band to the highest.
    band, clip = Decibels(60.0, peak="band"), Decibels(60.0)
    np.testing.assert_allclose(band(power * gain).numpy(), band(power).numpy(), atol=1e-3)
    assert np.abs(clip(power * gain).numpy() - clip(power).numpy()).max() > 1.0
    with pytest.raises(ValueError, match="Expected peak 'clip' or 'band'. Received: 'max'"):
        Decibels(60.0, peak="max")


def test_spec_augment_warps_each_example_by_its_own_factor():
    """Frequency warps keep 0 Hz and stretch the mel axis; time warps keep the centre; off at inference."""
    ramp = tf.range(40, dtype=tf.float32)[None, None, :, None] * tf.ones([4, 101, 1, 1])
    layer = SpecAugment(0, 0, 0, 0, seed=0, freq_warp=0.2)
    out = layer(ramp, training=True).numpy()[:, 0, :, 0]
    slopes = out[:, 10] / 10  # Bin 10 reads from bin 10 / factor.
    assert np.all(out[:, 0] == 0) and np.all((slopes > 1 / 1.2 - 1e-4) & (slopes < 1 / 0.8 + 1e-4))
    assert len(set(np.round(slopes, 4))) == 4
    clock = tf.range(101, dtype=tf.float32)[None, :, None, None] * tf.ones([2, 1, 40, 1])
    timed = SpecAugment(0, 0, 0, 0, seed=0, time_warp=0.2)(clock, training=True).numpy()[:, :, 0, 0]
    np.testing.assert_allclose(timed[:, 50], 50, atol=1e-4)
    np.testing.assert_array_equal(layer(ramp, training=False).numpy(), ramp.numpy())


def test_bc_resnet_reloads_and_answers_the_same(tmp_path):
    """The `bcresnet` network round-trips through `.keras` (no Lambda layers) with identical outputs."""
    recipe = sc.dataclasses.replace(RECIPE, network="bcresnet", width=8)
    model = sc.build_model(recipe, ["a", "b", "c"])
    assert 5_000 < model.count_params() < 15_000  # BC-ResNet-1 is about 9k.
    model.save(tmp_path / "m.keras")
    again = keras.saving.load_model(tmp_path / "m.keras")
    waves = np.random.default_rng(0).uniform(-0.3, 0.3, (2, 16000)).astype(np.float32)
    np.testing.assert_allclose(again.predict(waves, verbose=0), model.predict(waves, verbose=0), atol=1e-5)


@pytest.mark.parametrize("bands", [20, 7])
def test_every_other_band_is_a_stride_two_convolution(bands):
    """BC-ResNet's frequency stride, built so it runs where TensorFlow's depthwise kernel refuses unequal strides
    (no oneDNN: CPUs without AVX-512, GPUs), equals TensorFlow's "same" padding with stride 2, computed by hand."""
    rng = np.random.default_rng(bands)
    x = rng.normal(size=(2, 3, bands, 4)).astype(np.float32)
    conv = keras.layers.DepthwiseConv2D((1, 3), padding="same", use_bias=False)
    got = keras.ops.convert_to_numpy(_every_other_band(conv(x)))
    kernel = conv.get_weights()[0][0, :, :, 0]  # [3, channels]
    out = -(-bands // 2)
    before = max((out - 1) * 2 + 3 - bands, 0) // 2  # TensorFlow's "same": the smaller half of the padding first.
    padded = np.pad(x, ((0, 0), (0, 0), (before, 3), (0, 0)))
    want = np.stack([(padded[:, :, 2 * i:2 * i + 3] * kernel).sum(axis=2) for i in range(out)], axis=2)
    np.testing.assert_allclose(got, want, atol=1e-5)
