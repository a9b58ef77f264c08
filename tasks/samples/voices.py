"""Synthesized voices shared by the speech generators: a small espeak-ng binding, the voice
space (languages x variants, and `random_variant` speakers drawn from a continuum), resampling
to 16 kHz and room noise."""

from __future__ import annotations

import atexit
import ctypes
import hashlib
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
import tensorflow as tf

from suite.audio import SAMPLE_RATE, colored_noise, resample
from suite.errors import UserError

LANGUAGES = ["en", "en-us", "en-gb-scotland", "en-gb-x-rp", "en-029", "en-gb-x-gbclan", "en-gb-x-gbcwmd"]
VARIANTS = ["m1", "m2", "m3", "m4", "m5", "m6", "m7", "f1", "f2", "f3", "f4", "f5", "klatt", "klatt2",
            "klatt3", "croak", "whisper", "Alex", "Andy", "Annie", "Denis", "Gene", "Jacky", "Lee",
            "Mario", "Michael", "Mike", "Storm", "adam", "anika", "aunty", "belinda", "benjamin",
            "boris", "caleb", "david", "ed", "edward", "grandma", "grandpa", "ian", "john", "linda",
            "max", "michel", "norbert", "quincy", "rob", "robert", "steph", "travis", "victor", "zac"]


def random_variant(rng: np.random.Generator) -> str:
    """The text of an espeak-ng variant file for one new speaker (see `Espeak.variant`).

    espeak-ng's ~50 shipped variants are a few fixed points; real speakers differ
    continuously. Drawn here, per speaker: vocal-tract length (all formants scaled
    together, 0.85-1.2), each formant's own offset, height and bandwidth, pitch
    base and range, spectral tilt (`tone`), jitter (`flutter`), creak
    (`roughness`), breathiness (`breath`) for some, consonant strength, and
    espeak-ng's Klatt voice source for a third of them.
    """
    high = rng.random() < 0.5  # Higher voices (women, children) have shorter tracts and higher pitch.
    tract = rng.uniform(1.0, 1.2) if high else rng.uniform(0.85, 1.02)
    low_hz = rng.uniform(130, 230) if high else rng.uniform(65, 125)
    lines = ["language variant", "name random", f"gender {'female' if high else 'male'}",
             f"pitch {low_hz:.0f} {low_hz * rng.uniform(1.15, 1.8):.0f}",
             f"flutter {rng.integers(0, 45)}", f"roughness {rng.integers(0, 6)}",
             f"consonants {rng.integers(60, 140)} {rng.integers(60, 140)}",
             f"voicing {rng.integers(70, 130)}"]
    lines += [f"formant {k} {100 * tract * rng.uniform(0.93, 1.07):.0f} {rng.uniform(60, 140):.0f} "
              f"{rng.uniform(70, 170):.0f}" for k in range(9)]
    tilt = rng.uniform(-0.5, 0.5)  # Brighter or duller voices: amplitude by frequency, 255 = unchanged.
    lines.append("tone " + " ".join(f"{f} {int(np.clip(200 * (1 + tilt * (f - 2000) / 3000), 60, 255))}"
                                    for f in (500, 1500, 2500, 4000)))
    if rng.random() < 0.25:
        lines.append("breath " + " ".join(str(int(v)) for v in rng.integers(0, 40, 8)))
    if rng.random() < 0.33:
        lines.append(f"klatt {rng.integers(1, 5)}")
    return "\n".join(lines) + "\n"


class Espeak:
    """A minimal ctypes binding to the libespeak-ng shipped by `espeakng-loader`.

    It reads espeak-ng's data through a private folder of links to the package's
    files, so `variant` can add voice variants without writing into the package.
    """

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
        self.data = Path(tempfile.mkdtemp(prefix="suite-espeak-"))
        package = Path(espeakng_loader.get_data_path())
        for entry in package.iterdir():  # Links, except voices/!v: a folder that new variants go in.
            if entry.name != "voices":
                os.symlink(entry, self.data / entry.name)
        (self.data / "voices" / "!v").mkdir(parents=True)
        atexit.register(shutil.rmtree, self.data, True)
        for entry in (package / "voices").glob("*"):
            if entry.name != "!v":
                os.symlink(entry, self.data / "voices" / entry.name)
        for entry in (package / "voices" / "!v").glob("*"):  # None there is fine: `variant` adds its own.
            os.symlink(entry, self.data / "voices" / "!v" / entry.name)
        synchronous = 2  # AUDIO_OUTPUT_SYNCHRONOUS
        self.rate = self.lib.espeak_Initialize(synchronous, 0, str(self.data).encode(), 0)
        if self.rate <= 0:
            raise RuntimeError("espeak-ng failed to initialise")
        self.lib.espeak_SetSynthCallback(callback)

    @classmethod
    def get(cls) -> Espeak:
        if cls._instance is None:
            cls._instance = Espeak()
        return cls._instance

    def variant(self, text: str) -> str:
        """Adds a voice variant (the text of an espeak-ng variant file, as
        `random_variant` writes) and returns its name, for `say`'s `voice`
        as `"<language>+<name>"`."""
        name = "suite_" + hashlib.sha1(text.encode()).hexdigest()[:12]
        (self.data / "voices" / "!v" / name).write_text(text)
        return name

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


def to_16k(x: np.ndarray, rate: int) -> np.ndarray:
    """The loader's own band-limited resampler, so generated and read audio match."""
    return resample(tf.constant(x, tf.float32), rate).numpy()


def hum(rng: np.random.Generator, n: int) -> np.ndarray:
    t = np.arange(n) / SAMPLE_RATE
    base = rng.choice([50.0, 60.0])
    x = sum(rng.uniform(0.2, 1) / k * np.sin(2 * np.pi * base * k * t + rng.uniform(0, 6)) for k in range(1, 8))
    x = x + 0.3 * colored_noise(rng, n, 1.0)
    return (x / x.std()).astype(np.float32)


def room_noise(rng: np.random.Generator, n: int) -> np.ndarray:
    kind = rng.integers(4)
    if kind == 3:
        return hum(rng, n)
    return colored_noise(rng, n, float(kind))
