"""Synthesized voices shared by the speech generators: a small espeak-ng binding, the voice
space (languages x variants), resampling to 16 kHz and room noise."""

from __future__ import annotations

import ctypes

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
