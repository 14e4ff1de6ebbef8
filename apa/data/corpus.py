"""What every corpus reader shares: the interface, how bad entries are reported, and the
development split.

A reader checks every utterance (labels, audio header, the pairing of labels and audio). With
``strict`` (the default) any problem stops the run with an error listing them all; otherwise the
bad utterances are left out and counted in a warning that names them. Nothing is dropped silently.

Every reader can hold out some of its training speakers as a ``dev`` split (``dev_speakers``), so
that checkpoints are chosen on speakers the model never trained on and the test split stays
untouched until the end.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np

from apa.data.records import Utterance

log = logging.getLogger(__name__)

SHOWN_PROBLEMS = 10


@dataclass(frozen=True)
class DataProblem:
    where: str  # an utterance id, or a file and line
    message: str

    def __str__(self) -> str:
        return f"{self.where}: {self.message}"


class CorpusError(ValueError):
    """Bad entries in a corpus; the message lists them (the first few, and how many)."""

    def __init__(self, source: str, problems: list[DataProblem]):
        self.problems = problems
        super().__init__(f"{source}: {describe(problems)}\n(set strict=false to skip these utterances instead)")


def describe(problems: list[DataProblem]) -> str:
    shown = "\n  ".join(str(p) for p in problems[:SHOWN_PROBLEMS])
    more = f"\n  ... and {len(problems) - SHOWN_PROBLEMS} more" if len(problems) > SHOWN_PROBLEMS else ""
    return f"{len(problems)} bad entries:\n  {shown}{more}"


def accept(results: Iterable[Utterance | DataProblem], source: str, strict: bool) -> list[Utterance]:
    """Keep the utterances; raise on problems when ``strict``, else warn with their count."""
    utterances, problems = [], []
    for result in results:
        (problems if isinstance(result, DataProblem) else utterances).append(result)
    if problems and strict:
        raise CorpusError(source, problems)
    if problems:
        log.warning("%s: skipped %s", source, describe(problems))
    return utterances


@runtime_checkable
class Corpus(Protocol):
    """What every ``conf/data`` entry instantiates."""

    def utterances(self, split: str) -> list[Utterance]: ...


TRAIN, DEV = "train", "dev"


def check_limit(limit: int | None) -> None:
    """``limit`` (the first N utterances of each split) must be a count of at least 1, or None for
    all: a negative one would silently drop the last utterances and 0 would score nothing."""
    if limit is not None and (not isinstance(limit, int) or isinstance(limit, bool) or limit < 1):
        raise ValueError(f"limit={limit!r}: expected a whole number of utterances (at least 1), or null for all")


def held_out_speakers(utterances: list[Utterance], dev_speakers: float | int, seed: int) -> set[str]:
    """A seeded choice of speakers: ``dev_speakers`` is a fraction (a float in (0, 1)) or a count
    (an int) of them; a fraction takes at least one speaker."""
    unknown = [u.id for u in utterances if not u.speaker]
    if unknown:
        raise ValueError(f"a dev split is carved by speaker, but {len(unknown)} utterances have none: {unknown[:5]}")
    speakers = sorted({u.speaker for u in utterances})
    if isinstance(dev_speakers, float) and 0 < dev_speakers < 1:
        count = max(1, round(dev_speakers * len(speakers)))
    elif isinstance(dev_speakers, int) and not isinstance(dev_speakers, bool) and 0 < dev_speakers < len(speakers):
        count = dev_speakers
    else:
        expected = f"a fraction in (0, 1) or a whole count below the {len(speakers)} training speakers"
        raise ValueError(f"dev_speakers={dev_speakers!r}: expected {expected}")
    return set(np.random.default_rng(seed).choice(speakers, size=count, replace=False).tolist())


@dataclass(kw_only=True)
class SpeakerHeldOut:
    """Base of the readers: ``utterances("dev")`` is ``dev_speakers`` of the training speakers
    (chosen with ``dev_seed``, the same for every training seed) and ``utterances("train")`` the
    rest; without ``dev_speakers`` every split is read as the corpus has it. Readers implement
    ``read(split)``."""

    dev_speakers: float | int | None = None
    dev_seed: int = 0

    def read(self, split: str) -> list[Utterance]:
        raise NotImplementedError

    @property
    def has_dev(self) -> bool:
        return bool(self.dev_speakers)

    def utterances(self, split: str) -> list[Utterance]:
        if split not in (TRAIN, DEV) or not self.has_dev:
            return self.read(split)
        train = self.read(TRAIN)
        dev = held_out_speakers(train, self.dev_speakers, self.dev_seed)
        kept = [u for u in train if (u.speaker in dev) == (split == DEV)]
        log.info("%s split: %d utterances of %d speakers", split, len(kept), len({u.speaker for u in kept}))
        return kept
