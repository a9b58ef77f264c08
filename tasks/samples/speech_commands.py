"""Sample data for speech_commands: synthesized speech in the Speech Commands layout.

espeak-ng (through a small ctypes binding to the library `espeakng-loader` ships) says each
keyword in many voices, rates and pitches; rooms and background noise are added, and the
split lists keep speakers apart as the real dataset's do.

`tasks/speech_commands.py` calls `make_data` lazily, so the drawing code loads only
when data is made.
"""

from __future__ import annotations

import ctypes
import hashlib
import math
from pathlib import Path

import numpy as np
import tensorflow as tf

from suite.audio import SAMPLE_RATE, colored_noise, resample, write_wav
from suite.errors import UserError
from tasks.speech_commands import NOISE_DIR, RECIPES, which_set

AUX_WORDS = ["bed", "bird", "cat", "dog", "happy", "house", "marvin", "sheila", "tree", "wow",
             "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
LANGUAGES = ["en", "en-us", "en-gb-scotland", "en-gb-x-rp", "en-029", "en-gb-x-gbclan", "en-gb-x-gbcwmd"]
VARIANTS = ["m1", "m2", "m3", "m4", "m5", "m6", "m7", "f1", "f2", "f3", "f4", "f5", "klatt", "klatt2",
            "klatt3", "croak", "whisper", "Alex", "Andy", "Annie", "Denis", "Gene", "Jacky", "Lee",
            "Mario", "Michael", "Mike", "Storm", "adam", "anika", "aunty", "belinda", "benjamin",
            "boris", "caleb", "david", "ed", "edward", "grandma", "grandpa", "ian", "john", "linda",
            "max", "michel", "norbert", "quincy", "rob", "robert", "steph", "travis", "victor", "zac"]


class Espeak:
    """A minimal ctypes binding to the libespeak-ng shipped by `espeakng-loader`."""

    _instance = None

    def __init__(self) -> None:
        try:
            import espeakng_loader
        except ImportError as e:
            raise UserError("Expected the package espeakng-loader (pip install espeakng-loader). "
                            "Received: ImportError") from e
        self.lib = ctypes.CDLL(espeakng_loader.get_library_path())
        self.chunks: list[np.ndarray] = []

        @ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p)
        def callback(wav, n, events):
            if n > 0:
                self.chunks.append(np.ctypeslib.as_array(wav, shape=(n,)).copy())
            return 0

        self._callback = callback  # Keep a reference: C holds only a pointer.
        self.lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        synchronous = 2  # AUDIO_OUTPUT_SYNCHRONOUS
        self.rate = self.lib.espeak_Initialize(synchronous, 0, espeakng_loader.get_data_path().encode(), 0)
        if self.rate <= 0:
            raise RuntimeError("espeak-ng failed to initialise")
        self.lib.espeak_SetSynthCallback(callback)

    @classmethod
    def get(cls) -> Espeak:
        if cls._instance is None:
            cls._instance = Espeak()
        return cls._instance

    def say(self, text: str, voice: str, rate: int, pitch: int, pitch_range: int) -> np.ndarray:
        """Float samples at `self.rate` (22,050 Hz)."""
        if self.lib.espeak_SetVoiceByName(voice.encode()) != 0:
            raise ValueError(f"espeak-ng has no voice {voice!r}")
        for param, value in ((1, rate), (3, pitch), (4, pitch_range)):  # RATE, PITCH, RANGE
            self.lib.espeak_SetParameter(param, int(value), 0)
        self.chunks = []
        data = text.encode()
        self.lib.espeak_Synth(data, len(data) + 1, 0, 0, 0, 1, None, None)  # espeakCHARS_UTF8
        self.lib.espeak_Synchronize()
        audio = np.concatenate(self.chunks) if self.chunks else np.zeros(1, np.int16)
        return audio.astype(np.float32) / 32768.0


def _to_16k(x: np.ndarray, rate: int) -> np.ndarray:
    """The loader's own band-limited resampler, so generated and read audio match."""
    return resample(tf.constant(x, tf.float32), rate).numpy()


def _hum(rng: np.random.Generator, n: int) -> np.ndarray:
    t = np.arange(n) / SAMPLE_RATE
    base = rng.choice([50.0, 60.0])
    x = sum(rng.uniform(0.2, 1) / k * np.sin(2 * np.pi * base * k * t + rng.uniform(0, 6)) for k in range(1, 8))
    x = x + 0.3 * colored_noise(rng, n, 1.0)
    return (x / x.std()).astype(np.float32)


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
            s = _to_16k(tts.say(text, voice, int(rng.integers(140, 220)), int(rng.integers(20, 80)), 50), tts.rate)
            end = min(n, pos + len(s))
            out[pos:end] += s[: end - pos]
            pos = end + int(rng.integers(0, SAMPLE_RATE // 2))
    return out / (out.std() + 1e-12)


def _room(rng: np.random.Generator, n: int) -> np.ndarray:
    kind = rng.integers(4)
    if kind == 3:
        return _hum(rng, n)
    return colored_noise(rng, n, float(kind))


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
        "hum.wav": _hum(rng, 30 * SAMPLE_RATE),
        "babble.wav": _babble(rng, 30 * SAMPLE_RATE),
    }
    for name, x in bank.items():
        write_wav(noise_dir / name, 0.3 * x / np.abs(x).max())
    val: list[str] = []
    test: list[str] = []
    for s in range(speakers):
        language, variant = rng.choice(LANGUAGES), rng.choice(VARIANTS)
        base_rate, base_pitch = int(rng.integers(110, 230)), int(rng.integers(15, 85))
        voice = f"{language}+{variant}"
        speaker = hashlib.sha1(f"{voice}/{base_rate}/{base_pitch}/{seed}/{s}".encode()).hexdigest()[:8]
        said = words + list(rng.choice(AUX_WORDS, 3, replace=False))
        for k, word in enumerate(said):
            speech = tts.say(word, voice, base_rate + int(rng.integers(-20, 21)),
                             base_pitch + int(rng.integers(-8, 9)), int(rng.integers(20, 90)))
            speech = _to_16k(speech, tts.rate)[:SAMPLE_RATE]
            speech = speech / (np.abs(speech).max() + 1e-9) * rng.uniform(0.2, 0.9)
            clip = np.zeros(SAMPLE_RATE, np.float32)
            onset = int(rng.integers(0, SAMPLE_RATE - len(speech) + 1))
            clip[onset : onset + len(speech)] = speech
            if rng.random() < 0.3:  # A small room: exponentially decaying reflections.
                length = int(SAMPLE_RATE * rng.uniform(0.05, 0.2))
                ir = rng.normal(size=length) * np.exp(-np.linspace(0, 7, length))
                ir[0] = 1.0
                clip = np.convolve(clip, ir * 0.3)[:SAMPLE_RATE].astype(np.float32)
            noise = _room(rng, SAMPLE_RATE)
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
