"""A synthetic speechocean762: espeak-ng speech with controlled degradations.

Every utterance is planned first (words, and which degradations it gets), its labels follow from
the plan by fixed rules, and only then is it spoken; so the labels are exactly as learnable as
the degradations are audible:

- mispronounced phones (typical L2 substitutions, dropped final consonants) lower phone, word and
  sentence accuracy; a misplaced word stress gives stress 5;
- pauses between words, a repeated word and slow speech lower fluency;
- word-by-word reading at an unsteady speed (choppy intonation) and slow speech lower prosody;
- words left out lower completeness (and score 0);
- totals follow from their parts.

The corpus is written in the official release layout (read it with
:class:`~apa.data.speechocean762.Speechocean762`) and is the same, byte for byte, for the same
seed and settings. ``python -m apa.data.synthetic OUT_DIR`` writes one by hand.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import logging
import math
import os
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from functools import cache
from importlib.resources import files
from pathlib import Path

import numpy as np
import soundfile
import soxr
from tqdm.auto import tqdm

from apa.atomic import build_folder
from apa.data.audio import SAMPLE_RATE
from apa.data.corpus import SpeakerHeldOut
from apa.data.records import Scores, Utterance, WordScores
from apa.data.speechocean762 import Speechocean762

log = logging.getLogger(__name__)

GENERATOR_VERSION = 1
ESPEAK = "espeak-ng"

# ARPAbet (without the stress digit) -> espeak-ng phoneme mnemonic; stressed AH/ER differ.
ESPEAK_PHONEMES = {
    "AA": "A:", "AE": "a", "AH": "@", "AO": "O:", "AW": "aU", "AY": "aI", "EH": "E", "ER": "3", "EY": "eI",
    "IH": "I", "IY": "i:", "OW": "oU", "OY": "OI", "UH": "U", "UW": "u:", "B": "b", "CH": "tS", "D": "d",
    "DH": "D", "F": "f", "G": "g", "HH": "h", "JH": "dZ", "K": "k", "L": "l", "M": "m", "N": "n", "NG": "N",
    "P": "p", "R": "r", "S": "s", "SH": "S", "T": "t", "TH": "T", "V": "v", "W": "w", "Y": "j", "Z": "z",
    "ZH": "Z",
}  # fmt: skip
STRESSED = {"AH": "V", "ER": "3:"}
VOWELS = {"AA", "AE", "AH", "AO", "AW", "AY", "EH", "ER", "EY", "IH", "IY", "OW", "OY", "UH", "UW"}
# Typical L2 English substitutions: phone -> (what is said instead, its phone score 0-2).
# A close vowel counts as heavily accented (1), a different consonant as wrong (0).
SUBSTITUTIONS = {
    "TH": (("S", 0), ("T", 0), ("F", 0)), "DH": (("D", 0), ("Z", 0)), "R": (("L", 0),), "L": (("R", 0),),
    "V": (("W", 0), ("B", 0)), "W": (("V", 0),), "Z": (("S", 0),), "SH": (("S", 0),), "CH": (("SH", 0),),
    "JH": (("ZH", 0), ("Y", 0)), "NG": (("N", 0),), "B": (("P", 0),), "P": (("B", 0),), "D": (("T", 0),),
    "T": (("D", 0),), "G": (("K", 0),), "K": (("G", 0),), "F": (("P", 0),), "M": (("N", 0),),
    "N": (("M", 0),), "S": (("SH", 0),), "HH": (("K", 0),), "Y": (("JH", 0),),
    "IY": (("IH", 1),), "IH": (("IY", 1),), "AE": (("EH", 1), ("AA", 0)), "EH": (("AE", 1),),
    "UW": (("UH", 1),), "UH": (("UW", 1),), "AA": (("AH", 1),), "AH": (("AA", 1),), "AO": (("OW", 1),),
    "OW": (("AO", 1),), "EY": (("EH", 1),), "ER": (("AA", 0),), "AY": (("AA", 0),), "AW": (("AA", 0),),
}  # fmt: skip
FINAL_CONSONANTS_DROPPED = {"S", "Z", "T", "D", "K"}
TEMPLATES = (
    ("name", "verb", "determiner", "adjective", "noun"),
    ("name", "verb", "determiner", "noun"),
    ("determiner", "adjective", "noun"),
    ("number", "number", "number", "number"),
)
VOICES = ("en-us", "en", "en-029", "en-gb-scotland", "en-gb-x-rp")
VARIANTS = (("m1", "m"), ("m3", "m"), ("m5", "m"), ("m7", "m"), ("f1", "f"), ("f2", "f"), ("f3", "f"), ("f4", "f"))
LEAD_SILENCE = 0.15  # seconds before and after the speech


def check_espeak() -> str:
    path = shutil.which(ESPEAK)
    if path is None:
        raise RuntimeError(
            "the synthetic corpus needs espeak-ng, which is not installed: run `sudo apt-get install espeak-ng` "
            "(Debian/Ubuntu), `brew install espeak-ng` (macOS), or `make system-packages` as root"
        )
    return path


@cache
def lexicon() -> dict[str, list[tuple[str, tuple[str, ...]]]]:
    """Category -> [(word, phones)] from the packaged lexicon."""
    words: dict[str, list[tuple[str, tuple[str, ...]]]] = {}
    text = files("apa.data").joinpath("synthetic_lexicon.tsv").read_text(encoding="utf-8")
    for line in text.splitlines():
        if line and not line.startswith("#"):
            category, word, phones = line.split("\t")
            words.setdefault(category, []).append((word, tuple(phones.split())))
    return words


def base(phone: str) -> str:
    return phone.rstrip("012")


def half_up(x: float) -> int:
    return math.floor(x + 0.5)


@dataclass(frozen=True)
class Speaker:
    id: str
    voice: str
    gender: str
    age: int
    pitch: int  # espeak-ng -p, 0-99
    speed: int  # espeak-ng -s, words per minute
    accent: float  # chance that a word is mispronounced


@dataclass(frozen=True)
class Segment:
    """Words spoken in one breath (one espeak-ng call), then a pause."""

    phonemes: str
    speed: int
    pause: float


@dataclass
class Plan:
    """One utterance: what is said, how, and the labels that follow."""

    uid: str
    speaker: Speaker
    text: str
    segments: list[Segment] = field(default_factory=list)
    scores: Scores = field(default_factory=Scores)


def speak_word(phones: tuple[str, ...], stressed: int | None) -> str:
    """espeak-ng phonemes of a word, with primary stress on vowel number ``stressed``."""
    out, vowel = [], 0
    for phone in phones:
        symbol = base(phone)
        if symbol in VOWELS:
            mark = vowel == stressed
            out.append(("'" + STRESSED.get(symbol, ESPEAK_PHONEMES[symbol])) if mark else ESPEAK_PHONEMES[symbol])
            vowel += 1
        else:
            out.append(ESPEAK_PHONEMES[symbol])
    return "".join(out)


def plan_word(rng: np.random.Generator, category: str, phones: tuple[str, ...], accent: float):
    """(espeak phonemes, phone scores 0-2, stress score) of one spoken word."""
    scores = [2.0] * len(phones)
    spoken = list(phones)
    if rng.random() < accent:
        candidates = [i for i, p in enumerate(phones) if base(p) in SUBSTITUTIONS]
        for i in rng.choice(candidates, size=min(len(candidates), rng.integers(1, 3)), replace=False):
            replacement, score = SUBSTITUTIONS[base(phones[i])][rng.integers(len(SUBSTITUTIONS[base(phones[i])]))]
            spoken[i] = replacement + phones[i][len(base(phones[i])) :]
            scores[i] = float(score)
    if base(phones[-1]) in FINAL_CONSONANTS_DROPPED and rng.random() < accent / 3:
        spoken[-1], scores[-1] = "", 0.0  # the final consonant is not said
    vowels = [i for i, p in enumerate(phones) if base(p) in VOWELS]
    stressed = next((k for k, i in enumerate(vowels) if phones[i].endswith("1")), 0)
    stress = 10
    if len(vowels) > 1 and rng.random() < 0.25:
        stressed = (stressed + rng.integers(1, len(vowels))) % len(vowels)
        stress = 5
    said = [p for p in spoken if p]
    said_stress = None if category == "determiner" else stressed
    return speak_word(tuple(said), said_stress), scores, stress


def plan_utterance(rng: np.random.Generator, uid: str, speaker: Speaker) -> Plan:
    words = [(c, *lexicon()[c][rng.integers(len(lexicon()[c]))]) for c in TEMPLATES[rng.integers(len(TEMPLATES))]]
    n = len(words)
    dropped = set()
    if n >= 3 and rng.random() < 0.2:
        dropped = set(rng.choice(n, size=rng.integers(1, 3 if n >= 4 else 2), replace=False).tolist())
    spoken = [i for i in range(n) if i not in dropped]

    word_scores, phonemes = [], {}
    for i, (category, text, phones) in enumerate(words):
        if i in dropped:
            word_scores.append(WordScores(text, 0, 5, 0, phones, (0.0,) * len(phones)))
            continue
        phonemes[i], phone_scores, stress = plan_word(rng, category, phones, speaker.accent)
        accuracy = half_up(5 * float(np.mean(phone_scores)))
        total = half_up((2 * accuracy + stress) / 3)
        word_scores.append(WordScores(text, accuracy, stress, total, phones, tuple(phone_scores)))

    slow = rng.random() < 0.2
    choppy = rng.random() < 0.25
    repeated = spoken[rng.integers(len(spoken))] if rng.random() < 0.15 else None
    gaps = len(spoken) - 1
    pauses = set(rng.choice(gaps, size=min(gaps, rng.integers(1, 4)), replace=False).tolist()) if gaps else set()
    if rng.random() >= 0.35:
        pauses = set()

    speed = int(speaker.speed * (0.55 if slow else 1.0))
    plan = Plan(uid, speaker, " ".join(words[i][1] for i in range(n)))
    breath: list[str] = []
    for k, i in enumerate(spoken):
        if i == repeated:  # a stammer: the word, a short break, the word again
            plan.segments.append(Segment(phonemes[i], speed, 0.25))
        breath.append(phonemes[i])
        last = k == len(spoken) - 1
        if choppy or last or k in pauses:
            word_speed = int(speed * rng.uniform(0.6, 1.5)) if choppy else speed
            pause = 0.0 if last else float(rng.uniform(0.4, 1.2)) if k in pauses else 0.04
            plan.segments.append(Segment(" ".join(breath), word_speed, pause))
            breath = []

    stress_errors = sum(w.stress == 5 for i, w in enumerate(word_scores) if i not in dropped)
    fluency = 10 - 1.5 * len(pauses) - 2 * (repeated is not None) - 2 * slow - 1 * choppy
    prosodic = 10 - 4 * choppy - 1 * slow - 0.5 * len(pauses) - 1 * min(stress_errors, 2)
    accuracy = half_up(float(np.mean([word_scores[i].accuracy for i in spoken])))
    completeness = round(10 * len(spoken) / n, 1)
    fluency, prosodic = (half_up(min(10, max(1, x))) for x in (fluency, prosodic))
    total = half_up((accuracy + fluency + prosodic) / 3 * completeness / 10)
    plan.scores = Scores(accuracy, fluency, prosodic, completeness, total, tuple(word_scores))
    return plan


def speak(segment: Segment, speaker: Speaker) -> tuple[np.ndarray, int]:
    command = [ESPEAK, "-v", speaker.voice, "-p", str(speaker.pitch), "-s", str(segment.speed), "--stdout"]
    result = subprocess.run([*command, f"[[{segment.phonemes}]]"], capture_output=True, check=True)
    audio, rate = soundfile.read(io.BytesIO(result.stdout), dtype="float32")
    return audio, rate


def synthesize(plan: Plan) -> np.ndarray:
    """The utterance at 16 kHz: its segments with their pauses, framed by a little silence."""
    pieces, rate = [], SAMPLE_RATE
    for segment in plan.segments:
        audio, rate = speak(segment, plan.speaker)
        pieces += [audio, np.zeros(int(segment.pause * rate), dtype=np.float32)]
    silence = np.zeros(int(LEAD_SILENCE * rate), dtype=np.float32)
    audio = np.concatenate([silence, *pieces, silence])
    return soxr.resample(audio, rate, SAMPLE_RATE).astype(np.float32)


def make_speakers(rng: np.random.Generator, count: int) -> list[Speaker]:
    speakers = []
    for k in range(count):
        variant, gender = VARIANTS[rng.integers(len(VARIANTS))]
        speakers.append(
            Speaker(
                id=f"{9000 + k:04d}",
                voice=f"{VOICES[rng.integers(len(VOICES))]}+{variant}",
                gender=gender,
                age=int(rng.integers(6, 45)),
                pitch=int(rng.integers(30, 71)),
                speed=int(rng.integers(140, 181)),
                accent=float(rng.uniform(0.05, 0.6)),
            )
        )
    return speakers


@dataclass(frozen=True)
class SyntheticSettings:
    seed: int = 0
    speakers: int = 40
    utterances_per_speaker: int = 10
    test_speakers: int = 8

    def __post_init__(self) -> None:
        if not 0 < self.test_speakers < self.speakers or self.utterances_per_speaker < 1:
            raise ValueError(f"need 0 < test_speakers < speakers and utterances per speaker >= 1, got {self}")

    @property
    def fingerprint(self) -> str:
        settings = {"generator": GENERATOR_VERSION, **asdict(self)}
        return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:12]


def generate(out_dir: str | Path, settings: SyntheticSettings = SyntheticSettings(), workers: int | None = None):
    """Write the corpus to ``out_dir`` (which must not exist yet) and return its path."""
    check_espeak()
    out = Path(out_dir)
    if out.exists():
        raise FileExistsError(f"{out} exists; the generator writes a new folder")
    rng = np.random.default_rng(settings.seed)
    speakers = make_speakers(rng, settings.speakers)
    plans = [
        plan_utterance(rng, f"{speaker.id}{n:05d}", speaker)
        for speaker in speakers
        for n in range(settings.utterances_per_speaker)
    ]
    with build_folder(out) as staging:
        with ThreadPoolExecutor(max_workers=workers or os.cpu_count()) as pool:
            audio = pool.map(synthesize, plans)
            for plan, samples in tqdm(zip(plans, audio, strict=True), total=len(plans), desc="espeak-ng", unit="utt"):
                path = staging / "WAVE" / f"SPEAKER{plan.speaker.id}" / f"{plan.uid}.WAV"
                path.parent.mkdir(parents=True, exist_ok=True)
                soundfile.write(path, samples, SAMPLE_RATE, subtype="PCM_16", format="WAV")
        test_ids = {s.id for s in speakers[-settings.test_speakers :]}
        for split in ("train", "test"):
            write_split(staging / split, [p for p in plans if (p.speaker.id in test_ids) == (split == "test")])
        (staging / "resource").mkdir()
        labels = {p.uid: {"text": p.text, **p.scores.to_json()} for p in plans}
        (staging / "resource" / "scores.json").write_text(json.dumps(labels, indent=1, sort_keys=True) + "\n")
        (staging / "README.md").write_text(readme(settings))
    log.info("wrote %d synthetic utterances to %s", len(plans), out)
    return out


def write_split(folder: Path, plans: list[Plan]) -> None:
    folder.mkdir(parents=True)
    speakers = {p.speaker.id: p.speaker for p in plans}
    tables = {
        "wav.scp": [f"{p.uid}\tWAVE/SPEAKER{p.speaker.id}/{p.uid}.WAV" for p in plans],
        "text": [f"{p.uid}\t{p.text}" for p in plans],
        "utt2spk": [f"{p.uid} {p.speaker.id}" for p in plans],
        "spk2utt": [f"{s} {' '.join(p.uid for p in plans if p.speaker.id == s)}" for s in speakers],
        "spk2age": [f"{s}\t{speaker.age}" for s, speaker in speakers.items()],
        "spk2gender": [f"{s}\t{speaker.gender}" for s, speaker in speakers.items()],
    }
    for name, lines in tables.items():
        (folder / name).write_text("\n".join(lines) + "\n", encoding="utf-8")


def readme(settings: SyntheticSettings) -> str:
    return (
        "# Synthetic speechocean762\n\n"
        "espeak-ng speech with controlled degradations, written by `apa.data.synthetic` "
        f"(generator version {GENERATOR_VERSION}) with {asdict(settings)}.\n"
        "Same layout and schema as the official release; labels follow from the degradations.\n"
    )


@dataclass
class SyntheticCorpus(SpeakerHeldOut):
    """What ``conf/data/synthetic.yaml`` instantiates: generated on first use into
    ``cache_dir/synthetic-<fingerprint>``, then read like the official release."""

    cache_dir: str
    seed: int = 0
    speakers: int = 40
    utterances_per_speaker: int = 10
    test_speakers: int = 8
    strict: bool = True

    @property
    def settings(self) -> SyntheticSettings:
        return SyntheticSettings(self.seed, self.speakers, self.utterances_per_speaker, self.test_speakers)

    @property
    def path(self) -> Path:
        return Path(self.cache_dir).expanduser() / f"synthetic-{self.settings.fingerprint}"

    def read(self, split: str) -> list[Utterance]:
        if not self.path.is_dir():
            generate(self.path, self.settings)
        return Speechocean762(str(self.path), strict=self.strict).read(split)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Write a synthetic speechocean762 corpus with espeak-ng.")
    parser.add_argument("out_dir", type=Path)
    for name, default in asdict(SyntheticSettings()).items():
        parser.add_argument(f"--{name.replace('_', '-')}", type=int, default=default)
    args = parser.parse_args(argv)
    settings = {name: getattr(args, name) for name in asdict(SyntheticSettings())}
    logging.basicConfig(level=logging.INFO)
    generate(args.out_dir, SyntheticSettings(**settings))


if __name__ == "__main__":
    main()
