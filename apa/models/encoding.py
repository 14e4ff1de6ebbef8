"""Token ids for Qwen2-Audio: the chat prompt with its audio placeholder expanded, then the target.

The processor expands ``<|AUDIO|>`` to one token per audio frame the tower outputs and computes
features on the fly; training and evaluation take features from the cache instead, so this module
builds exactly the ids the processor would (a test compares them) and records where every score
slot of the target sits.
"""

from __future__ import annotations

from dataclasses import dataclass

from transformers import PreTrainedTokenizerBase

from apa.data.records import Scores, Utterance
from apa.models.score_tokens import mask_token_id
from apa.prompts import Prompt, Rendered
from apa.prompts.slots import slot_tokens

AUDIO_TOKEN = "<|AUDIO|>"
_ANSWER_MARK = "APA_ANSWER_MARK"


def audio_token_count(mel_frames: int) -> int:
    """Audio tokens for ``mel_frames`` feature frames (the tower's two stride-2 reductions)."""
    return ((mel_frames - 1) // 2 + 1 - 2) // 2 + 1


def check_one_token_per_score(prompt: Prompt, needed_by: str) -> None:
    """Masked slots and slot reading need one token per score class (``score_tokens=added``); with
    digits, 10 is two tokens. The one check of it, for the objectives, the encoder and the decoder."""
    if not prompt.vocabulary.single_token:
        raise ValueError(
            f"{needed_by}: needs one token per score class, but prompt {prompt.name} writes "
            f"score_tokens={prompt.score_tokens}, where 10 is two tokens: set prompt.score_tokens=added"
        )


@dataclass(frozen=True)
class Encoded:
    """One sequence: prompt then target. ``slot_positions[i]`` is the index of slot i's (first) token;
    ``masked_slots``: the slots hold ``<|score_mask|>``, not the score (then no label to learn there)."""

    input_ids: tuple[int, ...]
    target_start: int
    rendered: Rendered
    slot_positions: tuple[int, ...]
    masked_slots: bool = False

    def __len__(self) -> int:
        return len(self.input_ids)


class PromptEncoder:
    """Encodes one prompt's chats and targets for one tokenizer and chat template.

    With ``masked_slots`` every slot's token is replaced by ``<|score_mask|>`` (objectives that read
    all slots in one pass); that needs one token per slot, so single-token score classes.
    """

    def __init__(self, tokenizer: PreTrainedTokenizerBase, prompt: Prompt, masked_slots: bool = False):
        if masked_slots:
            check_one_token_per_score(prompt, "masked slots")
        self.tokenizer = tokenizer
        self.prompt = prompt
        self.audio_id = tokenizer.convert_tokens_to_ids(AUDIO_TOKEN)
        self.mask_id = mask_token_id(tokenizer) if masked_slots else None
        probe = tokenizer.apply_chat_template(
            [{"role": "user", "content": "x"}, {"role": "assistant", "content": _ANSWER_MARK}], tokenize=False
        )
        self.end_of_turn = probe.split(_ANSWER_MARK, 1)[1].rstrip()

    def _ids(self, text: str) -> list[int]:
        return self.tokenizer(text, add_special_tokens=False)["input_ids"]

    def prompt_ids(self, utterance: Utterance, mel_frames: int) -> list[int]:
        """The chat up to the start of the answer, with the audio placeholder expanded."""
        text = self.tokenizer.apply_chat_template(
            self.prompt.messages(utterance), add_generation_prompt=True, tokenize=False
        )
        before, placeholder, after = text.partition(AUDIO_TOKEN)
        if not placeholder or AUDIO_TOKEN in after:
            raise ValueError(f"the chat template must place exactly one {AUDIO_TOKEN} (prompt {self.prompt.name})")
        return [*self._ids(before), *[self.audio_id] * audio_token_count(mel_frames), *self._ids(after)]

    def encode(self, utterance: Utterance, mel_frames: int, scores: Scores | None = None) -> Encoded:
        """Prompt and target for ``scores`` (by default the utterance's labels)."""
        prompt_ids = self.prompt_ids(utterance, mel_frames)
        rendered = self.prompt.render(utterance.scores if scores is None else scores)
        target = self.tokenizer(rendered.text + self.end_of_turn, add_special_tokens=False, return_offsets_mapping=True)
        target_ids = list(target["input_ids"])
        positions = slot_tokens(rendered, target["offset_mapping"])
        if self.mask_id is not None:
            for slot, tokens in zip(rendered.slots, positions, strict=True):
                if len(tokens) != 1:
                    raise ValueError(f"{utterance.id}: slot {slot.key} spans {len(tokens)} tokens, expected one")
                target_ids[tokens[0]] = self.mask_id
        start = len(prompt_ids)
        slot_positions = tuple(start + t[0] for t in positions)
        return Encoded(tuple(prompt_ids + target_ids), start, rendered, slot_positions, self.mask_id is not None)
