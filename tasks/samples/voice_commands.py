"""Sample data for voice_commands: spoken commands from a grammar, in the LJSpeech layout.

A grammar of actions, devices, rooms, numbers, durations and times gives
thousands of distinct sentences. Each speaker (one espeak-ng voice: language,
variant, base rate and pitch) says a few of them; rooms and background noise are
added as in speech_commands. Written as LJSpeech ships: `wavs/<id>.wav` and
`metadata.csv` (`id|text|normalized text`), with the speaker in the id
(`<speaker>-<n>`).

Validation and test speakers say only sentences drawn from a held-out part of
the grammar (a hash of the sentence), so those splits hold new voices saying
new combinations: the model must spell, not memorise.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from suite.audio import SAMPLE_RATE, write_wav
from tasks.samples.voices import LANGUAGES, VARIANTS, Espeak, room_noise, to_16k
from tasks.voice_commands import RECIPES, speaker_split

ROOMS = ["kitchen", "bedroom", "living room", "bathroom", "garage", "office", "hallway", "garden"]
DEVICES = ["lights", "lamp", "fan", "heater", "radio", "television", "air conditioner", "coffee machine"]
OPENABLE = ["blinds", "curtains", "window", "door", "garage door"]
NUMBERS = ["one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven",
           "twelve", "fifteen", "twenty", "twenty five", "thirty", "forty", "forty five", "fifty", "sixty"]
HOURS = ["one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve"]
MINUTES = ["o'clock", "fifteen", "thirty", "forty five", "ten", "twenty"]
UNITS = ["seconds", "minutes", "hours"]
SINGLE_SHARE = 0.2  # Commands that are one word: most of SINGLE's words occur nowhere else (at one template in 13,
# about 9 takes per word, val WER on single words stayed near 1 while sentences were learnt).
HELD_OUT = 5  # One sentence of the grammar in HELD_OUT is said by validation and test voices only.
SINGLE = ["yes", "no", "stop", "go", "up", "down", "left", "right", "on", "off", "zero", "one", "two", "three",
          "four", "five", "six", "seven", "eight", "nine", "cancel", "pause", "resume", "louder", "quieter"]


def sentence(rng: np.random.Generator) -> str:
    """One command from the grammar."""
    room, device, thing = rng.choice(ROOMS), rng.choice(DEVICES), rng.choice(OPENABLE)
    number, hour, minute, unit = rng.choice(NUMBERS), rng.choice(HOURS), rng.choice(MINUTES), rng.choice(UNITS)
    templates = [
        f"turn {rng.choice(['on', 'off'])} the {room} {device}",
        f"switch {rng.choice(['on', 'off'])} the {device} in the {room}",
        f"{rng.choice(['open', 'close'])} the {room} {thing}",
        f"dim the {room} lights to {number} percent",
        f"set the {room} temperature to {number} degrees",
        f"set a timer for {number} {unit}",
        f"wake me up at {hour} {minute}",
        f"remind me in {number} {unit} to check the {device}",
        f"play music in the {room}",
        f"turn the volume {rng.choice(['up', 'down'])} by {number}",
        f"is the {room} {thing} open",
        f"move the {room} {thing} {rng.choice(['up', 'down', 'left', 'right'])}",
    ]
    return str(rng.choice(SINGLE)) if rng.random() < SINGLE_SHARE else templates[int(rng.integers(len(templates)))]


def held_out(text: str) -> bool:
    """The part of the grammar only validation and test speakers say: one sentence in HELD_OUT."""
    return int(hashlib.sha1(text.encode()).hexdigest(), 16) % HELD_OUT == 0


def make_data(out_dir: Path, size: int, seed: int) -> None:
    """Writes about `size` spoken commands (1-4 s, 16 kHz) in the LJSpeech layout."""
    out_dir = Path(out_dir)
    (out_dir / "wavs").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    tts = Espeak.get()
    recipe = RECIPES["default"]
    limit = int(recipe.max_seconds * SAMPLE_RATE)
    per_speaker = 12
    rows = []
    for s in range(max(6, -(-size // per_speaker))):
        language, variant = rng.choice(LANGUAGES), rng.choice(VARIANTS)
        base_rate, base_pitch = int(rng.integers(130, 210)), int(rng.integers(20, 80))
        voice = f"{language}+{variant}"
        speaker = "spk" + hashlib.sha1(f"{voice}/{base_rate}/{base_pitch}/{seed}/{s}".encode()).hexdigest()[:6]
        held_speaker = speaker_split(speaker, recipe.val_percent, recipe.test_percent) != "train"
        said = 0
        while said < per_speaker:
            text = sentence(rng)
            # Held-out sentences for validation and test voices only; single words for all, as often in each
            # split (a held-out speaker keeps one sentence in HELD_OUT, so one single word in HELD_OUT too).
            if (text in SINGLE and held_speaker and rng.random() > 1 / HELD_OUT) or \
                    (text not in SINGLE and held_out(text) != held_speaker):
                continue
            speech = tts.say(text, voice, base_rate + int(rng.integers(-15, 16)), base_pitch + int(rng.integers(-6, 7)),
                             int(rng.integers(30, 90)))
            speech = to_16k(speech, tts.rate)
            speech = speech[np.flatnonzero(np.abs(speech) > 0.01).min():] if np.abs(speech).max() > 0.01 else speech
            if len(speech) > limit - SAMPLE_RATE // 5:
                continue  # Too long for the model's window: say another one.
            speech = speech / (np.abs(speech).max() + 1e-9) * rng.uniform(0.2, 0.9)
            clip = np.zeros(len(speech) + int(rng.integers(SAMPLE_RATE // 20, SAMPLE_RATE // 5)) * 2, np.float32)
            onset = int(rng.integers(0, len(clip) - len(speech) + 1))
            clip[onset: onset + len(speech)] = speech
            if rng.random() < 0.3:  # A small room: exponentially decaying reflections.
                length = int(SAMPLE_RATE * rng.uniform(0.05, 0.2))
                ir = rng.normal(size=length) * np.exp(-np.linspace(0, 7, length))
                ir[0] = 1.0
                clip = np.convolve(clip, ir * 0.3)[: len(clip)].astype(np.float32)
            noise = room_noise(rng, len(clip))
            snr = rng.uniform(10, 40)
            clip = clip + noise * np.sqrt(np.mean(clip**2) + 1e-12) * 10 ** (-snr / 20)
            ident = f"{speaker}-{said:04d}"
            write_wav(out_dir / "wavs" / f"{ident}.wav", clip)
            written = text.capitalize() + ("?" if text.startswith("is ") else ".")
            rows.append(f"{ident}|{written}|{text}\n")
            said += 1
    (out_dir / "metadata.csv").write_text("".join(rows), encoding="utf-8")
