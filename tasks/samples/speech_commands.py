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

from suite.audio import SAMPLE_RATE, colored_noise, write_wav
from suite.data import progress
from tasks.samples.voices import LANGUAGES, VARIANTS, Espeak, hum, room_noise, to_16k
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


def make_data(out_dir: Path, size: int, seed: int) -> None:
    """Writes about `size` 1 s clips of synthesized speech in the Speech Commands layout.

    Each speaker is one espeak-ng voice configuration (language, variant, base
    rate and pitch) and says each of the ten words once plus three other
    words (for `_unknown_`); its file names hash that configuration, so the
    split lists keep speakers apart as the real dataset does.
    """
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
        language, variant = rng.choice(LANGUAGES), rng.choice(VARIANTS)
        base_rate, base_pitch = int(rng.integers(110, 230)), int(rng.integers(15, 85))
        voice = f"{language}+{variant}"
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
