"""Slot weighting by granularity: each granularity its share of the loss, split among its slots."""

import pytest
import torch
from hydra.utils import instantiate

from apa.objectives import FairAverage, Regression
from apa.objectives.fair_average import fair_average_loss
from apa.objectives.weighting import GranularityWeights, weighted_mean
from bench.common import compose_config

ASPECTS = ["sentence/accuracy", "word/accuracy", "phone/accuracy"]

MULTI = instantiate(compose_config("train", ["prompt=multi"]).prompt)
SENTENCE, WORD, PHONE = (MULTI.aspect_names.index(name) for name in ASPECTS)


def weights_for(given, slot_aspects):
    weighting = GranularityWeights(given)
    weighting.setup(MULTI)
    index = {0: SENTENCE, 1: WORD, 2: PHONE}  # the tests name slots by granularity
    return weighting(torch.tensor([index[g] for g in slot_aspects]))


def test_without_weights_every_slot_counts_alike():
    assert weights_for(None, [0, 1, 1, 2]) is None
    assert weighted_mean(torch.tensor([1.0, 2.0, 3.0, 6.0])) == 3.0


def test_each_granularity_gets_its_share_split_among_its_slots():
    """1 sentence slot, 2 word slots, 3 phone slots with equal weights: 1/3, 1/6 each, 1/9 each."""
    weights = weights_for({"sentence": 1, "word": 1, "phone": 1}, [0, 1, 1, 2, 2, 2])
    assert weights.tolist() == pytest.approx([1 / 3, 1 / 6, 1 / 6, 1 / 9, 1 / 9, 1 / 9])
    losses = torch.tensor([3.0, 0.0, 6.0, 9.0, 0.0, 0.0])  # granularity means 3, 3 and 3
    assert weighted_mean(losses, weights).item() == pytest.approx(3.0)


def test_a_granularity_missing_from_the_batch_leaves_the_others_summing_to_one():
    weights = weights_for({"sentence": 2, "word": 1, "phone": 1}, [0, 2])  # no word slot here
    assert weights.tolist() == pytest.approx([2 / 3, 1 / 3])


def test_shares_equal_to_the_slot_counts_give_the_plain_mean():
    slots = [0, 1, 1, 2, 2, 2]
    weights = weights_for({"sentence": 1, "word": 2, "phone": 3}, slots)
    logits, allowed = torch.randn(6, 11), torch.ones(6, 11, dtype=torch.bool)
    targets = torch.tensor([8.0, 7.0, 9.0, 10.0, 5.0, 10.0])
    weighted = fair_average_loss(logits, allowed, targets, weights)
    assert weighted.item() == pytest.approx(fair_average_loss(logits, allowed, targets).item(), rel=1e-6)


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ({"sentence": 1, "utterance": 1}, "expected non-negative numbers"),
        ({"sentence": -1, "word": 1, "phone": 1}, "expected non-negative numbers"),
        ({"sentence": 0, "word": 0, "phone": 0}, "not all 0"),
    ],
)
def test_bad_weights_are_refused(given, message):
    with pytest.raises(ValueError, match=message):
        GranularityWeights(given)


def test_a_granularity_the_prompt_scores_needs_a_weight():
    with pytest.raises(ValueError, match="no weight for phone"):
        GranularityWeights({"sentence": 1, "word": 1}).check(MULTI)


@pytest.mark.parametrize("objective", ["fa", "regression"])
def test_the_objectives_take_weights_from_their_config(objective):
    cfg = compose_config(
        "train", [f"objective={objective}", "+objective.granularity_weights={sentence: 2, word: 1, phone: 1}"]
    )
    built = instantiate(cfg.objective)
    assert isinstance(built, FairAverage | Regression)
    assert built.slot_weights.share.tolist() == [2.0, 1.0, 1.0]


@pytest.mark.parametrize("objective", ["fa", "regression"])
def test_a_weighted_objective_trains_on_the_multi_prompt(compose, objective):
    from apa import training
    from apa.jobs import train_job

    from .test_training import overrides

    weights = "objective.granularity_weights={sentence: 1, word: 1, phone: 1}"
    job = train_job(compose("train", overrides(objective, 1, "prompt=multi", weights)))
    loss = training.run(job)
    assert loss > 0 and torch.isfinite(torch.tensor(loss))
