"""Encoding and batching from cached features give what the processor and the stock forward give."""

import math

import pytest
import torch

from apa.data import load_audio
from apa.models.batching import IGNORE, Collator
from apa.models.encoding import PromptEncoder, audio_token_count
from apa.models.forward import hidden_states, logits
from apa.models.score_tokens import mask_token_id
from apa.prompts.negatives import negative_rng, perturb

from .helpers import load_prompt


def processor_inputs(processor, encoder, utterance, target_text):
    chat = processor.apply_chat_template(encoder.prompt.messages(utterance), add_generation_prompt=True, tokenize=False)
    audio = [load_audio(utterance.audio)]
    return processor(text=[chat + target_text], audio=audio, sampling_rate=16000, return_tensors="pt")


def test_encoding_matches_the_processor(multi_setup, test_utterances):
    _, processor, prompt, table = multi_setup
    encoder = PromptEncoder(processor.tokenizer, prompt)
    for utterance in test_utterances:
        (chunk,) = table.chunks(utterance.id)
        encoded = encoder.encode(utterance, chunk.mel_frames)
        target_text = prompt.render(utterance.scores).text + "<|im_end|>"
        reference = processor_inputs(processor, encoder, utterance, target_text)
        assert list(encoded.input_ids) == reference["input_ids"][0].tolist()
        assert encoded.input_ids.count(encoder.audio_id) == audio_token_count(chunk.mel_frames)
        assert processor.tokenizer.decode(encoded.input_ids[encoded.target_start :]) == target_text
        for slot, position in zip(encoded.rendered.slots, encoded.slot_positions, strict=True):
            assert (
                processor.tokenizer.convert_ids_to_tokens(encoded.input_ids[position])
                == f"<|score_{slot.score_class}|>"
            )


def test_masked_slots_hide_every_score(multi_setup, test_utterances):
    _, processor, prompt, table = multi_setup
    masked = PromptEncoder(processor.tokenizer, prompt, masked_slots=True)
    plain = PromptEncoder(processor.tokenizer, prompt)
    (chunk,) = table.chunks(test_utterances[0].id)
    a, b = masked.encode(test_utterances[0], chunk.mel_frames), plain.encode(test_utterances[0], chunk.mel_frames)
    mask = mask_token_id(processor.tokenizer)
    assert [a.input_ids[p] for p in a.slot_positions] == [mask] * len(a.slot_positions)
    differing = [i for i, (x, y) in enumerate(zip(a.input_ids, b.input_ids, strict=True)) if x != y]
    assert differing == list(a.slot_positions)
    with pytest.raises(ValueError, match="masked slots: needs one token per score class"):
        PromptEncoder(processor.tokenizer, load_prompt("multi", score_tokens="digits"), masked_slots=True)


@pytest.mark.parametrize("side", ["right", "left"])
def test_collator_pads_labels_and_slots(multi_setup, test_utterances, side):
    _, processor, prompt, table = multi_setup
    encoder = PromptEncoder(processor.tokenizer, prompt, masked_slots=True)
    chunks = [table.chunk(u.id, 0) for u in test_utterances]
    rows = [encoder.encode(u, c.mel_frames) for u, c in zip(test_utterances, chunks, strict=True)]
    collate = Collator(processor.tokenizer.pad_token_id, prompt.aspect_names, padding_side=side)
    batch = collate(rows, chunks, list(range(len(rows))))
    length, n = max(len(r) for r in rows), len(rows)
    assert batch["input_ids"].shape == (n, length) and batch["input_features"].shape == (n, 128, 3000)
    for r, row in enumerate(rows):
        offset = length - len(row) if side == "left" else 0
        assert batch["attention_mask"][r].sum() == len(row)
        assert batch["input_ids"][r, offset : offset + len(row)].tolist() == list(row.input_ids)
        n_labels = len(row) - row.target_start - len(row.slot_positions)
        assert (batch["labels"][r] != IGNORE).sum() == n_labels
        n_slots = len(row.slot_positions)
        assert batch["slot_valid"][r].sum() == n_slots
        assert batch["slot_positions"][r, :n_slots].tolist() == [offset + p for p in row.slot_positions]
        assert batch["slot_targets"][r, :n_slots].tolist() == pytest.approx([s.target for s in row.rendered.slots])
        assert batch["feature_attention_mask"][r].sum() == chunks[r].mel_frames
    stress = prompt.aspect_names.index("word/stress")
    stress_slots = batch["slot_aspects"] == stress
    assert stress_slots.any()
    assert batch["slot_classes"][stress_slots].sum(-1).unique().tolist() == [2]  # classes 5 and 10 only


def test_shared_audio_forward_equals_the_stock_forward(multi_setup, test_utterances):
    """Chosen and rejected rows share one audio encoding and give the stock model's logits."""
    model, processor, prompt, table = multi_setup
    encoder = PromptEncoder(processor.tokenizer, prompt)
    utterance, chunk = test_utterances[1], table.chunk(test_utterances[1].id, 0)
    chosen = encoder.encode(utterance, chunk.mel_frames)
    rejected = encoder.encode(
        utterance, chunk.mel_frames, perturb(utterance.scores, chosen.rendered, negative_rng(0, "x"))
    )
    batch = Collator(processor.tokenizer.pad_token_id, prompt.aspect_names)([chosen, rejected], [chunk], [0, 0])
    assert batch["input_features"].shape[0] == 1  # one audio for two rows
    with torch.no_grad():
        mine = logits(model, hidden_states(model, batch))
        for row in range(2):
            n = int(batch["attention_mask"][row].sum())
            stock = model(
                input_ids=batch["input_ids"][row : row + 1, :n],
                attention_mask=batch["attention_mask"][row : row + 1, :n],
                input_features=batch["input_features"],
                feature_attention_mask=batch["feature_attention_mask"],
            ).logits
            assert torch.allclose(mine[row, :n], stock[0], atol=1e-5)


def test_a_pairwise_batch_holds_chosen_rows_then_their_rejected_rows(multi_setup, test_utterances):
    """With needs_pairs (SimPO) row i and row i + n are one utterance's chosen and rejected answers:
    the same audio and prompt, the same template, different only at the perturbed slot (and the
    slots its change flows to), the perturbed slot moved by the chosen change."""
    from apa.objectives import SimPOCrossEntropy
    from apa.prompts.negatives import choose_change
    from apa.training.examples import ExampleSet, TrainingCollator, build_examples

    assert SimPOCrossEntropy.needs_pairs
    _, processor, prompt, table = multi_setup
    encoder = PromptEncoder(processor.tokenizer, prompt)
    examples = build_examples(test_utterances, table, encoder, pairs=True, seed=5)
    dataset = ExampleSet(examples, table)
    collate = TrainingCollator(Collator(processor.tokenizer.pad_token_id, prompt.aspect_names))
    batch = collate([dataset[i] for i in range(len(dataset))])
    n = len(examples)
    assert batch["input_ids"].shape[0] == 2 * n and batch["input_features"].shape[0] == n  # one audio a pair
    assert batch["audio_index"].tolist() == [*range(n), *range(n)]
    assert batch["chosen_rows"].tolist() == [*range(n)] and batch["rejected_rows"].tolist() == [*range(n, 2 * n)]
    for i, (example, utterance) in enumerate(zip(examples, test_utterances, strict=True)):
        chosen, rejected = example.chosen, example.rejected
        assert example.utterance_id == utterance.id
        assert chosen.rendered.text == prompt.render(utterance.scores).text  # the labels, as rendered
        length = int(batch["attention_mask"][i].sum())
        assert length == len(chosen) == int(batch["attention_mask"][i + n].sum())
        assert batch["input_ids"][i, :length].tolist() == list(chosen.input_ids)
        assert batch["input_ids"][i + n, :length].tolist() == list(rejected.input_ids)
        assert rejected.target_start == chosen.target_start and rejected.slot_positions == chosen.slot_positions
        assert [s.key for s in rejected.rendered.slots] == [s.key for s in chosen.rendered.slots]
        differing = (batch["input_ids"][i] != batch["input_ids"][i + n]).nonzero().flatten().tolist()
        assert differing and set(differing) <= set(chosen.slot_positions)  # the prompt and template agree
        assert min(differing) >= chosen.target_start
        ignored = (batch["labels"][i] == IGNORE).tolist()
        assert ignored == (batch["labels"][i + n] == IGNORE).tolist()
        assert ignored[: chosen.target_start] == [True] * chosen.target_start  # the prompt is not a target
        assert not any(ignored[chosen.target_start : length])
        key, delta = choose_change(chosen.rendered, negative_rng(5, utterance.id))
        (at,) = [k for k, s in enumerate(chosen.rendered.slots) if s.key == key]
        assert chosen.slot_positions[at] in differing
        assert rejected.rendered.slots[at].score_class == chosen.rendered.slots[at].score_class + delta


def test_redrawn_negatives_give_each_epoch_its_own_and_the_first_is_the_single_draw(multi_setup, test_utterances):
    from types import SimpleNamespace

    from apa.training.examples import ExampleSet, NegativesOfTheEpoch, build_examples

    _, processor, prompt, table = multi_setup
    encoder = PromptEncoder(processor.tokenizer, prompt)
    once = build_examples(test_utterances, table, encoder, pairs=True, seed=5)
    thrice = build_examples(test_utterances, table, encoder, pairs=True, seed=5, negatives_per_example=3)
    assert [e.rejected for e in thrice] == [e.rejected for e in once]  # the first draw is today's negative
    assert all(len(e.negatives) == 3 for e in thrice) and not once[0].negatives
    texts = [{n.rendered.text for n in e.negatives} for e in thrice]
    assert any(len(drawn) > 1 for drawn in texts)  # later epochs see other negatives
    dataset = ExampleSet(thrice, table)
    callback = NegativesOfTheEpoch(dataset)
    for epoch in range(4):
        callback.on_epoch_begin(None, SimpleNamespace(epoch=float(epoch)), None)
        served = [dataset[i][0].rejected for i in range(len(dataset))]
        assert served == [e.negatives[epoch % 3] for e in thrice]


def test_the_slot_label_entropy_is_the_cross_entropy_of_each_aspects_class_frequencies():
    """Two examples: accuracy written 8 and 8 (entropy 0), fluency 7 and 9 (log 2): over four slots,
    (2 * 0 + 2 * log 2) / 4 = log 2 / 2."""
    from types import SimpleNamespace

    from apa.training.examples import slot_label_entropy

    def example(accuracy, fluency):
        slots = [
            SimpleNamespace(granularity="sentence", aspect=a, score_class=c)
            for a, c in (("accuracy", accuracy), ("fluency", fluency))
        ]
        return SimpleNamespace(chosen=SimpleNamespace(rendered=SimpleNamespace(slots=slots)))

    assert slot_label_entropy([example(8, 7), example(8, 9)]) == pytest.approx(math.log(2) / 2)
    assert slot_label_entropy([]) == 0.0
