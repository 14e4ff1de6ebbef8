"""Fair average's slot cross-entropy: two-hot targets, hand-computed losses, and why it is needed."""

import math

import pytest
import torch

from apa.objectives import FairAverage
from apa.objectives.fair_average import class_cross_entropy, expected_scores, fair_average_loss, two_hot

from .test_training import overrides

ALL = torch.ones(11, dtype=torch.bool)
STRESS = torch.zeros(11, dtype=torch.bool)
STRESS[[5, 10]] = True


def test_two_hot_puts_the_mean_on_the_score():
    """8.4 -> 0.6 on class 8 and 0.4 on class 9 (mean 0.6 * 8 + 0.4 * 9 = 8.4); the ends of the
    scale and whole scores are one-hot."""
    targets = two_hot(torch.tensor([8.4, 10.0, 0.0, 7.0]))
    assert targets[0].tolist() == pytest.approx([0] * 8 + [0.6, 0.4, 0])
    assert targets[1].tolist() == [0] * 10 + [1]
    assert targets[2].tolist() == [1] + [0] * 10
    assert targets[3].tolist() == [0] * 7 + [1, 0, 0, 0]


def test_two_hot_mean_and_mass_for_any_score():
    scores = torch.rand(200) * 10
    targets = two_hot(scores)
    assert targets.sum(-1).tolist() == pytest.approx([1.0] * 200)
    assert (targets @ torch.arange(11.0)).tolist() == pytest.approx(scores.tolist(), abs=1e-5)
    assert ((targets > 0).sum(-1) <= 2).all()


def test_class_cross_entropy_by_hand():
    """Equal logits: every allowed class has p = 1/11 (all classes) or 1/2 (stress), so the
    cross-entropy of any target is log 11 and log 2: mean (log 11 + log 2) / 2. Logits log 3 on
    class 9 and 0 elsewhere give p_9 = 3/13, p_8 = 1/13; target 8.5 -> -(0.5 log 1/13 + 0.5 log 3/13)."""
    loss = class_cross_entropy(torch.zeros(2, 11), torch.stack([ALL, STRESS]), torch.tensor([8.4, 10.0]))
    assert loss.item() == pytest.approx((math.log(11) + math.log(2)) / 2)
    logits = torch.zeros(1, 11)
    logits[0, 9] = math.log(3)
    loss = class_cross_entropy(logits, ALL[None], torch.tensor([8.5]))
    assert loss.item() == pytest.approx(-(0.5 * math.log(1 / 13) + 0.5 * math.log(3 / 13)))


def test_class_cross_entropy_refuses_a_target_between_allowed_classes():
    with pytest.raises(ValueError, match="stress"):
        class_cross_entropy(torch.zeros(1, 11), STRESS[None], torch.tensor([7.0]))


def test_a_spiked_distribution_stops_fair_average_but_not_the_cross_entropy():
    """The collapse: p is a spike on class 8 (logit 30) while the reference is 3. The expected
    value's gradient, 2 (E - y) p_k (v_k - E), is about 1e-11, so L_FA alone cannot move it;
    the cross-entropy's gradient is p - q, about 1 on classes 8 and 3."""
    logits = torch.zeros(1, 11)
    logits[0, 8] = 30.0
    logits.requires_grad_(True)
    fair_average_loss(logits, ALL[None], torch.tensor([3.0])).backward()
    assert logits.grad.abs().max().item() < 1e-9
    logits.grad = None
    class_cross_entropy(logits, ALL[None], torch.tensor([3.0])).backward()
    assert logits.grad[0, 8].item() == pytest.approx(1.0, abs=1e-6)
    assert logits.grad[0, 3].item() == pytest.approx(-1.0, abs=1e-6)


def test_uninformed_optimum_is_the_label_distribution_not_a_spike():
    """One set of logits shared by every slot (a model that cannot hear): minimising L_FA alone
    ends anywhere with the right mean, while adding the cross-entropy ends at the labels'
    distribution (here half 6s, half 10s: p_6 = p_10 = 0.5), whose expectation is still the mean 8."""
    targets = torch.tensor([6.0, 10.0] * 8)
    logits = torch.zeros(11, requires_grad=True)
    optimiser = torch.optim.Adam([logits], lr=0.1)
    for _ in range(500):
        optimiser.zero_grad()
        shared = logits.expand(len(targets), 11)
        allowed = ALL.expand(len(targets), 11)
        loss = fair_average_loss(shared, allowed, targets) + class_cross_entropy(shared, allowed, targets)
        loss.backward()
        optimiser.step()
    probs = torch.softmax(logits.detach(), -1)
    assert probs[6].item() == pytest.approx(0.5, abs=0.02) and probs[10].item() == pytest.approx(0.5, abs=0.02)
    assert expected_scores(logits.detach()[None], ALL[None]).item() == pytest.approx(8.0, abs=0.05)


@pytest.mark.parametrize("slot_ce_weight", [0.0, 0.5])
def test_objective_adds_the_weighted_slot_cross_entropy(compose, slot_ce_weight):
    """On a real batch of the tiny model: loss = fa_mse + slot_ce_weight * slot_ce, each part logged."""
    from apa.jobs import train_job

    cfg = compose("train", overrides("fa", 1, "prompt=sentence", f"objective.slot_ce_weight={slot_ce_weight}"))
    job = train_job(cfg)
    assert isinstance(job.objective, FairAverage) and job.objective.slot_ce_weight == slot_ce_weight
    batch, model = tiny_fa_batch(job)
    output = job.objective(model, batch)
    assert ("slot_ce" in output.metrics) == bool(slot_ce_weight)
    expected = output.metrics["fa_mse"] + slot_ce_weight * output.metrics.get("slot_ce", 0.0)
    assert output.loss.item() == pytest.approx(float(expected), rel=1e-5)


def tiny_fa_batch(job):
    """Two training examples of ``job``'s corpus for the tiny model, collated as the trainer does."""
    from apa.models.score_tokens import add_score_tokens
    from apa.training.run import training_collator, training_set

    model, processor = job.model.load()
    add_score_tokens(model, processor.tokenizer, job.prompt.vocabulary)
    job.objective.setup(model, processor.tokenizer, job.prompt)
    job.cache_audio_tower = False
    dataset = training_set(job, model, processor)
    return training_collator(job, processor)([dataset[0], dataset[1]]), model
