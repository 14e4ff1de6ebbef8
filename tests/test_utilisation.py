"""bench.utilisation: the FLOPs it counts and the times it takes are those of the work it names."""

import pytest
import torch

from apa.training.run import adapted_model, training_collator, training_set
from apa.training.trainer import Scorer
from bench import recipes as bench_recipes
from bench import utilisation


def test_a_matrix_product_counts_2mkn_flops():
    a, b = torch.randn(8, 16), torch.randn(16, 4)
    assert utilisation.counted_flops(lambda: a @ b) == 2 * 8 * 16 * 4


def test_the_median_batch_straddles_the_median_length():
    class Lengths(list):
        lengths = property(lambda self: [len(item) for item in self])

    dataset = Lengths(["x" * n for n in (9, 1, 7, 3, 5, 8, 2, 6, 4)])
    assert sorted(len(item) for item in utilisation.median_batch(dataset)) == [3, 4, 5, 6]


@pytest.fixture
def tiny_job(corpus, apa_cache, tmp_path, monkeypatch):
    """The bench's job on the tiny model and the test corpus, the model adapted as training adapts it."""
    monkeypatch.setattr(utilisation, "SPEECHOCEAN762", str(corpus))
    job, real_speech = utilisation.job_for("tiny", str(apa_cache), tmp_path)
    assert real_speech  # the corpus is in the official layout: the bench reads it as speechocean762
    model, processor = job.model.load()
    return job, adapted_model(job, model, processor), processor


def test_a_training_step_counts_its_backward_pass_and_times_every_part(tiny_job):
    job, model, processor = tiny_job
    scorer = Scorer(model, job.objective)
    step = utilisation.TrainingStep(
        scorer, training_collator(job, processor), [*training_set(job, model, processor)][:4], 1e-3
    )
    batch = step.collate(step.items)
    forward = utilisation.counted_flops(lambda: scorer(**batch))
    # Frozen weights: the backward pass computes input gradients (about one forward) and LoRA's own.
    assert 1.8 * forward < step.model_flops() < 3.1 * forward
    seconds = step()
    assert set(seconds) == {*utilisation.TrainingStep.PARTS, "total"}
    assert seconds["total"] == pytest.approx(sum(seconds[part] for part in utilisation.TrainingStep.PARTS))
    shares = step.operator_shares()
    assert sum(shares.values()) == pytest.approx(1) and list(shares.values()) == sorted(shares.values(), reverse=True)
    assert "aten::mm" in shares or "aten::addmm" in shares
    assert step.tokens() == int(batch["attention_mask"].sum())


def test_decoding_utilisation_counts_each_decoder(tiny_job):
    job, model, processor = tiny_job
    results = utilisation.decoding(job, model, processor, repeats=1)
    for name in ("slot_decoding", "slot_decoding_bf16", "generation"):
        assert results[f"{name}_flops_per_utterance"] > 0 and results[f"{name}_seconds_per_utterance"] > 0
    # The same work in another precision: the same FLOPs.
    assert results["slot_decoding_bf16_flops_per_utterance"] == results["slot_decoding_flops_per_utterance"]


def test_recipes_are_timed_on_the_same_utterances_and_compared_with_the_first(corpus, apa_cache, monkeypatch):
    monkeypatch.setattr(utilisation, "SPEECHOCEAN762", str(corpus))
    recipes = {"multi": ["prompt=multi"], "compact": ["prompt=multi_compact"]}
    results = bench_recipes.compare(recipes, "tiny", str(apa_cache), repeats=2)
    multi, compact = results["recipes"]["multi"], results["recipes"]["compact"]
    assert results["real_speech"] and results["batch"] == utilisation.BATCH
    assert multi["speedup"] == 1 and compact["speedup"] > 0
    assert multi["step_seconds"]["n"] == compact["step_seconds"]["n"] == 2
    assert compact["seconds_per_sample"] == pytest.approx(compact["step_seconds"]["median"] / utilisation.BATCH)
    assert compact["overrides"] == ["prompt=multi_compact"]
    # Same utterances, same answers: the compact instruction is what is shorter.
    assert 0 < compact["batch_tokens"] < multi["batch_tokens"]
