"""The within-utterance term: 1 - PCC of the word and phone scores inside each utterance."""

import pytest
import torch
from hydra.utils import instantiate
from scipy.stats import pearsonr

from apa.objectives import FairAverage, Regression
from apa.objectives.within import WithinUtterance, within_group_correlation
from bench.common import compose_config

MULTI = instantiate(compose_config("train", ["prompt=multi"]).prompt)
SENTENCE_ONLY = instantiate(compose_config("train", ["prompt=sentence"]).prompt)


def test_a_group_reads_one_minus_its_pearson_correlation():
    predicted, targets = torch.tensor([1.0, 2.0, 3.0, 7.0]), torch.tensor([1.0, 2.0, 4.0, 3.0])
    expected = 1 - pearsonr(predicted.numpy(), targets.numpy()).statistic
    term = within_group_correlation(predicted, targets, torch.zeros(4, dtype=torch.long), eps=0.0)
    assert term.item() == pytest.approx(expected, rel=1e-5)


def test_groups_are_averaged_and_never_mixed():
    """Group 0 agrees perfectly (0), group 1 is reversed (2): the mean is 1. Pooled, the four
    points would correlate, so a term that mixed the groups would read something else."""
    predicted = torch.tensor([1.0, 2.0, 9.0, 8.0])
    targets = torch.tensor([1.0, 2.0, 8.0, 9.0])
    term = within_group_correlation(predicted, targets, torch.tensor([0, 0, 1, 1]), eps=0.0)
    assert term.item() == pytest.approx(1.0, abs=1e-6)


def test_groups_with_nothing_to_point_at_are_left_out():
    """Group 0's references are constant (every phone right) and group 2 holds one slot: only group
    1, which agrees perfectly, counts."""
    predicted = torch.tensor([3.0, 9.0, 1.0, 2.0, 5.0])
    targets = torch.tensor([10.0, 10.0, 4.0, 8.0, 2.0])
    term = within_group_correlation(predicted, targets, torch.tensor([0, 0, 1, 1, 2]), eps=0.0)
    assert term.item() == pytest.approx(0.0, abs=1e-6)


def test_no_usable_group_gives_zero_that_still_backpropagates():
    predicted = torch.tensor([3.0, 9.0], requires_grad=True)
    term = within_group_correlation(predicted, torch.tensor([10.0, 10.0]), torch.tensor([0, 0]))
    term.backward()
    assert term.item() == 0.0 and predicted.grad.tolist() == [0.0, 0.0]


def test_a_near_constant_answer_is_pulled_towards_the_references_order():
    """The squared error's gradient on a constant answer is the same for both slots; this term's
    pushes the slot whose reference is lower down and the other up."""
    predicted = torch.tensor([8.0, 8.0], requires_grad=True)
    within_group_correlation(predicted, torch.tensor([4.0, 9.0]), torch.tensor([0, 0])).backward()
    low, high = predicted.grad.tolist()
    assert low > 0 > high  # descent lowers the first and raises the second


def slot_aspect(name: str) -> int:
    return MULTI.aspect_names.index(name)


def test_the_module_groups_by_utterance_and_aspect_and_skips_sentence_slots():
    """Two utterances, each with a sentence slot and three phone slots. Utterance 0's phones agree
    with their references, utterance 1's are reversed; the sentence slots (wildly off) are not
    read. The term is the mean of 0 and 2, times the weight."""
    within = WithinUtterance(0.5)
    within.setup(MULTI)
    valid = torch.ones(2, 4, dtype=torch.bool)
    sentence, phone = slot_aspect("sentence/total"), slot_aspect("phone/accuracy")
    aspects = torch.tensor([sentence, phone, phone, phone] * 2)
    predicted = torch.tensor([0.0, 2.0, 5.0, 8.0, 10.0, 8.0, 5.0, 2.0])
    targets = torch.tensor([10.0, 2.0, 5.0, 8.0, 0.0, 2.0, 5.0, 8.0])
    term = within(predicted, targets, valid, aspects)
    assert term.item() == pytest.approx(0.5 * 1.0, rel=1e-3)


def test_off_by_default_and_bad_settings_are_refused():
    assert WithinUtterance()(torch.ones(2), torch.ones(2), torch.ones(1, 2, dtype=torch.bool), torch.zeros(2)) is None
    with pytest.raises(ValueError, match="non-negative"):
        WithinUtterance(-1)
    with pytest.raises(ValueError, match="needs word or phone scores"):
        WithinUtterance(1).check(SENTENCE_ONLY)
    WithinUtterance(0).check(SENTENCE_ONLY)  # off: any prompt


@pytest.mark.parametrize("objective", ["fa", "regression"])
def test_the_objectives_take_the_weight_from_their_config(objective):
    cfg = compose_config("train", [f"objective={objective}", "objective.within_utterance_weight=0.5"])
    built = instantiate(cfg.objective)
    assert isinstance(built, FairAverage | Regression) and built.within.weight == 0.5


# objective -> the loss its logged parts make, with the term at weight 1
TOTALS = {"fa": lambda p: p["fa_mse"] + p["slot_ce"] + p["within"], "regression": lambda p: p["mse"] + p["within"]}


@pytest.mark.parametrize("objective", ["fa", "regression"])
def test_an_objective_with_the_term_trains_and_logs_it(compose, objective):
    from .test_training import logged_steps

    steps = logged_steps(compose, objective, 2, "prompt=multi", "objective.within_utterance_weight=1")
    assert len(steps) == 2
    for log in steps:
        assert 0 <= log["within"] <= 2  # 1 - PCC, averaged
        assert log["loss"] == pytest.approx(TOTALS[objective](log), abs=2e-4)
