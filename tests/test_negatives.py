"""SimPO negatives: one aspect moves by 2-4 classes, the answer stays consistent, the seed decides."""

import math

import pytest

from apa.data import Scores
from apa.data.scales import scale_of
from apa.prompts.negatives import _shifted, apply_change, choose_change, negative_rng, perturb, quantized

from .helpers import PROMPT_NAMES, billy_loves_america, load_prompt


@pytest.fixture(scope="module")
def utterances(labelled_utterances):
    return labelled_utterances[:300]


def changes(prompt, utterance, seed):
    chosen = prompt.render(utterance.scores)
    negative = perturb(utterance.scores, chosen, negative_rng(seed, utterance.id))
    rejected = prompt.render(negative)
    before, after = quantized(chosen), quantized(rejected)
    return chosen, rejected, {k: after[k] - before[k] for k in before if after[k] != before[k]}


def consequences(key: tuple) -> set[tuple]:
    """Where a change of the slot ``key`` may flow (Wang et al.: a phone's to its word and the
    sentence, an accuracy or stress to the totals above it), and nowhere else."""
    granularity, aspect, word, _ = key
    sentence = {("sentence", "accuracy", None, None), ("sentence", "total", None, None)}
    if granularity == "phone":
        return {("word", "accuracy", word, None), ("word", "total", word, None), *sentence}
    if (granularity, aspect) == ("word", "accuracy"):
        return {("word", "total", word, None), *sentence}
    if (granularity, aspect) == ("word", "stress"):
        return {("word", "total", word, None)}
    if granularity == "sentence" and aspect != "total":
        return {("sentence", "total", None, None)}
    return set()


@pytest.mark.parametrize("name", PROMPT_NAMES)
def test_every_negative_moves_2_to_4_classes_and_the_rest_follows(name, utterances):
    """Also at the ends of the scales, where clipping alone would often leave a change of 1."""
    prompt = load_prompt(name)
    for seed in (0, 1):
        for utterance in utterances:
            chosen = prompt.render(utterance.scores)
            key, delta = choose_change(chosen, negative_rng(seed, utterance.id))
            assert abs(delta) in ({5} if key[:2] == ("word", "stress") else {2, 3, 4}), (utterance.id, key, delta)
            rejected = prompt.render(apply_change(utterance.scores, chosen, key, delta))
            assert [s.key for s in chosen.slots] == [s.key for s in rejected.slots]  # same template
            before, after = quantized(chosen), quantized(rejected)
            changed = {k: after[k] - before[k] for k in before if after[k] != before[k]}
            assert changed.pop(key) == delta
            for place, moved in changed.items():  # consequences move the same way, never further
                assert place in consequences(key), (utterance.id, key, place)
                assert moved * delta > 0 and abs(moved) <= abs(delta), (utterance.id, key, place, moved)
            for slot in rejected.slots:
                assert slot.score_class in scale_of(slot.granularity, slot.aspect).classes


def test_perturb_applies_the_chosen_change(utterances):
    prompt = load_prompt("multi")
    for utterance in utterances[:50]:
        chosen = prompt.render(utterance.scores)
        key, delta = choose_change(chosen, negative_rng(3, utterance.id))
        assert perturb(utterance.scores, chosen, negative_rng(3, utterance.id)) == apply_change(
            utterance.scores, chosen, key, delta
        )


@pytest.mark.parametrize(
    ("old", "shift", "new"),
    [(9, 3, 6.0), (1, -4, 5.0), (8, 4, 10.0), (2, -2, 0.0), (0, -3, 3.0), (10, 2, 8.0), (5, 4, 9.0)],
    ids=["1-left-up", "1-left-down", "2-left-up", "2-left-down", "at-0", "at-10", "middle"],
)
def test_shift_turns_back_when_the_scale_ends_too_soon(old, shift, new):
    assert _shifted(old, shift, tuple(range(11))) == new
    assert _shifted(10, -3, (5, 10)) == 5.0 and _shifted(5, -2, (5, 10)) == 10.0  # stress: the other class


def test_phone_change_reaches_its_word():
    prompt = load_prompt("multi")
    utterance = billy_loves_america()  # 4, 4 and 7 phones
    seen = 0
    for seed in range(200):
        _, _, changed = changes(prompt, utterance, seed)
        phones = [k for k in changed if k[0] == "phone"]
        if phones:
            (_, _, word, _) = phones[0]
            share = changed[phones[0]] / len(utterance.scores.words[word].phones)
            if abs(share) >= 0.5:  # half a class or more reaches the word's accuracy
                assert changed[("word", "accuracy", word, None)] * share > 0
                seen += 1
    assert seen >= 3


def test_sentence_aspect_moves_total_only_when_large_enough():
    prompt = load_prompt("sentence", score_tokens="digits")
    scores = Scores(accuracy=5, fluency=5, prosodic=5, completeness=5, total=5)
    for seed in range(30):
        chosen = prompt.render(scores)
        negative = perturb(scores, chosen, negative_rng(seed, "u"))
        moved = [a for a in ("accuracy", "fluency", "prosodic", "completeness") if negative.aspect(a) != 5]
        if moved:
            delta = negative.aspect(moved[0]) - 5
            assert negative.total == 5 + math.copysign(math.floor(abs(delta) / 4 + 0.5), delta)


def test_negatives_are_deterministic_per_seed_and_utterance(utterances):
    prompt = load_prompt("multi")
    first = [changes(prompt, u, seed=7)[1].text for u in utterances[:50]]
    again = [changes(prompt, u, seed=7)[1].text for u in utterances[:50]]
    other = [changes(prompt, u, seed=8)[1].text for u in utterances[:50]]
    assert first == again and first != other
