"""LoRA from config: adapters only in the language model; a step moves them and nothing else."""

import pytest
import torch
from hydra.utils import instantiate
from peft import LoraConfig

from apa.models import apply_lora, lora_modules
from apa.models.lora import component_of

LM_PROJECTIONS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


@pytest.fixture
def lora_config(compose) -> LoraConfig:
    return instantiate(compose("train", ["model=tiny"]).lora)


def test_default_targets_only_language_model_projections(tiny, lora_config):
    model, _ = tiny
    peft_model = apply_lora(model, lora_config)
    adapted = lora_modules(peft_model)
    layers = model.config.text_config.num_hidden_layers
    assert len(adapted) == layers * len(LM_PROJECTIONS)
    assert {component_of(name) for name in adapted} == {"language_model"}
    assert {name.rsplit(".", 1)[-1] for name in adapted} == set(LM_PROJECTIONS)
    for name, parameter in peft_model.named_parameters():
        if component_of(name) in ("audio_tower", "multi_modal_projector"):
            assert not parameter.requires_grad, name
            assert "lora_" not in name, name


def test_a_plain_module_list_would_hit_the_audio_tower(tiny):
    """Why the default is a regex: the audio tower's attention has q_proj/k_proj/v_proj too."""
    model, _ = tiny
    peft_model = apply_lora(model, LoraConfig(r=4, target_modules=["q_proj", "v_proj"]))
    assert "audio_tower" in {component_of(name) for name in lora_modules(peft_model)}


def test_training_step_moves_adapters_and_keeps_base_weights(tiny, lora_config, labelled_batch):
    model, _ = tiny
    peft_model = apply_lora(model, lora_config)
    _, inputs = labelled_batch
    trainable = {n: p for n, p in peft_model.named_parameters() if p.requires_grad}
    frozen_before = {n: p.detach().clone() for n, p in peft_model.named_parameters() if not p.requires_grad}
    trainable_before = {n: p.detach().clone() for n, p in trainable.items()}
    assert trainable and all("lora_" in name for name in trainable)

    optimizer = torch.optim.AdamW(trainable.values(), lr=1e-3)
    peft_model.train()
    loss = peft_model(**inputs).loss
    loss.backward()
    optimizer.step()

    lora_b = [name for name in trainable if "lora_B" in name]
    assert len(lora_b) == len(lora_modules(peft_model))
    for name in lora_b:  # B starts at zero, so the first step must move every one of them
        assert not torch.equal(trainable[name], trainable_before[name]), name
    after = dict(peft_model.named_parameters())
    for name, before in frozen_before.items():
        assert torch.equal(after[name], before), name
