"""Prompts: instructions, answer formats with score slots, parsing, and SimPO negatives."""

from apa.prompts.formats import JsonFormat, LineFormat
from apa.prompts.prompt import Prompt
from apa.prompts.slots import Rendered, Slot
from apa.prompts.vocabulary import ScoreVocabulary

__all__ = ["JsonFormat", "LineFormat", "Prompt", "Rendered", "ScoreVocabulary", "Slot"]
