"""What every corpus reader shares: the interface, and how bad entries are reported.

A reader checks every utterance (labels, audio header, the pairing of labels and audio). With
``strict`` (the default) any problem stops the run with an error listing them all; otherwise the
bad utterances are left out and counted in a warning that names them. Nothing is dropped silently.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

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
