"""The paper presets are what their headers say: the papers' prompts, margin convention, LoRA size
and the table figures they reproduce."""

import pytest
import torch
from hydra.utils import instantiate
from transformers import Qwen2AudioConfig, Qwen2AudioForConditionalGeneration

from apa.models.lora import apply_lora, parameter_counts

from .helpers import CONF_DIR, compose_config

# Qwen2-Audio-7B-Instruct's language model (its config.json): Qwen-7B sizes, no grouped attention.
QWEN2_AUDIO_7B_TEXT = dict(
    model_type="qwen2",
    hidden_size=4096,
    intermediate_size=11008,
    num_hidden_layers=32,
    num_attention_heads=32,
    num_key_value_heads=32,
    vocab_size=156032,
)


def trainable_lora_parameters(experiment: str) -> int:
    """LoRA parameters the preset trains on the 7B architecture (built on the meta device)."""
    lora = instantiate(compose_config("train", [f"experiment={experiment}"]).lora)
    with torch.device("meta"):
        model = Qwen2AudioForConditionalGeneration(Qwen2AudioConfig(text_config=QWEN2_AUDIO_7B_TEXT))
        return parameter_counts(apply_lora(model, lora))["parameters/trainable"]


@pytest.mark.parametrize("experiment", ["ma2025_ce", "ma2025_fa", "ma2025_regression"])
def test_ma_presets_train_about_ten_million_parameters(experiment):
    """r=16 on q and v of 32 layers of width 4096: 32 * 2 * 16 * (4096 + 4096) = 8,388,608,
    Ma et al.'s "about 10M" (all seven projections would be 39,976,960)."""
    assert trainable_lora_parameters(experiment) == 8_388_608


def test_ma_fair_average_preset_trains_the_papers_loss_alone():
    objective = instantiate(compose_config("train", ["experiment=ma2025_fa"]).objective)
    assert (objective.slot_ce_weight, objective.ce_weight) == (0.0, 0.0)


def test_wang_presets_adapt_every_language_model_projection():
    """r=8 on q, k, v, o (8 * 8192 each) and gate, up, down (8 * 15104 each), 32 layers:
    32 * (4 * 65,536 + 3 * 120,832) = 19,988,480."""
    assert trainable_lora_parameters("wang2025_ft") == 19_988_480


@pytest.mark.parametrize(
    ("experiment", "prompt", "objective"),
    [
        ("wang2025_ft", "wang2025_multi", "CrossEntropy"),
        ("wang2025_simpo", "wang2025_multi", "SimPOCrossEntropy"),
        ("wang2025_ft_word_sentence", "wang2025_word_sentence", "CrossEntropy"),
        ("wang2025_simpo_single_aspect", "sentence_total", "SimPOCrossEntropy"),
        ("parikh2025_zeroshot", "parikh2025", None),
    ],
)
def test_presets_use_the_papers_prompts(experiment, prompt, objective):
    task = "evaluate" if experiment.startswith("parikh") else "train"
    cfg = compose_config(task, [f"experiment={experiment}"])
    assert cfg.prompt.name == prompt and cfg.prompt.score_tokens == "digits"
    if objective:
        assert cfg.objective._target_.rsplit(".", 1)[-1] == objective


@pytest.mark.parametrize("experiment", ["wang2025_simpo", "wang2025_simpo_single_aspect"])
def test_simpo_presets_name_their_margin_convention(experiment):
    objective = instantiate(compose_config("train", [f"experiment={experiment}"]).objective)
    assert (objective.beta, objective.gamma, objective.ce_weight) == (0.1, 0.5, 0.1)
    assert objective.margin_convention == "wang2025"
    assert "margin_convention: wang2025" in (CONF_DIR / "experiment" / "wang2025_simpo.yaml").read_text()


# The figures each preset's header must cite (Wang et al. Tables 1-3, PCC / SCC; Parikh et al.).
CITED = {
    "ma2025_ce": ["LoRA r=16 on q/v"],
    "ma2025_fa": ["LoRA r=16 on q/v", "PCC 0.954 on Linguaskill"],
    "ma2025_regression": ["LoRA r=16 on q/v"],
    "parikh2025_zeroshot": ["Table 1", "accuracy 23.3 / 68.1 / 87.4", "accuracy 0.206; 0.466 / 0.671"],
    "wang2025_ft": ["Table 1, FT row", "phone 0.38 / 0.34", "accuracy 0.51 / 0.46", "total 0.72 / 0.67"],
    "wang2025_simpo": ["Table 1, SimPO row", "accuracy 0.52 / 0.47", "total 0.72 / 0.66"],
    "wang2025_ft_word_sentence": ["Table 2, FT row", "word accuracy 0.57", "prosody 0.78"],
    "wang2025_ft_sentence_accuracy": ["Table 3, FT row", "0.74 / 0.69"],
    "wang2025_ft_sentence_fluency": ["Table 3, FT row", "0.79 / 0.78"],
    "wang2025_ft_sentence_prosodic": ["Table 3, FT row", "0.77 / 0.76"],
    "wang2025_ft_sentence_total": ["Table 3, FT row", "0.77 / 0.71"],
    "wang2025_ft_word_accuracy": ["Table 3, FT row", "0.62 / 0.57"],
    "wang2025_simpo_single_aspect": ["Table 3", "sentence total 0.76 / 0.71", "word accuracy 0.60 / 0.55"],
}


@pytest.mark.parametrize("experiment", sorted(CITED))
def test_preset_headers_cite_their_table(experiment):
    header = "\n".join(
        line.lstrip("# ")
        for line in (CONF_DIR / "experiment" / f"{experiment}.yaml").read_text().splitlines()
        if line.startswith("#")
    )
    header = " ".join(header.split())
    for figure in CITED[experiment]:
        assert figure in header, (experiment, figure)
    assert "Deviations:" in header


@pytest.mark.parametrize("experiment", ["wang2025_ft_fixed", "wang2025_simpo_fixed"])
def test_the_fixed_presets_say_what_departs_and_read_masked_slots_softly(compose, experiment):
    from apa.evaluation import SlotDecoder
    from apa.jobs import train_job

    job = train_job(compose("train", [f"experiment={experiment}", "logger=none"]))
    assert job.prompt.score_tokens == "added" and job.objective.masked_slots
    assert isinstance(job.decoder, SlotDecoder) and job.decoder.masked_slots and job.decoder.readout == "soft"
    header = (CONF_DIR / "experiment" / f"{experiment}.yaml").read_text()
    assert "What departs from the paper, and why" in header
    assert job.objective.template_weight == 0 and "template_weight=0" in header  # the anchor on the score tokens
    if experiment == "wang2025_simpo_fixed":
        assert job.objective.reward == "slots_sum" and job.objective.redraw_negatives
        assert (job.objective.beta, job.objective.gamma) == (0.1, 0.5)  # the paper's
        assert job.objective.ce_weight == 1 and "ce_weight=1" in header  # lambda; the paper: 0.1
