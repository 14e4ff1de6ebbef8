"""Whisper log-mel features, computed once per (audio content, feature-extractor config).

The Qwen2-Audio processor always pads audio to 30 s, so the feature matrix is (mel bins, 3000)
whatever the utterance's length. Past the audio, every frame equals the spectrogram's floor
(Whisper clamps log-mel values at max - 8), so the cache stores the frames up to the last one
that differs from the floor, plus the floor itself, and :meth:`FeatureTable.full` rebuilds the
exact matrix. The cache is an Arrow dataset on disk, read with ``.with_format("numpy")``; its
folder is named by a digest of the extractor config and of every utterance's id and audio bytes,
so any change to either builds a new one.
"""

from __future__ import annotations

import hashlib
import json
import logging
import tempfile
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import datasets
import numpy as np
from datasets import Array2D, Dataset, Features, Value, load_from_disk
from tqdm.auto import tqdm
from transformers import SequenceFeatureExtractor

from apa.atomic import build_folder
from apa.data.audio import load_audio, split_into_chunks
from apa.data.records import Utterance

log = logging.getLogger(__name__)

FORMAT_VERSION = 1


@dataclass(frozen=True)
class ChunkFeatures:
    """One chunk (<= 30 s) of an utterance: its feature matrix and how many frames are audio."""

    features: np.ndarray  # (mel bins, frames), float32, exactly what the processor produces
    mel_frames: int  # frames covered by audio (the processor's feature_attention_mask sum)


@contextmanager
def own_progress_bar_only() -> Iterator[None]:
    """Hide datasets' progress bars (its generator's and its writer's) while the cache shows its own,
    which they would otherwise print onto the same line; their previous state is restored."""
    were_disabled = datasets.are_progress_bars_disabled()
    datasets.disable_progress_bars()
    try:
        yield
    finally:
        if not were_disabled:
            datasets.enable_progress_bars()


def audio_digest(audio: Path | bytes) -> str:
    data = audio if isinstance(audio, bytes) else Path(audio).read_bytes()
    return hashlib.sha256(data).hexdigest()


def fingerprint(utterances: list[Utterance], extractor: SequenceFeatureExtractor) -> str:
    digest = hashlib.sha256()
    config = {"format": FORMAT_VERSION, "extractor": extractor.to_dict()}
    digest.update(json.dumps(config, sort_keys=True, default=str).encode())
    for utterance in utterances:
        digest.update(f"{utterance.id}\0{audio_digest(utterance.audio)}\0".encode())
    return digest.hexdigest()[:16]


def extract(audio: np.ndarray, extractor: SequenceFeatureExtractor) -> list[ChunkFeatures]:
    """Features as the Qwen2-Audio processor computes them (padded to 30 s), chunk by chunk."""
    chunks = []
    for chunk in split_into_chunks(audio, extractor.sampling_rate):
        out = extractor(
            chunk,
            sampling_rate=extractor.sampling_rate,
            padding="max_length",
            return_attention_mask=True,
            return_tensors="np",
        )
        chunks.append(ChunkFeatures(out["input_features"][0], int(out["attention_mask"][0].sum())))
    return chunks


def trim(features: np.ndarray) -> tuple[np.ndarray, float]:
    """Drop the trailing frames that equal the floor; returns (kept frames x bins, floor)."""
    floor = features.min()
    at_floor = (features == floor).all(axis=0)
    keep = 0 if at_floor.all() else len(at_floor) - int(np.argmin(at_floor[::-1]))
    return np.ascontiguousarray(features[:, :keep].T), float(floor)


class FeatureTable:
    """Cached features of a list of utterances, looked up by utterance id."""

    def __init__(self, dataset: Dataset, total_frames: int, fingerprint: str):
        self.dataset = dataset.with_format("numpy")
        self.total_frames = total_frames
        self.fingerprint = fingerprint  # of the audio and the extractor config
        self._rows: dict[str, list[int]] = defaultdict(list)
        for row, uid in enumerate(dataset["id"]):
            self._rows[uid].append(row)

    def __len__(self) -> int:
        return len(self._rows)

    def __contains__(self, uid: str) -> bool:
        return uid in self._rows

    def frames(self) -> dict[tuple[str, int], int]:
        """Audio frames of every (utterance, chunk), read without rebuilding any feature matrix."""
        columns = self.dataset.select_columns(["id", "chunk", "mel_frames"])[:]
        return {
            (u, int(c)): int(f) for u, c, f in zip(columns["id"], columns["chunk"], columns["mel_frames"], strict=True)
        }

    def chunks(self, uid: str) -> list[ChunkFeatures]:
        return [self.full(self.dataset[row]) for row in self._rows[uid]]

    def chunk(self, uid: str, index: int) -> ChunkFeatures:
        return self.full(self.dataset[self._rows[uid][index]])

    def full(self, row: dict) -> ChunkFeatures:
        kept = row["features"]
        features = np.full((kept.shape[1], self.total_frames), row["floor"], dtype=np.float32)
        features[:, : kept.shape[0]] = kept.T
        return ChunkFeatures(features, int(row["mel_frames"]))


@dataclass(frozen=True)
class FeatureCache:
    """Where feature tables live; ``conf/data`` entries share one per machine."""

    cache_dir: str

    FOLDER: ClassVar[str] = "features"  # under apa's cache folder (paths.cache_dir)

    @classmethod
    def under(cls, cache_root: str | Path) -> FeatureCache:
        """The feature cache in apa's cache folder ``cache_root``."""
        return cls(str(Path(cache_root).expanduser() / cls.FOLDER))

    def load(self, utterances: list[Utterance], extractor: SequenceFeatureExtractor) -> FeatureTable:
        digest = fingerprint(utterances, extractor)
        folder = Path(self.cache_dir).expanduser() / f"features-{digest}"
        if not folder.is_dir():
            self._build(folder, digest, utterances, extractor)
        return FeatureTable(load_from_disk(str(folder)), extractor.nb_max_frames, digest)

    def _build(self, folder: Path, digest: str, utterances: list[Utterance], extractor) -> None:
        schema = Features(
            {
                "id": Value("string"),
                "chunk": Value("int32"),
                "features": Array2D(shape=(None, extractor.feature_size), dtype="float32"),
                "floor": Value("float32"),
                "mel_frames": Value("int32"),
            }
        )

        def rows():
            for utterance in tqdm(utterances, desc="Whisper features", unit="utt"):
                audio = load_audio(utterance.audio, extractor.sampling_rate, name=utterance.id)
                for index, chunk in enumerate(extract(audio, extractor)):
                    kept, floor = trim(chunk.features)
                    yield {
                        "id": utterance.id,
                        "chunk": index,
                        "features": kept,
                        "floor": floor,
                        "mel_frames": chunk.mel_frames,
                    }

        with build_folder(folder) as staging, tempfile.TemporaryDirectory() as arrow_cache, own_progress_bar_only():
            dataset = Dataset.from_generator(rows, features=schema, cache_dir=arrow_cache, fingerprint=digest)
            dataset.save_to_disk(str(staging))
        log.info("cached features of %d utterances in %s", len(utterances), folder)
