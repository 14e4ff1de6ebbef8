"""Score tokens with the real Qwen2 tokenizer: one distinct token per class where it matters."""

import pytest
import torch

from apa.data.scales import SCALES
from apa.models.offline.tokenizer import qwen2_audio_tokenizer
from apa.models.score_tokens import add_score_tokens, mask_token_id, score_token_ids
from apa.prompts import ScoreVocabulary
from apa.prompts.slots import slot_tokens

from .helpers import PROMPT_NAMES, load_prompt

ADDED = ScoreVocabulary("added")


@pytest.fixture(scope="module")
def tokenizer():
    tokenizer = qwen2_audio_tokenizer()
    tokenizer.add_tokens(ADDED.new_tokens)
    return tokenizer


def test_every_class_of_every_scale_is_one_distinct_token(tokenizer):
    for (granularity, aspect), scale in SCALES.items():
        ids = [tokenizer(ADDED.write(c), add_special_tokens=False)["input_ids"] for c in scale.classes]
        assert all(len(i) == 1 for i in ids), (granularity, aspect)
        assert len({i[0] for i in ids}) == len(scale.classes), (granularity, aspect)
    assert score_token_ids(tokenizer, ADDED) == list(range(151649, 151660))  # inside Qwen2-Audio's 156,032 rows


def test_digits_split_ten_which_is_why_added_tokens_exist(tokenizer):
    digits = ScoreVocabulary("digits")
    assert tokenizer.tokenize(digits.write(10)) == ["1", "0"]
    assert not digits.single_token and ADDED.single_token


# JSON answers are digits only; the papers' line prompts default to digits but take added tokens too.
@pytest.mark.parametrize("name", [n for n in PROMPT_NAMES if n not in ("zeroshot", "parikh2025")])
def test_every_slot_is_exactly_one_token_in_context(tokenizer, labelled_utterances, name):
    prompt = load_prompt(name, score_tokens="added")
    for utterance in labelled_utterances[:50]:
        rendered = prompt.render(utterance.scores)
        encoded = tokenizer(rendered.text, add_special_tokens=False, return_offsets_mapping=True)
        positions = slot_tokens(rendered, encoded["offset_mapping"])
        assert all(len(p) == 1 for p in positions)
        ids = encoded["input_ids"]
        for slot, (position,) in zip(rendered.slots, positions, strict=True):
            assert tokenizer.convert_ids_to_tokens(ids[position]) == ADDED.write(slot.score_class)


def test_added_rows_start_as_the_digits(tiny):
    model, processor = tiny
    ids = add_score_tokens(model, processor.tokenizer, ADDED)
    assert ids[:11] == score_token_ids(processor.tokenizer, ADDED) and ids[11] == mask_token_id(processor.tokenizer)
    embeddings, head = model.get_input_embeddings().weight, model.get_output_embeddings().weight
    for score_class, new_id in enumerate(ids[:11]):
        digits = processor.tokenizer.encode(str(score_class), add_special_tokens=False)
        assert torch.equal(embeddings[new_id], embeddings[digits].mean(0))
        assert torch.equal(head[new_id], head[digits].mean(0))
    digits = processor.tokenizer.convert_tokens_to_ids([str(d) for d in range(10)])
    assert torch.allclose(embeddings[ids[11]], embeddings[digits].mean(0))
    assert embeddings.shape[0] == 156032  # no resize: the rows already exist
    embeddings.data[ids[3]] += 1.0  # as if trained
    trained = embeddings[ids[3]].clone()
    assert add_score_tokens(model, processor.tokenizer, ADDED) == ids
    assert torch.equal(embeddings[ids[3]], trained)  # installing again changes nothing


def test_digits_install_nothing(tiny):
    model, processor = tiny
    assert add_score_tokens(model, processor.tokenizer, ScoreVocabulary("digits")) == []
    with pytest.raises(KeyError, match="add_score_tokens first"):
        score_token_ids(processor.tokenizer, ADDED)
    with pytest.raises(KeyError, match="add_score_tokens first"):
        mask_token_id(processor.tokenizer)
