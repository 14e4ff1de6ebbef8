"""The audio-tower cache: the same outputs as running the tower, only while the tower is frozen."""

import numpy as np
import pytest
import torch
from peft import LoraConfig
from transformers.masking_utils import create_bidirectional_mask

import apa.models.audio_cache as audio_cache
from apa.data import FeatureCache
from apa.models import apply_lora
from apa.models.audio_cache import TowerCache, check_frozen
from apa.models.forward import tower_states


@pytest.fixture
def features(tiny, test_utterances, tmp_path):
    _, processor = tiny
    return FeatureCache(str(tmp_path / "features")).load(test_utterances, processor.feature_extractor)


def stock_tower(tower, features, mask):
    """The transformers tower on the full 30 s, padding masked as Qwen2AudioModel does."""
    feature_lengths, _ = tower._get_feat_extract_output_lengths(mask.sum(-1))
    valid = torch.arange(1500)[None] < feature_lengths[:, None]
    attention = create_bidirectional_mask(
        config=tower.config, inputs_embeds=torch.zeros(len(features), 1500, 1), attention_mask=valid.long()
    )
    return tower(features, attention_mask=attention).last_hidden_state


def test_trimmed_tower_equals_the_stock_tower(tiny, features, test_utterances):
    model, _ = tiny
    tower = model.model.audio_tower
    chunks = [features.chunk(u.id, 0) for u in test_utterances]
    batch = torch.from_numpy(np.stack([c.features for c in chunks]))
    mask = torch.zeros(len(chunks), 3000, dtype=torch.long)
    for row, chunk in enumerate(chunks):
        mask[row, : chunk.mel_frames] = 1
    mask[-1] = 1  # a full 30 s clip keeps every frame
    with torch.no_grad():
        mine, lengths = tower_states(tower, batch, mask)
        reference = stock_tower(tower, batch, mask)
    assert lengths[-1] == 750 and mine.shape[1] == 750
    for row, length in enumerate(lengths):
        assert torch.allclose(mine[row, :length], reference[row, :length], atol=1e-5)


def test_cache_holds_the_towers_outputs_and_is_reused(tiny, features, test_utterances, tmp_path, monkeypatch):
    model, _ = tiny
    model.requires_grad_(False)  # as under LoRA: nothing in the tower trains
    cache = TowerCache(str(tmp_path / "tower"), batch_size=3)
    table = cache.load(model, features)
    for utterance in test_utterances:
        chunk = features.chunk(utterance.id, 0)
        mask = torch.zeros(1, 3000, dtype=torch.long)
        mask[0, : chunk.mel_frames] = 1
        with torch.no_grad():
            direct, (length,) = tower_states(model.model.audio_tower, torch.from_numpy(chunk.features)[None], mask)
        assert np.allclose(table.chunk(utterance.id, 0).states, direct[0, :length].numpy(), atol=1e-5)
    monkeypatch.setattr(audio_cache, "tower_states", lambda *a: pytest.fail("the tower ran again"))
    cache.load(model, features)
    with torch.no_grad():
        model.model.audio_tower.conv1.bias.add_(1.0)  # other weights: another cache
    monkeypatch.undo()
    cache.load(model, features)
    assert len(list((tmp_path / "tower").glob("tower-*"))) == 2


def test_building_shows_one_progress_bar(tiny, features, tmp_path, capfd, datasets_progress_bars):
    model, _ = tiny
    model.requires_grad_(False)
    TowerCache(str(tmp_path / "tower")).load(model, features)
    shown = capfd.readouterr().err
    assert "Audio tower outputs" in shown
    assert "Generating train split" not in shown and "Saving the dataset" not in shown


def test_a_training_tower_cannot_be_cached(tiny, features, tmp_path):
    model, _ = tiny
    adapted = apply_lora(model, LoraConfig(r=2, target_modules=r".*audio_tower.*\.q_proj"))
    with pytest.raises(ValueError, match="the audio tower trains"):
        check_frozen(adapted)
    with pytest.raises(ValueError, match="cache_audio_tower=false"):
        TowerCache(str(tmp_path)).load(adapted, features)
