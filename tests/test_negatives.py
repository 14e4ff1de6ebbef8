"""SimPO negatives: one aspect moves by 2-4 classes, the answer stays consistent, the seed decides."""

import math

import pytest

from apa.data import Scores, Speechocean762
from apa.data.scales import scale_of
from apa.prompts.negatives import negative_rng, perturb, quantized

from .helpers import load_prompt


@pytest.fixture(scope="module")
def utterances(speechocean762):
    return Speechocean762(str(speechocean762)).utterances("train")[:300]


def changes(prompt, utterance, seed):
    chosen = prompt.render(utterance.scores)
    negative = perturb(utterance.scores, chosen, negative_rng(seed, utterance.id))
    rejected = prompt.render(negative)
    before, after = quantized(chosen), quantized(rejected)
    return chosen, rejected, {k: after[k] - before[k] for k in before if after[k] != before[k]}


@pytest.mark.parametrize("name", ["multi", "sentence", "word", "phone", "sentence_fluency"])
def test_one_aspect_moves_and_the_rest_follows(name, utterances):
    prompt = load_prompt(name)
    for utterance in utterances:
        chosen, rejected, changed = changes(prompt, utterance, seed=0)
        assert chosen.text != rejected.text
        assert [s.key for s in chosen.slots] == [s.key for s in rejected.slots]  # same template
        moved = max(changed, key=lambda k: abs(changed[k]))
        assert 1 <= abs(changed[moved]) <= 5  # 2-4 classes, clipped at the scale's ends (stress: 5)
        for slot in rejected.slots:
            assert slot.score_class in scale_of(slot.granularity, slot.aspect).classes
        for key, delta in changed.items():
            if key != moved:  # consequences move the same way as the cause
                assert delta * changed[moved] > 0, (utterance.id, key, changed)


def test_phone_change_reaches_its_word(utterances):
    prompt = load_prompt("multi")
    utterance = utterances[2]  # BILLY LOVES AMERICA: 4, 4 and 7 phones
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
