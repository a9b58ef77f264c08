"""Sample data for speech_commands: synthesized speech in the Speech Commands layout.

espeak-ng (through a small ctypes binding to the library `espeakng-loader` ships) says each
keyword in many voices, rates and pitches; rooms and background noise are added, and the
split lists keep speakers apart as the real dataset's do.

`tasks/speech_commands.py` calls `make_data` lazily, so the drawing code loads only
when data is made.
"""

from __future__ import annotations

import hashlib
import math
from pathlib import Path

import numpy as np
import tensorflow as tf

from suite.audio import SAMPLE_RATE, colored_noise, resample, write_wav
from suite.data import progress
from tasks.samples.voices import LANGUAGES, VARIANTS, Espeak, hum, random_variant, room_noise, to_16k
from tasks.speech_commands import NOISE_DIR, RECIPES, which_set

AUX_WORDS = ["bed", "bird", "cat", "dog", "happy", "house", "marvin", "sheila", "tree", "wow",
             "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
def _babble(rng: np.random.Generator, n: int, talkers: int = 6) -> np.ndarray:
    """Overlapped synthesized sentences: a cafeteria in a few lines."""
    words = AUX_WORDS + ["the", "weather", "meeting", "tomorrow", "coffee", "please", "really", "maybe"]
    out = np.zeros(n, np.float32)
    tts = Espeak.get()
    for _ in range(talkers):
        pos = int(rng.integers(0, SAMPLE_RATE))
        while pos < n:
            text = " ".join(rng.choice(words, 8))
            voice = f"{rng.choice(LANGUAGES)}+{rng.choice(VARIANTS)}"
            s = to_16k(tts.say(text, voice, int(rng.integers(140, 220)), int(rng.integers(20, 80)), 50), tts.rate)
            end = min(n, pos + len(s))
            out[pos:end] += s[: end - pos]
            pos = end + int(rng.integers(0, SAMPLE_RATE // 2))
    return out / (out.std() + 1e-12)


DIGITS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
# `--style digits`: spoken digits in the Free Spoken Digit Dataset's layout; `--style drawn_voices`: the keyword
# sample with half its speakers drawn voices (`voices.random_variant`); on real clips it did not pay (docs/benchmarks.md).
STYLES = {"digits": "digits", "drawn_voices": "drawn_voices"}


def _voice(tts: Espeak, rng: np.random.Generator, random_voices: float) -> str:
    """`language+variant`: a drawn speaker (`random_variant`) for a `random_voices` share, else a shipped one."""
    language = rng.choice(LANGUAGES)
    drawn = random_voices > 0 and rng.random() < random_voices  # No draw at 0: the sample as it was, bit for bit.
    return f"{language}+{tts.variant(random_variant(rng)) if drawn else rng.choice(VARIANTS)}"


def make_digits(out_dir: Path, size: int, seed: int, random_voices: float = 0.0) -> None:
    """Writes about `size` clips of synthesized digits as FSDD ships them:
    `recordings/{digit}_{speaker}_{n}.wav`, 8 kHz mono, trimmed to the word.

    Each speaker is one voice configuration saying every digit `takes` times
    with its own rate and pitch wobble; the loader holds whole speakers out.
    """
    rng = np.random.default_rng(seed)
    tts = Espeak.get()
    folder = Path(out_dir) / "recordings"
    folder.mkdir(parents=True, exist_ok=True)
    takes = 3
    for s in progress(range(max(4, math.ceil(size / (10 * takes)))), desc="spoken digits sample", unit="speaker"):
        voice = _voice(tts, rng, random_voices)
        base_rate, base_pitch = int(rng.integers(110, 230)), int(rng.integers(15, 85))
        speaker = hashlib.sha1(f"{voice}/{base_rate}/{base_pitch}/{seed}/{s}".encode()).hexdigest()[:8]
        for digit, word in enumerate(DIGITS):
            for n in range(takes):
                speech = to_16k(tts.say(word, voice, base_rate + int(rng.integers(-20, 21)),
                                        base_pitch + int(rng.integers(-8, 9)), int(rng.integers(20, 90))), tts.rate)
                loud = np.flatnonzero(np.abs(speech) > 0.02 * np.abs(speech).max())
                speech = speech[max(0, loud[0] - 800) : loud[-1] + 800] if loud.size else speech
                speech = speech / (np.abs(speech).max() + 1e-9) * rng.uniform(0.3, 0.9)
                noise = room_noise(rng, len(speech))
                speech = speech + noise * np.sqrt(np.mean(speech**2) + 1e-12) * 10 ** (-rng.uniform(15, 45) / 20)
                eight_k = resample(tf.constant(speech, tf.float32), SAMPLE_RATE, 8000).numpy()  # FSDD's rate.
                write_wav(folder / f"{digit}_{speaker}_{n}.wav", np.clip(eight_k, -1, 1), 8000)


def make_data(out_dir: Path, size: int, seed: int, style: str = "") -> None:
    """Writes about `size` 1 s clips of synthesized speech in the Speech Commands layout
    (`style="digits"`: spoken digits in FSDD's layout, `make_digits`).

    Each speaker is one espeak-ng voice configuration (language, variant, base
    rate and pitch) and says each of the ten words once plus three other
    words (for `_unknown_`); its file names hash that configuration, so the
    split lists keep speakers apart as the real dataset does. `style="drawn_voices"`:
    half the speakers are drawn voices (`voices.random_variant`), not espeak-ng's
    shipped variants.
    """
    if style == "digits":
        return make_digits(out_dir, size, seed)
    random_voices = 0.5 if style == "drawn_voices" else 0.0
    out_dir = Path(out_dir)
    rng = np.random.default_rng(seed)
    tts = Espeak.get()
    words = list(RECIPES["default"].words)
    per_speaker = len(words) + 3
    speakers = max(4, math.ceil(size / per_speaker))
    noise_dir = out_dir / NOISE_DIR
    noise_dir.mkdir(parents=True, exist_ok=True)
    bank = {
        "white_noise.wav": colored_noise(rng, 30 * SAMPLE_RATE, 0.0),
        "pink_noise.wav": colored_noise(rng, 30 * SAMPLE_RATE, 1.0),
        "brown_noise.wav": colored_noise(rng, 30 * SAMPLE_RATE, 2.0),
        "hum.wav": hum(rng, 30 * SAMPLE_RATE),
        "babble.wav": _babble(rng, 30 * SAMPLE_RATE),
    }
    for name, x in bank.items():
        write_wav(noise_dir / name, 0.3 * x / np.abs(x).max())
    val: list[str] = []
    test: list[str] = []
    for s in progress(range(speakers), desc="speech_commands sample", unit="speaker"):
        voice = _voice(tts, rng, random_voices)
        base_rate, base_pitch = int(rng.integers(110, 230)), int(rng.integers(15, 85))
        speaker = hashlib.sha1(f"{voice}/{base_rate}/{base_pitch}/{seed}/{s}".encode()).hexdigest()[:8]
        said = words + list(rng.choice(AUX_WORDS, 3, replace=False))
        for k, word in enumerate(said):
            speech = tts.say(word, voice, base_rate + int(rng.integers(-20, 21)),
                             base_pitch + int(rng.integers(-8, 9)), int(rng.integers(20, 90)))
            speech = to_16k(speech, tts.rate)[:SAMPLE_RATE]
            speech = speech / (np.abs(speech).max() + 1e-9) * rng.uniform(0.2, 0.9)
            clip = np.zeros(SAMPLE_RATE, np.float32)
            onset = int(rng.integers(0, SAMPLE_RATE - len(speech) + 1))
            clip[onset : onset + len(speech)] = speech
            if rng.random() < 0.3:  # A small room: exponentially decaying reflections.
                length = int(SAMPLE_RATE * rng.uniform(0.05, 0.2))
                ir = rng.normal(size=length) * np.exp(-np.linspace(0, 7, length))
                ir[0] = 1.0
                clip = np.convolve(clip, ir * 0.3)[:SAMPLE_RATE].astype(np.float32)
            noise = room_noise(rng, SAMPLE_RATE)
            snr = rng.uniform(10, 40)
            clip = clip + noise * np.sqrt(np.mean(clip**2) + 1e-12) * 10 ** (-snr / 20)
            folder = out_dir / word
            folder.mkdir(exist_ok=True)
            name = f"{speaker}_nohash_{k if word not in words else 0}.wav"
            write_wav(folder / name, clip)
            split = which_set(name, 10, 10)
            if split != "train":
                (val if split == "val" else test).append(f"{word}/{name}")
    (out_dir / "validation_list.txt").write_text("".join(f"{p}\n" for p in sorted(val)))
    (out_dir / "testing_list.txt").write_text("".join(f"{p}\n" for p in sorted(test)))
