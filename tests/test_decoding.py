"""Decoding strategies on the tiny model: slots agree with forced generation, never miss a score."""

import dataclasses
from types import SimpleNamespace

import numpy as np
import pytest
import soundfile
import torch

import bench.generation
from apa.data import SAMPLE_RATE, FeatureCache, Scores, WordScores, load_audio
from apa.data.scales import scale_of
from apa.evaluation import GenerationDecoder, RegressionDecoder, SlotDecoder, evaluate
from apa.evaluation.chunks import average
from apa.evaluation.decoders import generation, items
from apa.evaluation.decoders.generation import end_of_answer_ids
from apa.models.encoding import PromptEncoder
from apa.models.heads import ScoreHead, attach_head
from apa.models.score_tokens import score_token_ids
from apa.prompts.slots import blank

from .helpers import load_prompt


def forced_generation(model, processor, prompt, utterance, chunk):
    """Greedy generation allowed only the template's tokens, and any class token at a slot."""
    tokenizer = processor.tokenizer
    encoder = PromptEncoder(tokenizer, prompt)
    template = encoder.encode(utterance, chunk.mel_frames, blank(utterance.scores))
    prompt_ids = template.input_ids[: template.target_start]
    answer = template.input_ids[template.target_start :]
    class_ids = score_token_ids(tokenizer, prompt.vocabulary)
    slot_steps = {
        p - template.target_start: slot
        for p, slot in zip(template.slot_positions, template.rendered.slots, strict=True)
    }

    def allowed(_, generated):
        step = len(generated) - len(prompt_ids)
        if step in slot_steps:
            return [class_ids[c] for c in slot_steps[step].classes]
        return [answer[step]] if step < len(answer) else end_of_answer_ids(tokenizer, encoder)

    features = torch.from_numpy(chunk.features)[None]
    mask = torch.zeros(1, features.shape[-1], dtype=torch.long)
    mask[0, : chunk.mel_frames] = 1
    output = model.generate(
        input_ids=torch.tensor([prompt_ids]),
        attention_mask=torch.ones(1, len(prompt_ids), dtype=torch.long),
        input_features=features,
        feature_attention_mask=mask,
        prefix_allowed_tokens_fn=allowed,
        max_new_tokens=len(answer) + 2,
        do_sample=False,
    )
    return tokenizer.decode(output[0, len(prompt_ids) :], skip_special_tokens=True)


def test_slot_decoding_agrees_with_forced_greedy_generation(multi_setup, test_utterances):
    model, processor, prompt, table = multi_setup
    decoded = SlotDecoder(readout="hard", masked_slots=False).predict(model, processor, prompt, test_utterances, table)
    for utterance in test_utterances:
        answer = forced_generation(model, processor, prompt, utterance, table.chunk(utterance.id, 0))
        assert prompt.parse(answer) == decoded[utterance.id].scores, utterance.id


@pytest.mark.parametrize("readout", ["soft", "hard"])
@pytest.mark.parametrize("masked", [True, False])
def test_slot_decoding_reads_every_score(multi_setup, test_utterances, readout, masked):
    model, processor, prompt, table = multi_setup
    decoder = SlotDecoder(batch_size=3, readout=readout, masked_slots=masked)
    decoded = decoder.predict(model, processor, prompt, test_utterances, table)
    predictions = {uid: p.scores for uid, p in decoded.items()}
    report = evaluate(predictions, {u.id: u.scores for u in test_utterances}, resamples=0)
    assert set(report.coverage) == {f"{g}/{a}" for g, aspects in prompt.aspects.items() for a in aspects}
    assert all(c["rate"] == 1.0 for c in report.coverage.values())  # nothing unparseable, nothing missing
    for scores in predictions.values():
        text = prompt.render(scores).text  # renders: every value present and on its scale
        if readout == "hard":
            assert prompt.parse(text) == scores


def test_masked_and_sequential_decoding_differ_only_in_context(multi_setup, test_utterances):
    """The first slot has the same context either way, so the same distribution."""
    model, processor, prompt, table = multi_setup
    masked = SlotDecoder(readout="soft", masked_slots=True).predict(
        model, processor, prompt, test_utterances[:1], table
    )
    sequential = SlotDecoder(readout="soft").predict(model, processor, prompt, test_utterances[:1], table)
    uid = test_utterances[0].id
    assert masked[uid].scores.accuracy == pytest.approx(sequential[uid].scores.accuracy, abs=1e-4)


def test_regression_decoder_predicts_on_the_scales(multi_setup, test_utterances):
    model, processor, prompt, table = multi_setup
    attach_head(model, ScoreHead(model.config.text_config.hidden_size, prompt.aspect_names))
    decoded = RegressionDecoder(batch_size=2).predict(model, processor, prompt, test_utterances, table)
    for utterance in test_utterances:
        scores = decoded[utterance.id].scores
        assert 0 <= scores.accuracy <= 10
        assert all(0 <= p <= 2 for w in scores.words for p in w.phones_accuracy)
        assert [w.text for w in scores.words] == list(utterance.words)


def test_regression_decoder_reads_each_aspects_output_on_its_scale_clamped(multi_setup, test_utterances):
    """A head with no weights predicts its biases: each slot gets its own aspect's, times 10,
    clamped to 0-10, on the native scale (phones 0-2)."""
    model, processor, prompt, table = multi_setup
    head = ScoreHead(model.config.text_config.hidden_size, prompt.aspect_names)
    biases = torch.linspace(-0.3, 1.3, len(prompt.aspect_names))  # below, inside and above the scale
    with torch.no_grad():
        head.net.weight.zero_()
        head.net.bias.copy_(biases)
    attach_head(model, head)
    decoded = RegressionDecoder(batch_size=3).predict(model, processor, prompt, test_utterances, table)
    for utterance in test_utterances:
        scores = decoded[utterance.id].scores
        counts = {"sentence": 1, "word": len(utterance.words), "phone": sum(len(w.phones) for w in scores.words)}
        assert counts["phone"] == sum(len(w.phones) for w in utterance.scores.words)
        for name, bias in zip(prompt.aspect_names, biases.tolist(), strict=True):
            granularity, aspect = name.split("/")
            if granularity == "sentence":
                values = [scores.aspect(aspect)]
            elif granularity == "word":
                values = [w.aspect(aspect) for w in scores.words]
            else:
                values = [p for w in scores.words for p in w.phones_accuracy]
            expected = scale_of(granularity, aspect).to_native(min(10.0, max(0.0, 10 * bias)))
            assert values == pytest.approx([expected] * counts[granularity], abs=1e-5), name


def test_generation_matches_the_stock_generate(multi_setup, test_utterances):
    """Same greedy answers as Qwen2-Audio's own generate, in a left-padded batch of unequal prompts."""
    model, processor, prompt, table = multi_setup
    tokenizer, utterances = processor.tokenizer, test_utterances[:3]
    inputs = generation.prompt_inputs(model, processor, prompt, items(utterances, table))
    assert len(set(inputs["attention_mask"].sum(-1).tolist())) > 1  # the padding is exercised
    settings = dict(max_new_tokens=10, do_sample=False, pad_token_id=tokenizer.pad_token_id)
    stop_ids = end_of_answer_ids(tokenizer, PromptEncoder(tokenizer, prompt))
    stock = bench.generation.stock(model, inputs, settings | {"eos_token_id": stop_ids})
    expected = dict(
        zip(
            [item.utterance.id for item in items(utterances, table)],
            tokenizer.batch_decode(stock, skip_special_tokens=True),
            strict=True,
        )
    )
    decoded = GenerationDecoder(batch_size=3, max_new_tokens=10).predict(model, processor, prompt, utterances, table)
    assert list(decoded) == [u.id for u in utterances]  # in the order asked for
    assert {uid: p.answer for uid, p in decoded.items()} == expected
    assert all(answer for answer in expected.values())


def test_generation_runs_under_the_trainings_autocast(multi_setup, test_utterances):
    """The dev split is decoded inside the Trainer's bf16 autocast: the cache takes bf16 keys."""
    model, processor, prompt, table = multi_setup
    with torch.autocast("cpu", dtype=torch.bfloat16):
        decoded = GenerationDecoder(batch_size=2, max_new_tokens=4).predict(
            model, processor, prompt, test_utterances[:2], table
        )
    assert len(decoded) == 2 and all(p.answer for p in decoded.values())


def test_decoding_batches_like_lengths_and_keeps_each_utterances_chunks_in_order(tiny, test_utterances, tmp_path):
    _, processor = tiny
    long_path = tmp_path / "long.wav"  # 65 s: three chunks
    soundfile.write(long_path, np.tile(load_audio(test_utterances[0].audio), 30)[: 65 * SAMPLE_RATE], SAMPLE_RATE)
    utterances = [*test_utterances, dataclasses.replace(test_utterances[0], id="long", audio=long_path)]
    table = FeatureCache(str(tmp_path / "cache")).load(utterances, processor.feature_extractor)
    ordered = items(utterances, table)
    assert len(ordered) == len(utterances) + 2
    lengths = [len(item.utterance.text) for item in ordered]
    assert lengths == sorted(lengths) and lengths != [len(u.text) for u in utterances]
    for utterance in utterances:
        chunks = [item.chunk for item in ordered if item.utterance.id == utterance.id]
        expected = table.chunks(utterance.id)
        assert [c.mel_frames for c in chunks] == [c.mel_frames for c in expected]
        assert all(np.array_equal(c.features, e.features) for c, e in zip(chunks, expected, strict=True))


def test_generation_of_an_untrained_model_counts_as_missing(multi_setup, test_utterances):
    model, processor, prompt, table = multi_setup
    decoder = GenerationDecoder(batch_size=2, max_new_tokens=6)
    decoded = decoder.predict(model, processor, prompt, test_utterances, table)
    assert all(p.answer is not None for p in decoded.values())
    predictions = {u: p.scores for u, p in decoded.items()}
    references = {u.id: u.scores for u in test_utterances}
    scored = evaluate(predictions, references, resamples=0).metrics  # nothing parseable, nothing invented:
    assert scored and all(v == 0 if k.endswith("/n") else v is None for k, v in scored.items())  # zero coverage
    asked = evaluate(predictions, references, resamples=0, aspects=prompt.asked)  # what the prompt asked for
    assert len(asked.coverage) == 9 and all(c["rate"] == 0.0 for c in asked.coverage.values())
    assert asked.metrics["sentence/total/pcc"] is None and asked.undefined["sentence/total/pcc"] == "no predictions"


@pytest.mark.parametrize("stopped", [True, False])
def test_an_answer_cut_at_the_token_limit_loses_its_last_word_not_a_digit(
    tiny, test_utterances, tmp_path, monkeypatch, stopped
):
    """'... 10' cut after its '1' must not read 1: a row with no end-of-answer token was cut short."""
    model, processor = tiny
    tokenizer, prompt = processor.tokenizer, load_prompt("sentence", score_tokens="digits")
    table = FeatureCache(str(tmp_path)).load(test_utterances[:1], processor.feature_extractor)
    answer = tokenizer("Sentence Scores: 8 7 6 10 1", add_special_tokens=False)["input_ids"]
    stop = end_of_answer_ids(tokenizer, PromptEncoder(tokenizer, prompt))[0]
    generated = torch.tensor([[*answer, stop] if stopped else answer])
    monkeypatch.setattr(generation, "text_generator", lambda _: SimpleNamespace(generate=lambda **_: generated))
    decoded = GenerationDecoder(batch_size=1).predict(model, processor, prompt, test_utterances[:1], table)
    (prediction,) = decoded.values()
    scores = prediction.scores
    read = (scores.accuracy, scores.fluency, scores.prosodic, scores.completeness, scores.total)
    assert read == ((8, 7, 6, 10, 1) if stopped else (None,) * 5)  # a line short of a score is missing whole


def test_chunks_are_averaged_value_by_value():
    first = Scores(8, 6, None, 10, 7, (WordScores("A", 10, 10, 10, ("AH0",), (2.0,)),))
    second = Scores(6, None, None, 10, 9, (WordScores("A", 6, 5, 8, ("AH0",), (1.0,)),))
    assert average([first, second]) == Scores(7, 6, None, 10, 8, (WordScores("A", 8, 7.5, 9, ("AH0",), (1.5,)),))
    different = Scores(6, 6, 6, 6, 6, (WordScores("B", 1, 5, 1, ("B", "IY1"), (1.0, 1.0)),))
    averaged = average([first, different])
    assert (averaged.accuracy, averaged.total) == (7, 6.5)  # the sentence scores still agree
    assert averaged.words == (WordScores("A", phones=("AH0",), phones_accuracy=(None,)),)  # no counterpart: missing


def test_chunks_with_different_word_counts_average_the_words_they_share():
    """A chunk that left a word out: the shared words are averaged, the other is missing."""
    three = Scores(8, words=(WordScores("A", 10), WordScores("CAT", 6), WordScores("SAT", 4)))
    two = Scores(6, words=(WordScores("A", 8), WordScores("SAT", 2)))
    averaged = average([three, two])
    assert averaged.accuracy == 7
    assert [(w.text, w.accuracy) for w in averaged.words] == [("A", 9), ("CAT", None), ("SAT", 3)]
    longer = average([two, three])  # the first chunk's words are the result's; CAT is not among them
    assert [(w.text, w.accuracy) for w in longer.words] == [("A", 9), ("SAT", 3)]
    references = {"u": Scores(7, 7, 7, 10, 7, tuple(WordScores(t, 8, 10, 8) for t in ("A", "CAT", "SAT")))}
    report = evaluate({"u": averaged}, references, resamples=0)
    assert report.missing["word/accuracy"] == ["u word 1 (CAT)"]  # reported, not dropped or guessed


def test_chunks_with_different_phone_counts_leave_only_those_phones_missing():
    one = Scores(
        words=(
            WordScores("", phones=("B", "IH1"), phones_accuracy=(2.0, 1.0)),
            WordScores("", phones=("L",), phones_accuracy=(2.0,)),
        )
    )
    other = Scores(
        words=(
            WordScores("", phones=("B",), phones_accuracy=(0.0,)),
            WordScores("", phones=("L",), phones_accuracy=(1.0,)),
        )
    )
    averaged = average([one, other])
    assert [w.phones_accuracy for w in averaged.words] == [(None, None), (1.5,)]
    fewer_words = Scores(words=(WordScores("", phones=("B", "IH1"), phones_accuracy=(2.0, 2.0)),))
    unpaired = average([one, fewer_words])  # phone-only words have no text to pair them by
    assert [w.phones_accuracy for w in unpaired.words] == [(None, None), (None,)]


def test_decoding_runs_with_the_adapters_merged_and_leaves_them_unmerged(multi_setup, test_utterances, compose):
    from hydra.utils import instantiate

    from apa.models import apply_lora, lora_modules

    model, processor, prompt, table = multi_setup
    peft_model = apply_lora(model, instantiate(compose("train", ["model=tiny"]).lora))
    layers = [peft_model.get_submodule(name) for name in lora_modules(peft_model)]
    seen = []

    class Spy(SlotDecoder):
        def decode(self, model, processor, prompt, batch):
            seen.append(all(layer.merged for layer in layers))
            return super().decode(model, processor, prompt, batch)

    Spy(batch_size=2).predict(peft_model, processor, prompt, test_utterances, table)
    assert seen == [True, True]  # four utterances, two batches, both merged
    assert not any(layer.merged for layer in layers)
