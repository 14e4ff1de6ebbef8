"""How a trained model is decoded, spelt once: the objective's own decoder, a chosen one on top."""

import pytest
from hydra.utils import instantiate

from apa.evaluation import GenerationDecoder, RegressionDecoder, SlotDecoder, decoding_config, default_decoder
from apa.objectives import CrossEntropy, FairAverage, Regression, SimPOCrossEntropy

SLOTS = "apa.evaluation.SlotDecoder"


@pytest.mark.parametrize(
    ("objective", "expected", "masked"),
    [
        (FairAverage, SlotDecoder, True),
        (Regression, RegressionDecoder, None),
        (CrossEntropy, GenerationDecoder, None),
        (SimPOCrossEntropy, GenerationDecoder, None),
        (None, GenerationDecoder, None),  # an untrained model: free generation
    ],
)
def test_each_objective_names_its_decoder(objective, expected, masked):
    decoder = default_decoder(objective)
    assert type(decoder) is expected
    assert getattr(decoder, "masked_slots", None) == masked
    assert type(default_decoder(FairAverage())) is SlotDecoder  # an instance reads as its class


@pytest.mark.parametrize("decoder", [GenerationDecoder(4, 64), SlotDecoder(3, "hard", True), RegressionDecoder(5)])
def test_a_decoders_config_builds_it_again(decoder):
    rebuilt = instantiate(decoder.config())
    assert type(rebuilt) is type(decoder) and vars(rebuilt) == vars(decoder)


def test_a_chosen_decoder_keeps_the_slot_mode_the_model_trained_with():
    """``decoding=slots decoding.readout=hard`` on a fair-average run: read hard, slots still masked;
    slot decoding of a model whose objective does not mask them: left to right."""
    chosen = {"_target_": SLOTS, "batch_size": 8, "readout": "hard"}
    assert decoding_config(FairAverage, chosen) == {**chosen, "masked_slots": True}
    assert decoding_config(Regression, chosen)["masked_slots"] is True
    assert decoding_config(CrossEntropy, chosen)["masked_slots"] is False
    assert decoding_config(None, chosen)["masked_slots"] is False
    generation = {"_target_": "apa.evaluation.GenerationDecoder", "max_new_tokens": 64}
    assert decoding_config(FairAverage, generation) == {**generation, "batch_size": 8}
    assert decoding_config(FairAverage) == default_decoder(FairAverage).config()


@pytest.mark.parametrize(("objective", "masked"), [(FairAverage, False), (CrossEntropy, True), (None, True)])
def test_slots_read_the_other_way_than_trained_are_refused(objective, masked):
    with pytest.raises(ValueError, match="must read them as the model was trained"):
        decoding_config(objective, {"_target_": SLOTS, "masked_slots": masked})


def test_a_decoder_that_is_not_apas_is_taken_as_chosen():
    mine = {"_target_": "my_lab.BeamDecoder", "beams": 4}
    assert decoding_config(FairAverage, mine) == mine


def test_training_refuses_a_slot_decoder_that_reads_the_other_way():
    from types import SimpleNamespace

    from apa.training.run import job_decoder

    with pytest.raises(ValueError, match="objective fa masks the score slots"):
        job_decoder(SimpleNamespace(decoder=SlotDecoder(masked_slots=False), objective=FairAverage()))
    own = job_decoder(SimpleNamespace(decoder=None, objective=FairAverage()))
    assert isinstance(own, SlotDecoder) and own.masked_slots
