"""How a score class is written in a target: plain digits, or one added token per class.

Qwen2's tokenizer splits every digit, so "10" (the most common label) is two tokens. Generation
and cross-entropy do not mind (Wang et al. wrote digits), but the fair-average objective and slot
decoding read one distribution per score and need one token per class. ``added`` writes class k
as the new token ``<|score_k|>``; :func:`apa.models.score_tokens.add_score_tokens` adds them to the
tokenizer and initialises their embeddings from the digits, and LoRA trains those rows only.

Objectives that read every slot in one pass (fair average, regression) feed ``<|score_mask|>`` at
every slot instead of the reference score, in training and at inference alike, so no score leaks
into the next one's context and all slots are read in a single forward pass.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from apa.data.scales import ZERO_TO_TEN

KINDS = ("digits", "added")
MASK_TOKEN = "<|score_mask|>"


@dataclass(frozen=True)
class ScoreVocabulary:
    kind: str = "added"

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"score_tokens={self.kind!r} is not one of {', '.join(KINDS)}")

    @property
    def single_token(self) -> bool:
        """Whether every class is one token (with the added tokens installed)."""
        return self.kind == "added"

    def write(self, score_class: int) -> str:
        return f"<|score_{score_class}|>" if self.kind == "added" else str(score_class)

    @property
    def class_tokens(self) -> list[str]:
        """The single-token classes 0 to 10 in order (empty for digits)."""
        return [self.write(c) for c in ZERO_TO_TEN] if self.single_token else []

    @property
    def new_tokens(self) -> list[str]:
        """Tokens the tokenizer must learn: the classes, then the slot mask."""
        return [*self.class_tokens, MASK_TOKEN] if self.single_token else []

    @property
    def pattern(self) -> re.Pattern:
        """Matches one written score; group 1 is its number."""
        if self.kind == "added":
            return re.compile(r"<\|score_(\d+)\|>")
        return re.compile(r"(?<![\w.])(\d+(?:\.\d+)?)(?!\w)")

    def read(self, text: str) -> float | None:
        """The score written in ``text`` (exactly one, nothing else), or None."""
        match = self.pattern.fullmatch(text.strip())
        return float(match.group(1)) if match else None
