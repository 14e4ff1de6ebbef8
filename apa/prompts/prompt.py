"""A prompt: the instruction (from config), the aspects it asks for, and its answer format."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from apa.data.records import Scores, Utterance
from apa.data.scales import ASPECTS
from apa.prompts.formats import JsonFormat, LineFormat, TargetFormat
from apa.prompts.slots import Rendered
from apa.prompts.vocabulary import ScoreVocabulary

PLACEHOLDER = re.compile(r"\{(text|words|phones)\}")
CUT_SHORT = re.compile(r"\S*$")  # the last word of a cut answer, which may be incomplete


@dataclass
class Prompt:
    """What ``conf/prompt/*.yaml`` instantiates.

    ``instruction`` may use ``{text}`` (the reference sentence), ``{words}`` (its words) and
    ``{phones}`` (the canonical phones, words separated by ``-``); other braces are left alone.
    """

    name: str
    instruction: str
    aspects: Mapping[str, Sequence[str]]
    format: TargetFormat = field(default_factory=LineFormat)
    system: str | None = None
    score_tokens: str = "added"

    def __post_init__(self) -> None:
        self.aspects = {g: tuple(a) for g, a in self.aspects.items() if a}
        for granularity, aspects in self.aspects.items():
            known = ASPECTS.get(granularity)
            if known is None or not set(aspects) <= set(known):
                raise ValueError(
                    f"prompt {self.name}: aspects {granularity}={list(aspects)} are not among "
                    f"{', '.join(f'{g}={list(a)}' for g, a in ASPECTS.items())}"
                )
        if not self.aspects:
            raise ValueError(f"prompt {self.name}: asks for no scores")
        if isinstance(self.format, JsonFormat) and (set(self.aspects) != {"sentence"} or self.score_tokens != "digits"):
            raise ValueError(f"prompt {self.name}: the JSON format holds sentence scores written as digits")
        self.vocabulary = ScoreVocabulary(self.score_tokens)

    @property
    def asked(self) -> set[tuple[str, str]]:
        """Every (granularity, aspect) the prompt asks for."""
        return {(g, a) for g, aspects in self.aspects.items() for a in aspects}

    @property
    def aspect_names(self) -> list[str]:
        """``granularity/aspect`` of everything the prompt scores, in a fixed order."""
        return [f"{g}/{a}" for g, aspects in self.aspects.items() for a in aspects]

    def instruction_for(self, utterance: Utterance) -> str:
        fields = {
            "text": utterance.text,
            "words": " ".join(utterance.words),
            "phones": " - ".join(" ".join(word.phones) for word in utterance.scores.words),
        }
        return PLACEHOLDER.sub(lambda match: fields[match.group(1)], self.instruction)

    def messages(self, utterance: Utterance) -> list[dict[str, Any]]:
        """The chat up to the answer: optional system turn, then the audio and the instruction."""
        user = [{"type": "audio", "audio": utterance.id}, {"type": "text", "text": self.instruction_for(utterance)}]
        system = [{"role": "system", "content": self.system}] if self.system else []
        return [*system, {"role": "user", "content": user}]

    def render(self, scores: Scores) -> Rendered:
        """The answer for these labels, with a slot per score."""
        return self.format.render(scores, self.aspects, self.vocabulary)

    def parse(self, answer: str, cut: bool = False) -> Scores:
        """A model's answer as scores on the native scales; what cannot be read is ``None``.
        ``cut``: generation stopped at its token limit, not at the end of the answer, so the last
        thing written may be the start of something longer ("1" of "10"); it is left out."""
        if cut:
            answer = CUT_SHORT.sub("", answer)
        return self.format.parse(answer, self.aspects, self.vocabulary)
