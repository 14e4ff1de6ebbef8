"""ce's options beyond the paper: masked slots that keep their written class as the label, and a
weight for the template's tokens against the score tokens (the paper's loss is the default)."""

import math
import re

import pytest
import torch
from hydra.utils import instantiate

from apa.evaluation import SlotDecoder, default_decoder
from apa.models.batching import IGNORE
from apa.objectives import CrossEntropy, SimPOCrossEntropy
from apa.objectives.base import gold_at_slots, target_log_probs
from apa.trained_run import objective_flags
from bench.common import compose_config

from .test_objectives import LogitsAreHidden


def one_row(labels):
    """One row of three positions, its slot at position 2 (the score token the row's label 1 is)."""
    return {
        "input_ids": torch.zeros(1, 3, dtype=torch.long),
        "labels": torch.tensor([labels]),
        "slot_positions": torch.tensor([[2]]),
        "slot_valid": torch.tensor([[True]]),
        "slot_written": torch.tensor([[1]]),
    }


def test_the_template_weight_reweighs_template_against_score_tokens(monkeypatch):
    """Position 0 predicts the template token 0 with p = 1/2 (uniform logits), position 1 the slot's
    token 1 with p = 3/4 (logits 0, log 3): l_template = log 2, l_slot = log 4/3. With w = 0.5:
    (0.5 log 2 + log 4/3) / 1.5; w = 1 is the plain mean."""
    hidden = torch.tensor([[[0.0, 0.0], [0.0, math.log(3)], [0.0, 0.0]]])
    batch = one_row([IGNORE, 0, 1]) | {"hidden": hidden}
    monkeypatch.setattr("apa.objectives.cross_entropy.hidden_states", lambda model, batch: batch["hidden"])
    template, slot = math.log(2), math.log(4 / 3)
    weighted = CrossEntropy(template_weight=0.5)(LogitsAreHidden(), batch)
    assert weighted.loss.item() == pytest.approx((0.5 * template + slot) / 1.5)
    assert weighted.metrics["slot_ce"].item() == pytest.approx(slot)
    assert weighted.metrics["template_ce"].item() == pytest.approx(template)
    assert CrossEntropy()(LogitsAreHidden(), batch).loss.item() == pytest.approx((template + slot) / 2)


def test_masked_slots_keep_the_written_class_as_the_label():
    """The collator leaves a masked slot unlabelled; the objective labels it with its written
    class's token (class 1 here: the vocabulary's second score token, id 51)."""
    labels = gold_at_slots(one_row([IGNORE, 0, IGNORE]), torch.arange(50, 61))
    assert labels.tolist() == [[IGNORE, 0, 51]]


@pytest.mark.parametrize("name", ["ce", "simpo_ce"])
def test_masked_ce_models_are_read_by_slots_in_one_pass(name):
    objective = instantiate(compose_config("train", [f"objective={name}", "objective.masked_slots=true"]).objective)
    assert isinstance(objective, CrossEntropy | SimPOCrossEntropy) and objective.masked_slots
    decoder = default_decoder(objective)
    assert isinstance(decoder, SlotDecoder) and decoder.masked_slots
    paper = instantiate(compose_config("train", [f"objective={name}"]).objective)
    assert not paper.masked_slots and paper.decoding == "generate"  # the paper's recipe by default


def test_a_run_folder_reads_the_slot_mode_its_config_set():
    node = {"_target_": "apa.objectives.CrossEntropy", "masked_slots": True}
    flags = objective_flags(node)
    assert (flags.name, flags.masked_slots, flags.decoding) == ("ce", True, "slots")
    assert objective_flags({"_target_": "apa.objectives.CrossEntropy"}).decoding == "generate"


def masked_pairs(rejected_tokens: list[int]):
    """Two pairs (rows 0, 1 chosen; 2, 3 rejected) whose slot (position 2) is masked: the chosen
    answers wrote classes 1 and 0, the rejected ones 0 and 1; ``rejected_tokens`` feeds row 2."""
    return {
        "input_ids": torch.tensor([[3, 4, 9], [5, 6, 9], rejected_tokens, [5, 6, 9]]),
        "attention_mask": torch.ones(4, 3, dtype=torch.long),
        "audio_index": torch.tensor([0, 1, 0, 1]),
        "labels": torch.tensor([[IGNORE, 4, IGNORE]] * 2 + [[IGNORE, 4, IGNORE]] * 2),
        "slot_positions": torch.tensor([[2]] * 4),
        "slot_valid": torch.tensor([[True]] * 4),
        "slot_written": torch.tensor([[1], [0], [0], [1]]),
        "chosen_rows": torch.tensor([0, 1]),
        "rejected_rows": torch.tensor([2, 3]),
    }


def chosen_and_rejected():
    """Two rows, their hidden states being the logits: a template token at p = 1/2, then the slot,
    the chosen row's (label 1) at p = 3/4, the rejected row's (label 0) at p = 1/4."""
    hidden = torch.tensor([[[0.0, 0.0], [0.0, math.log(3)], [0.0, 0.0]]] * 2)
    batch = {
        "input_ids": torch.zeros(2, 3, dtype=torch.long),
        "labels": torch.tensor([[IGNORE, 0, 1], [IGNORE, 0, 0]]),
        "slot_positions": torch.tensor([[2], [2]]),
        "slot_valid": torch.tensor([[True], [True]]),
        "chosen_rows": torch.tensor([0]),
        "rejected_rows": torch.tensor([1]),
    }
    return batch, hidden


def test_simpo_can_anchor_on_the_score_tokens_alone(monkeypatch):
    """:func:`chosen_and_rejected`: the chosen row's template token has p = 1/2, its slot p = 3/4.
    The CE anchor is their mean with the template weighted 1, the slot's alone with 0."""
    batch, hidden = chosen_and_rejected()
    monkeypatch.setattr("apa.objectives.simpo.hidden_states", lambda model, batch: hidden)
    template, slot = math.log(2), math.log(4 / 3)
    plain = SimPOCrossEntropy()(LogitsAreHidden(), batch).metrics["ce"].item()
    slots_only = SimPOCrossEntropy(template_weight=0)(LogitsAreHidden(), batch).metrics["ce"].item()
    assert plain == pytest.approx((template + slot) / 2) and slots_only == pytest.approx(slot)
    with pytest.raises(ValueError, match="expected a non-negative number"):
        SimPOCrossEntropy(template_weight=-1)


def test_masked_simpo_runs_the_model_once_per_pair(monkeypatch):
    """With masked slots a chosen and a rejected answer are the same tokens: the language model sees
    the two chosen rows only, and the loss is the one of running all four rows."""
    table = torch.randn(10, 11)
    seen = []

    def hidden_of_tokens(model, batch):  # each position's hidden state depends on its token alone
        seen.append(batch["input_ids"].tolist())
        return table[batch["input_ids"]]

    monkeypatch.setattr("apa.objectives.simpo.hidden_states", hidden_of_tokens)
    objective = SimPOCrossEntropy(masked_slots=True, reward="slots_mean")
    objective.class_ids = torch.arange(11)
    batch = masked_pairs([3, 4, 9])
    shared = objective(LogitsAreHidden(), batch)
    assert seen == [[[3, 4, 9], [5, 6, 9]]]
    labels = gold_at_slots(batch, objective.class_ids)
    log_probs, rows = target_log_probs(LogitsAreHidden(), table[batch["input_ids"]], labels)
    slot = log_probs[1::2]  # each row: its template token, then its slot
    assert shared.metrics["margin"].item() == pytest.approx((slot[:2] - slot[2:]).mean().item())
    assert shared.metrics["ce"].item() == pytest.approx(-log_probs[rows < 2].mean().item())
    with pytest.raises(ValueError, match="a rejected answer's tokens differ from its chosen answer's"):
        objective(LogitsAreHidden(), masked_pairs([3, 7, 9]))


@pytest.mark.parametrize("objective", ["ce", "simpo_ce"])
def test_masked_ce_trains_on_the_tiny_model(compose, objective):
    from .test_training import logged_steps

    steps = logged_steps(compose, objective, 2, "prompt=multi", "objective.masked_slots=true")
    assert len(steps) == 2 and all(math.isfinite(log["loss"]) for log in steps)
    if objective == "ce":
        assert all(log["slot_ce"] > 0 and log["template_ce"] > 0 for log in steps)
    else:  # the negatives differ at a labelled slot: the rewards differ
        assert any(abs(log["margin"]) > 0 for log in steps)


@pytest.mark.parametrize(("reward", "margin"), [("answer_mean", math.log(3) / 2), ("slots_mean", math.log(3))])
def test_simpo_can_reward_the_score_tokens_alone(monkeypatch, reward, margin):
    """:func:`chosen_and_rejected`: over the answer the reward gap is log 3 / 2; over the slot, log 3."""
    batch, hidden = chosen_and_rejected()
    monkeypatch.setattr("apa.objectives.simpo.hidden_states", lambda model, batch: hidden)
    output = SimPOCrossEntropy(reward=reward)(LogitsAreHidden(), batch)
    assert output.metrics["margin"].item() == pytest.approx(margin)
    with pytest.raises(ValueError, match=re.escape("objective.reward='tokens' is not one of")):
        SimPOCrossEntropy(reward="tokens")


@pytest.mark.parametrize("kind", ["mask", "corrupt"])
def test_slot_noise_replaces_slot_inputs_and_keeps_their_labels(kind):
    """Every slot (p = 1): its input becomes the mask token (id 99) or one of the class tokens
    (50-60); the template and every label stay."""
    objective = CrossEntropy(slot_noise=1.0, slot_noise_kind=kind)
    objective.class_ids, objective.mask_id = torch.arange(50, 61), 99
    batch = one_row([IGNORE, 0, 7]) | {"input_ids": torch.tensor([[3, 4, 7]])}
    noisy = objective.noisy_slots(batch)
    assert noisy["input_ids"][0, :2].tolist() == [3, 4] and noisy["labels"].tolist() == [[IGNORE, 0, 7]]
    slot_input = noisy["input_ids"][0, 2].item()
    assert slot_input == 99 if kind == "mask" else 50 <= slot_input <= 60
    assert batch["input_ids"][0, 2].item() == 7  # the batch itself is left as it was
    assert CrossEntropy(slot_noise=0.0).slot_noise == 0.0


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"slot_noise": 1.5}, "expected a share from 0 to 1"),
        ({"slot_noise": 0.3, "masked_slots": True}, "0 with masked_slots"),
        ({"slot_noise_kind": "swap"}, "slot_noise_kind='swap' is not one of mask, corrupt"),
        ({"template_weight": -1}, "expected a non-negative number"),
    ],
)
def test_bad_ce_options_are_refused(settings, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        CrossEntropy(**settings)


def test_ce_with_slot_noise_trains_and_still_generates(compose):
    from apa import training
    from apa.jobs import train_job

    from .test_training import overrides

    job = train_job(compose("train", overrides("ce", 1, "prompt=multi", "objective.slot_noise=0.3")))
    assert job.objective.decoding == "generate" and math.isfinite(training.run(job))


def test_simpo_redraws_its_negatives_once_an_epoch_only_when_asked():
    from types import SimpleNamespace

    from apa.training.run import negatives_per_example

    def job(**settings):
        return SimpleNamespace(
            objective=SimPOCrossEntropy(**settings), trainer=SimpleNamespace(arguments={"num_train_epochs": 3})
        )

    assert negatives_per_example(job()) == 1 and negatives_per_example(job(redraw_negatives=True)) == 3


def test_simpo_with_redrawn_negatives_trains_across_epochs(compose, monkeypatch):
    from apa import training
    from apa.jobs import train_job
    from apa.training.examples import NegativesOfTheEpoch

    from .test_training import Logged, overrides

    settings = overrides("simpo_ce", 4, "prompt=multi", "objective.redraw_negatives=true")
    job = train_job(compose("train", [*settings, "trainer.arguments.num_train_epochs=2"]))
    job.callbacks = [logged := Logged()]
    seen = []
    original = NegativesOfTheEpoch.on_epoch_begin

    def remember(self, args, state, control, **kwargs):
        original(self, args, state, control, **kwargs)
        seen.append(self.dataset.epoch)

    monkeypatch.setattr(NegativesOfTheEpoch, "on_epoch_begin", remember)
    training.run(job)
    assert seen[:2] == [0, 1]  # three steps an epoch on twelve utterances: the fourth is in the second
    assert all(math.isfinite(log["loss"]) for log in logged.logs if "loss" in log)
