"""Free greedy generation, then parsing: what the papers did (models trained with ``ce`` or
``simpo_ce``, and zero-shot). Batched with left padding; an answer that cannot be parsed gives
missing scores, counted by the evaluator."""

from __future__ import annotations

import torch

from apa.evaluation.decoders.base import Decoder, Item, Prediction, collate, to_device
from apa.models.encoding import Encoded, PromptEncoder
from apa.models.forward import input_embeddings, text_generator
from apa.prompts import Prompt, Rendered


class GenerationDecoder(Decoder):
    name = "generate"

    def __init__(self, batch_size: int = 8, max_new_tokens: int = 512):
        super().__init__(batch_size)
        self.max_new_tokens = max_new_tokens

    def decode(self, model, processor, prompt, batch):
        tokenizer = processor.tokenizer
        inputs = prompt_inputs(model, processor, prompt, batch)
        stop_ids = end_of_answer_ids(tokenizer, PromptEncoder(tokenizer, prompt))  # none: cut at the limit
        generated = text_generator(model).generate(  # from embeddings: the output is the new tokens only
            inputs_embeds=input_embeddings(model, inputs),
            attention_mask=inputs["attention_mask"],
            max_new_tokens=self.max_new_tokens,
            do_sample=False,
            pad_token_id=tokenizer.pad_token_id,
            eos_token_id=stop_ids,
        )
        answers = tokenizer.batch_decode(generated, skip_special_tokens=True)
        cut = ~torch.isin(generated, torch.tensor(stop_ids, device=generated.device)).any(dim=-1)
        return [Prediction(prompt.parse(answer, cut=bool(c)), answer) for answer, c in zip(answers, cut, strict=True)]


def prompt_inputs(model, processor, prompt: Prompt, batch: list[Item]) -> dict[str, torch.Tensor]:
    """The batch's prompts (no answers) left-padded, with their audio, on the model's device."""
    encoder = PromptEncoder(processor.tokenizer, prompt)
    rows = [
        Encoded(tuple(ids), len(ids), Rendered("", ()), ())
        for ids in (encoder.prompt_ids(item.utterance, item.chunk.mel_frames) for item in batch)
    ]
    return to_device(collate(processor, prompt, rows, batch, padding_side="left"), model)


def end_of_answer_ids(tokenizer, encoder: PromptEncoder) -> list[int]:
    ids = {tokenizer.eos_token_id, *tokenizer(encoder.end_of_turn, add_special_tokens=False)["input_ids"][:1]}
    return sorted(i for i in ids if i is not None)
