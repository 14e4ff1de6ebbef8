"""Models assembled on this machine (no hub): built once into a cache folder named by their
fingerprint, saved with ``save_pretrained`` (safetensors) and reloaded offline with
``from_pretrained``, exactly like a downloaded checkpoint."""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import ClassVar

import torch
from transformers import ProcessorMixin, Qwen2AudioForConditionalGeneration

from apa.atomic import build_folder
from apa.models.checkpoint import LoadedModel, Qwen2AudioCheckpoint

log = logging.getLogger(__name__)

RUNTIME_FIELDS = ("cache_dir", "dtype", "device", "attn_implementation", "modules_to_save", "quantization")


@dataclass(frozen=True)
class OfflineQwen2Audio:
    """Base class: subclasses say what they are (``name``, ``builder_version``) and ``assemble`` it."""

    cache_dir: str
    seed: int = 0
    dtype: str = "float32"
    device: str = "cpu"
    attn_implementation: str | None = None  # transformers' choice (sdpa) when None
    modules_to_save: Sequence[str] = ()  # parts that start untrained and must train with the adapter
    quantization: str | None = None  # 4bit or 8bit on load (apa.models.quantization); not the weights built

    name: ClassVar[str]
    builder_version: ClassVar[int]

    def architecture(self) -> dict:
        """Everything that determines the saved weights (not where or how they are loaded)."""
        fields = {k: v for k, v in asdict(self).items() if k not in RUNTIME_FIELDS}
        return {"builder": self.name, "builder_version": self.builder_version, **fields, **self.sources()}

    def sources(self) -> dict:
        """Versions of what the weights come from, beyond the fields (packages, files)."""
        return {}

    @property
    def path(self) -> Path:
        digest = hashlib.sha256(json.dumps(self.architecture(), sort_keys=True).encode()).hexdigest()[:12]
        return Path(self.cache_dir).expanduser() / f"{self.name}-{digest}"

    def assemble(self) -> tuple[Qwen2AudioForConditionalGeneration, ProcessorMixin]:
        raise NotImplementedError

    def build(self) -> Path:
        """Write the model and processor to :attr:`path` unless a complete copy is already there.
        The weights follow from :attr:`seed` alone; the caller's random state is left as it was, so
        a run that builds the model trains exactly like one that finds it built."""
        if self.path.is_dir():
            return self.path
        log.info("building %s (seed %d) in %s", self.name, self.seed, self.path)
        with build_folder(self.path) as staging, torch.random.fork_rng():
            torch.manual_seed(self.seed)
            model, processor = self.assemble()
            model.save_pretrained(staging)
            processor.save_pretrained(staging)
            (staging / "apa_model.json").write_text(json.dumps(self.architecture(), indent=2))
        return self.path

    def load(self) -> LoadedModel:
        checkpoint = Qwen2AudioCheckpoint(
            str(self.build()),
            dtype=self.dtype,
            device=self.device,
            attn_implementation=self.attn_implementation,
            local_files_only=True,
            quantization=self.quantization,
        )
        return checkpoint.load()
