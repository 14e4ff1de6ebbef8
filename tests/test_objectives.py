"""Loss arithmetic on small tensors, with the expected values derived by hand."""

import math
from types import SimpleNamespace

import pytest
import torch
from hydra.utils import instantiate
from torch import nn

from apa.models.batching import IGNORE
from apa.models.forward import slot_hidden
from apa.models.heads import ScoreHead
from apa.objectives import CrossEntropy, FairAverage, Objective, Regression, SimPOCrossEntropy, expected_scores
from apa.objectives.base import target_log_probs
from apa.objectives.fair_average import fair_average_loss
from apa.objectives.simpo import simpo_loss, sum_and_count_per_row

from .helpers import compose_config, load_prompt


class LogitsAreHidden(nn.Module):
    """A stand-in model whose LM head is the identity: hidden states are the logits."""

    def get_output_embeddings(self):
        return nn.Identity()


def test_target_log_probs_reads_only_labelled_positions():
    """Row 0 = [a, b, c] with only c labelled: position 1 predicts it. With logits
    log(1), log(3) over two tokens at position 1, p(c = token 1) = 3/4, so log p = log 0.75.
    Row 1: labels at positions 1 and 2 (tokens 0 and 1), predicted by positions 0 and 1 whose
    logits are uniform (log 1/2) and (0, log 3) -> log 1/2 and log 3/4."""
    hidden = torch.tensor(
        [
            [[0.0, 0.0], [0.0, math.log(3)], [5.0, -5.0]],
            [[0.0, 0.0], [0.0, math.log(3)], [9.0, 9.0]],
        ]
    )
    labels = torch.tensor([[IGNORE, IGNORE, 1], [IGNORE, 0, 1]])
    log_probs, rows = target_log_probs(LogitsAreHidden(), hidden, labels)
    assert rows.tolist() == [0, 1, 1]
    assert log_probs.tolist() == pytest.approx([math.log(0.75), math.log(0.5), math.log(0.75)])


def test_rows_with_one_source_share_its_hidden_states():
    """Rows 0 and 1 read hidden row 0 with different labels, row 2 reads hidden row 1: the same
    log-probabilities as when each row has its own copy, in the same order."""
    hidden = torch.tensor([[[0.0, 0.0], [0.0, math.log(3)], [5.0, -5.0]], [[math.log(3), 0.0], [1.0, 2.0], [0.0, 0.0]]])
    labels = torch.tensor([[IGNORE, 0, 1], [IGNORE, 1, 0], [IGNORE, IGNORE, 1]])
    source = torch.tensor([0, 0, 1])
    shared, rows = target_log_probs(LogitsAreHidden(), hidden, labels, source=source)
    copied, copied_rows = target_log_probs(LogitsAreHidden(), hidden[source], labels)
    assert rows.tolist() == copied_rows.tolist() == [0, 0, 1, 1, 2]
    assert shared.tolist() == pytest.approx(copied.tolist())
    assert shared[:2].tolist() == pytest.approx([math.log(0.5), math.log(0.75)])
    assert shared[2:4].tolist() == pytest.approx([math.log(0.5), math.log(0.25)])


def test_cross_entropy_is_the_mean_over_answer_tokens():
    """Three labelled tokens with log-probabilities log .75, log .5, log .75: the loss is their
    negative mean, (2 * log(4/3) + log 2) / 3; padding (IGNORE everywhere) adds nothing."""
    hidden = torch.tensor([[[0.0, 0.0], [0.0, math.log(3)], [0.0, 0.0]]] * 3)
    labels = torch.tensor([[IGNORE, IGNORE, 1], [IGNORE, 0, 1], [IGNORE, IGNORE, IGNORE]])
    log_probs, _ = target_log_probs(LogitsAreHidden(), hidden, labels)
    assert -log_probs.mean().item() == pytest.approx((2 * math.log(4 / 3) + math.log(2)) / 3)


def test_expected_score_over_allowed_classes():
    """Equal logits over all 11 classes: the mean of 0..10 is 5. Over stress's {5, 10}: 7.5.
    A large logit on the class worth 10: the expectation is (almost exactly) 10."""
    uniform = torch.zeros(3, 11)
    all_classes = torch.ones(11, dtype=torch.bool)
    stress = torch.zeros(11, dtype=torch.bool)
    stress[[5, 10]] = True
    ten = torch.zeros(11)
    ten[10] = 30.0
    logits = torch.stack([uniform[0], uniform[1], ten])
    allowed = torch.stack([all_classes, stress, all_classes])
    assert expected_scores(logits, allowed).tolist() == pytest.approx([5.0, 7.5, 10.0], abs=1e-6)


def test_fair_average_loss_is_mse_to_continuous_labels():
    """Expected scores 5 and 7.5 (as above) against labels 8.0 and 9.0 (a phone mean of 1.6 x 5
    is 8.0): ((5 - 8)^2 + (7.5 - 9)^2) / 2 = (9 + 2.25) / 2 = 5.625."""
    stress = torch.zeros(11, dtype=torch.bool)
    stress[[5, 10]] = True
    allowed = torch.stack([torch.ones(11, dtype=torch.bool), stress])
    loss = fair_average_loss(torch.zeros(2, 11), allowed, torch.tensor([8.0, 9.0]))
    assert loss.item() == pytest.approx(5.625)


@pytest.mark.parametrize(
    ("convention", "expected"),
    [
        # r+ = -1, r- = -2 (dr = 1); r+ = r- = -3 (dr = 0); beta 0.1, gamma 0.5:
        # wang2025 -log sigmoid(0.1 * (dr - 0.5)): log(1 + e^-0.05) = 0.668460, log(1 + e^0.05) = 0.718460
        ("wang2025", [0.668460, 0.718460]),
        # meng2024 -log sigmoid(0.1 * dr - 0.5): log(1 + e^0.4) = 0.913015, log(1 + e^0.5) = 0.974077
        ("meng2024", [0.913015, 0.974077]),
    ],
)
def test_simpo_arithmetic(convention, expected):
    losses = simpo_loss(torch.tensor([-1.0, -3.0]), torch.tensor([-2.0, -3.0]), 0.1, 0.5, convention)
    assert losses.tolist() == pytest.approx(expected, abs=1e-6)


@pytest.mark.parametrize(
    ("convention", "simpo"),
    [
        ("wang2025", math.log(1 + math.exp(-0.1 * (math.log(2) - 0.5)))),
        ("meng2024", math.log(1 + math.exp(0.5 - 0.1 * math.log(2)))),
    ],
)
def test_simpo_objective_uses_its_margin_convention(monkeypatch, convention, simpo):
    """One chosen row whose answer token has p = 1/2 (logits 0, 0) and one rejected row with
    p = 1/4 (logits log 3, 0 for token 1): dr = log 2; CE on the chosen row is log 2, so the
    loss is the SimPO term of the convention plus 0.1 * log 2."""
    hidden = torch.tensor([[[0.0, 0.0], [0.0, 0.0]], [[math.log(3), 0.0], [0.0, 0.0]]])
    batch = {"labels": torch.tensor([[IGNORE, 0], [IGNORE, 1]]), "hidden": hidden, "input_ids": torch.zeros(2, 2)}
    batch |= {"slot_positions": torch.ones(2, 1, dtype=torch.long), "slot_valid": torch.zeros(2, 1, dtype=torch.bool)}
    batch |= {"chosen_rows": torch.tensor([0]), "rejected_rows": torch.tensor([1])}
    monkeypatch.setattr("apa.objectives.simpo.hidden_states", lambda model, batch: batch["hidden"])
    output = SimPOCrossEntropy(margin_convention=convention)(LogitsAreHidden(), batch)
    assert output.metrics["margin"].item() == pytest.approx(math.log(2))
    assert output.metrics["simpo"].item() == pytest.approx(simpo)
    assert output.loss.item() == pytest.approx(simpo + 0.1 * math.log(2))
    swapped = {**batch, "chosen_rows": torch.tensor([1]), "rejected_rows": torch.tensor([0])}  # the layout is read
    assert SimPOCrossEntropy(margin_convention=convention)(LogitsAreHidden(), swapped).metrics[
        "margin"
    ].item() == pytest.approx(-math.log(2))


def test_simpo_refuses_a_batch_without_rejected_answers():
    batch = {"labels": torch.tensor([[IGNORE, 0]]), "chosen_rows": torch.tensor([], dtype=torch.long)}
    batch["rejected_rows"] = torch.tensor([], dtype=torch.long)
    with pytest.raises(ValueError, match="paired with a rejected one"):
        SimPOCrossEntropy()(LogitsAreHidden(), batch)


def test_unknown_margin_convention_is_refused():
    with pytest.raises(ValueError, match="margin_convention='trl' is not one of wang2025, meng2024"):
        SimPOCrossEntropy(margin_convention="trl")


def test_rewards_are_length_normalised():
    """Row 0 has token log-probs -1, -3 (mean -2); row 1 has -4 (mean -4)."""
    totals, counts = sum_and_count_per_row(torch.tensor([-1.0, -3.0, -4.0]), torch.tensor([0, 0, 1]), 2)
    assert (totals / counts).tolist() == [-2.0, -4.0]


def test_slot_hidden_reads_the_position_before_each_slot():
    hidden = torch.arange(2 * 5, dtype=torch.float32).reshape(2, 5, 1)
    batch = {
        "slot_positions": torch.tensor([[2, 4], [3, 0]]),
        "slot_valid": torch.tensor([[True, True], [True, False]]),
    }
    at_slots, valid = slot_hidden(hidden, batch)
    assert at_slots.squeeze(-1).tolist() == [1.0, 3.0, 7.0]  # row 0 positions 1, 3; row 1 position 2
    assert valid.sum() == 3


def test_regression_head_predicts_per_aspect():
    """Weights (0, 0) and (3, 4), bias 0.5 (its initial value: mid-scale) on hidden (1, 2): aspect 0
    gives 0.5 and aspect 1 gives 3 + 8 + 0.5 = 11.5, fractions of the scale, so scores 5 and 115."""
    head = ScoreHead(2, ["sentence/accuracy", "sentence/fluency"])
    assert head.net.bias.tolist() == [0.5, 0.5]
    hidden = torch.tensor([[1.0, 2.0], [1.0, 2.0]])
    with torch.no_grad():
        head.net.weight.copy_(torch.tensor([[0.0, 0.0], [3.0, 4.0]]))
    assert head(hidden, torch.tensor([0, 1])).tolist() == [5.0, 115.0]
    mlp = ScoreHead(2, ["a", "b", "c"], hidden_size=8)
    assert mlp(hidden, torch.tensor([2, 0])).shape == (2,)


@pytest.mark.parametrize(
    ("name", "kind", "flags"),
    [
        ("ce", CrossEntropy, (False, False)),
        ("fa", FairAverage, (False, True)),
        ("regression", Regression, (False, True)),
        ("simpo_ce", SimPOCrossEntropy, (True, False)),
    ],
)
def test_objective_configs_instantiate(name, kind, flags):
    objective = instantiate(compose_config("train", [f"objective={name}"]).objective)
    assert type(objective) is kind and isinstance(objective, Objective)
    assert (objective.needs_pairs, objective.masked_slots) == flags


def test_simpo_defaults_are_the_papers():
    objective = instantiate(compose_config("train", ["objective=simpo_ce"]).objective)
    assert (objective.beta, objective.gamma, objective.ce_weight) == (0.1, 0.5, 0.1)
    assert objective.margin_convention == "wang2025"  # the equation as Wang et al. print it


@pytest.mark.parametrize("name", ["fa", "regression"])
def test_single_token_objectives_refuse_digit_prompts(name):
    objective = instantiate(compose_config("train", [f"objective={name}"]).objective)
    objective.check(load_prompt("multi"))  # added tokens: fine
    with pytest.raises(ValueError, match=r"set prompt\.score_tokens=added"):
        objective.check(load_prompt("multi", score_tokens="digits"))
    with pytest.raises(ValueError, match="zeroshot writes score_tokens=digits"):
        objective.check(load_prompt("zeroshot"))


def test_generation_objectives_take_any_prompt():
    for objective in (CrossEntropy(), SimPOCrossEntropy()):
        objective.check(load_prompt("zeroshot"))
        objective.check(load_prompt("multi", score_tokens="digits"))


def test_regression_setup_attaches_a_head_per_aspect():
    model = SimpleNamespace(config=SimpleNamespace(text_config=SimpleNamespace(hidden_size=4)))
    model.get_output_embeddings = lambda: nn.Linear(4, 3)
    model.add_module = lambda name, module: setattr(model, name, module)
    modules = Regression().setup(model, None, load_prompt("sentence"))
    assert modules == ["score_head"]
    assert model.score_head.aspects == [
        f"sentence/{a}" for a in ("accuracy", "fluency", "prosodic", "completeness", "total")
    ]
