"""LoRA from config: adapters only in the language model; a step moves them and nothing else."""

import pytest
import torch
from hydra.utils import instantiate
from peft import LoraConfig

from apa.models import apply_lora, lora_modules
from apa.models.lora import component_of, merged_adapter

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


def adapted_with_random_deltas(model, lora_config):
    """``model`` with LoRA whose B matrices are random, so that merging changes the weights."""
    peft_model = apply_lora(model, lora_config)
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for name, parameter in peft_model.named_parameters():
            if "lora_B" in name:
                parameter.copy_(torch.randn(parameter.shape, generator=generator) * 0.05)
    return peft_model.eval()


def test_a_merged_adapter_computes_what_the_unmerged_one_does_and_is_unmerged_after(tiny, lora_config, labelled_batch):
    model, _ = tiny
    peft_model = adapted_with_random_deltas(model, lora_config)
    _, inputs = labelled_batch
    base = {n: p.detach().clone() for n, p in peft_model.named_parameters() if "base_layer" in n}
    with torch.no_grad():
        unmerged = peft_model(**inputs).logits
        with merged_adapter(peft_model) as inside:
            layers = [peft_model.get_submodule(name) for name in lora_modules(peft_model)]
            assert all(layer.merged for layer in layers)
            weight = next(n for n in base if n.endswith("q_proj.base_layer.weight"))
            assert not torch.allclose(dict(peft_model.named_parameters())[weight], base[weight])  # folded in
            merged = inside(**inputs).logits
    torch.testing.assert_close(merged, unmerged, rtol=1e-4, atol=1e-4)
    assert not any(layer.merged for layer in layers)
    after = dict(peft_model.named_parameters())
    for name, before in base.items():
        torch.testing.assert_close(after[name], before, rtol=0, atol=1e-6)


def test_an_error_inside_still_unmerges_and_a_plain_model_is_left_alone(tiny, lora_config):
    model, _ = tiny
    plain_weights = [p.detach().clone() for p in model.parameters()]
    with merged_adapter(model) as inside:
        assert inside is model
    assert all(torch.equal(p, q) for p, q in zip(model.parameters(), plain_weights, strict=True))
    peft_model = adapted_with_random_deltas(model, lora_config)
    with pytest.raises(RuntimeError, match="inside"), merged_adapter(peft_model):
        raise RuntimeError("inside")
    assert not any(peft_model.get_submodule(name).merged for name in lora_modules(peft_model))
