"""model.quantization: the language model's linear layers in 4 or 8 bits under LoRA (QLoRA), the
audio tower, projector and LM head in the model's dtype, and the adapter never merged into them."""

import dataclasses
import re

import pytest
import torch
from hydra.utils import instantiate

from apa.evaluation import SlotDecoder
from apa.models.lora import merged_adapter
from apa.models.quantization import KEPT_IN_DTYPE, is_quantized, quantization_config
from apa.training.run import adapted_model, split_features, training_collator, training_set
from apa.training.trainer import Scorer
from bench.common import compose_config

from .test_training import overrides

bitsandbytes = pytest.importorskip("bitsandbytes", reason="model.quantization needs bitsandbytes (apa[quantization])")


def test_the_4bit_config_is_qlora_and_keeps_the_audio_side():
    config = quantization_config("4bit", torch.bfloat16)
    assert config.load_in_4bit and config.bnb_4bit_quant_type == "nf4" and config.bnb_4bit_use_double_quant
    assert config.bnb_4bit_compute_dtype == torch.bfloat16
    assert set(config.llm_int8_skip_modules) == set(KEPT_IN_DTYPE)
    assert quantization_config("8bit", torch.float32).load_in_8bit
    assert quantization_config(None, torch.float32) is None
    with pytest.raises(ValueError, match=re.escape("model.quantization='3bit' is not one of 4bit, 8bit")):
        quantization_config("3bit", torch.float32)


@pytest.mark.parametrize("model", ["qwen2_audio_7b", "tiny", "mini"])
def test_every_model_config_takes_a_quantization(model):
    source = instantiate(compose_config("train", [f"model={model}", "model.quantization=4bit"]).model)
    assert source.quantization == "4bit"


@pytest.fixture
def quantized_job(compose):
    from apa.jobs import train_job

    job = train_job(compose("train", overrides("fa", 1, "prompt=multi", "model.quantization=4bit")))
    return dataclasses.replace(job, limit=4)


def test_a_4bit_tiny_model_trains_lora_and_decodes_unmerged(quantized_job):
    job = quantized_job
    try:
        model, processor = job.model.load()
    except (RuntimeError, NotImplementedError) as error:  # a bitsandbytes build without a CPU backend
        pytest.skip(f"bitsandbytes cannot quantise on this machine's CPU: {error}")
    linear4bit = bitsandbytes.nn.Linear4bit
    names = {name: type(module) for name, module in model.named_modules()}
    assert any(kind is linear4bit for name, kind in names.items() if "language_model" in name)
    assert not any(kind is linear4bit for name, kind in names.items() if "audio_tower" in name or "projector" in name)
    assert names["lm_head"] is torch.nn.Linear
    model = adapted_model(job, model, processor)
    assert is_quantized(model)
    scorer = Scorer(model, job.objective)
    batch = training_collator(job, processor)([*training_set(job, model, processor)][:2])
    loss = scorer(**batch).loss
    loss.backward()
    lora = [p for n, p in model.named_parameters() if "lora_B" in n]
    assert torch.isfinite(loss) and lora and any(p.grad is not None and p.grad.abs().sum() > 0 for p in lora)
    with merged_adapter(model):
        assert not any(getattr(m, "merged", False) for m in model.modules())  # never merged into 4-bit weights
    utterances, features = split_features(job, processor, "test")
    decoded = SlotDecoder(masked_slots=True).predict(model, processor, job.prompt, utterances[:2], features)
    assert all(0 <= p.scores.total <= 10 for p in decoded.values()) and len(decoded) == 2
