"""What the caches cost and save: building the feature and audio-tower caches, reading them
again, and a training epoch with the tower's outputs cached against one running the tower."""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

from hydra.utils import instantiate
from transformers import TrainerCallback

from apa import training
from apa.data import FeatureCache, SyntheticCorpus
from apa.models.audio_cache import TowerCache
from bench.common import compose_config, timed
from bench.training import config, training_job


class EpochTimes(TrainerCallback):
    def on_epoch_begin(self, args, state, control, **kwargs):
        self.start = time.perf_counter()

    def on_epoch_end(self, args, state, control, **kwargs):
        self.seconds = [*getattr(self, "seconds", []), time.perf_counter() - self.start]


def epoch_seconds(model: str, cache_dir: str, utterances: int, batch_size: int, cache_tower: bool) -> list[float]:
    steps = 2 * utterances // batch_size
    run_dir = Path(tempfile.mkdtemp())
    cfg = config(model, cache_dir, utterances, batch_size, steps, run_dir, f"cache_audio_tower={cache_tower}")
    times = EpochTimes()
    training.run(training_job(cfg, times))
    return times.seconds


def benchmark(model_name: str, cache_dir: str, utterances: int, batch_size: int, repeats: int) -> dict:
    model, processor = instantiate(
        compose_config("train", [f"model={model_name}", f"paths.cache_dir={cache_dir}"]).model
    ).load()
    model.requires_grad_(False)  # as under LoRA
    train = SyntheticCorpus(cache_dir).utterances("train")[:utterances]
    with tempfile.TemporaryDirectory() as fresh:
        features = FeatureCache.under(fresh)
        build_features = timed(lambda: features.load(train, processor.feature_extractor))
        read_features = timed(lambda: features.load(train, processor.feature_extractor))
        table = features.load(train, processor.feature_extractor)
        tower = TowerCache.under(fresh)
        build_tower = timed(lambda: tower.load(model, table))
        read_tower = timed(lambda: tower.load(model, table))
    runs = {True: [], False: []}
    for _ in range(repeats):  # alternate, so that neither setting always runs on a warmer machine
        for cache_tower in (False, True):
            runs[cache_tower].append(epoch_seconds(model_name, cache_dir, utterances, batch_size, cache_tower))
    cached = [statistics.median(epoch) for epoch in zip(*runs[True], strict=True)]
    uncached = [statistics.median(epoch) for epoch in zip(*runs[False], strict=True)]
    return {
        "cache_features_build_seconds_per_utterance": build_features / utterances,
        "cache_features_read_seconds": read_features,
        "cache_tower_build_seconds_per_utterance": build_tower / utterances,
        "cache_tower_read_seconds": read_tower,
        "cache_epoch1_seconds": cached[0],
        "cache_epoch2_seconds": cached[1],
        "cache_epoch2_without_tower_cache_seconds": uncached[1],
        "cache_tower_epoch_speedup": uncached[1] / cached[1],
    }
