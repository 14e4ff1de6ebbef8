"""Audio-tower outputs, computed once per utterance chunk and reused in every epoch and run.

While the audio tower is frozen (the default: LoRA adapts the language model only), its output
for an utterance never changes, so training reads it from disk instead of running the tower.
The cache is keyed by the features' fingerprint and a digest of the tower's weights; a tower
that trains cannot use it (:func:`check_frozen`).
"""

from __future__ import annotations

import hashlib
import tempfile
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch
from datasets import Array2D, Dataset, Features, Value, load_from_disk
from torch import nn
from tqdm.auto import tqdm

from apa.atomic import build_folder
from apa.data.features import FeatureTable, own_progress_bar_only
from apa.models.forward import qwen2_audio, tower_states


@dataclass(frozen=True)
class TowerStates:
    """One chunk's tower output frames (frames, d_model): what the projector reads."""

    states: np.ndarray


def check_frozen(model: nn.Module) -> None:
    trained = [name for name, p in qwen2_audio(model).model.audio_tower.named_parameters() if p.requires_grad]
    if trained:
        raise ValueError(
            f"the audio tower trains ({trained[0]}, ...), so its outputs change and cannot be cached: "
            "set cache_audio_tower=false, or keep LoRA off the tower"
        )


def tower_digest(model: nn.Module) -> str:
    digest = hashlib.sha256()
    for name, tensor in sorted(qwen2_audio(model).model.audio_tower.state_dict().items()):
        digest.update(name.encode() + tensor.detach().cpu().float().numpy().tobytes())
    return digest.hexdigest()[:16]


class TowerTable:
    """Cached tower outputs, looked up like a :class:`~apa.data.features.FeatureTable`."""

    def __init__(self, dataset: Dataset):
        self.dataset = dataset.with_format("numpy")
        self._rows: dict[str, list[int]] = defaultdict(list)
        for row, uid in enumerate(dataset["id"]):
            self._rows[uid].append(row)

    def chunk(self, uid: str, index: int) -> TowerStates:
        return TowerStates(self.dataset[self._rows[uid][index]]["states"])


@dataclass(frozen=True)
class TowerCache:
    cache_dir: str
    batch_size: int = 8

    FOLDER: ClassVar[str] = "tower"  # under apa's cache folder (paths.cache_dir)

    @classmethod
    def under(cls, cache_root: str | Path) -> TowerCache:
        """The audio-tower cache in apa's cache folder ``cache_root``."""
        return cls(str(Path(cache_root).expanduser() / cls.FOLDER))

    @torch.no_grad()
    def load(self, model: nn.Module, features: FeatureTable) -> TowerTable:
        check_frozen(model)
        folder = Path(self.cache_dir).expanduser() / f"tower-{features.fingerprint}-{tower_digest(model)}"
        if not folder.is_dir():
            self._build(folder, model, features)
        return TowerTable(load_from_disk(str(folder)))

    def _build(self, folder: Path, model: nn.Module, features: FeatureTable) -> None:
        tower = qwen2_audio(model).model.audio_tower
        frames = features.frames()
        keys = sorted(frames, key=frames.get)  # similar lengths together: the tower runs on the longest of a batch
        schema = Features(
            {
                "id": Value("string"),
                "chunk": Value("int32"),
                "states": Array2D(shape=(None, tower.config.d_model), dtype="float32"),
            }
        )

        def rows():
            for start in tqdm(range(0, len(keys), self.batch_size), desc="Audio tower outputs", unit="batch"):
                batch = keys[start : start + self.batch_size]
                chunks = [features.chunk(uid, index) for uid, index in batch]
                input_features = torch.from_numpy(np.stack([c.features for c in chunks]))
                mask = torch.zeros(len(chunks), input_features.shape[-1], dtype=torch.long)
                for row, chunk in enumerate(chunks):
                    mask[row, : chunk.mel_frames] = 1
                states, lengths = tower_states(tower, input_features, mask)
                for (uid, index), row, length in zip(batch, states.float().cpu().numpy(), lengths, strict=True):
                    yield {"id": uid, "chunk": index, "states": row[:length]}

        with build_folder(folder) as staging, tempfile.TemporaryDirectory() as arrow_cache, own_progress_bar_only():
            dataset = Dataset.from_generator(rows, features=schema, cache_dir=arrow_cache, fingerprint=folder.name)
            dataset.save_to_disk(str(staging))
