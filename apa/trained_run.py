"""A finished training run's folder, rebuilt: the one reader behind ``evaluate.py checkpoint=`` and
``apa score``.

``config.yaml`` is read checked (:func:`apa.runs.read_run`: a finished run, only apa's own targets,
no remote code unless the command line allows it) before anything loads; the model, the prompt,
the corpus and the decoder are built from its groups with Hydra, as train.py built them. How the
model is decoded is the node training wrote (``decoding``), else, for a run written before
training recorded it, its objective's own (:func:`apa.evaluation.decoding_config`); the objective's
class is only looked up for its flags, never instantiated.

It sits at the edge with the entry points (it uses Hydra) and imports torch only when a model is
built or decoded.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

from hydra.utils import get_class, instantiate

from apa.data.lexicon import LEXICON_FILE
from apa.runs import ADAPTER_DIR, HYDRA_RECORD, RunFolderError, read_config_yaml, read_run

if TYPE_CHECKING:
    from apa.evaluation import Detection
    from apa.evaluation.decoders import Decoder
    from apa.models import LoadedModel, ModelSource
    from apa.prompts import Prompt

PROJECT_ROOT = Path(__file__).resolve().parents[1]


@dataclass
class TrainedRun:
    """A training run's folder: ``config.yaml`` (the resolved config) and ``adapter/``."""

    folder: Path
    config: dict[str, Any]

    @classmethod
    def open(cls, folder: Path, trust_remote_code: bool = False) -> TrainedRun:
        """The folder's config, checked before anything loads: a finished run, naming only apa's own
        targets, running no model repository's code unless ``trust_remote_code`` (from the command
        line, never from the folder)."""
        return cls(folder, read_run(folder, trust_remote_code))

    def build(self, group: str, chosen: Mapping[str, Any] | None = None) -> Any:
        """``chosen`` (this command's node for ``group``) if given, else the run's own, instantiated."""
        node = chosen or self.config.get(group)
        return instantiate(node) if node else None

    @cached_property
    def model(self) -> ModelSource:
        return self.build("model")

    @cached_property
    def prompt(self) -> Prompt:
        return self.build("prompt")

    @property
    def adapter(self) -> Path:
        return self.folder / ADAPTER_DIR

    def decoder(self, chosen: Mapping[str, Any] | None = None) -> Decoder:
        """How the run is read: ``chosen`` (a ``decoding=`` node) else the run's own, completed by its
        objective's defaults (the slot mode it trained)."""
        from apa.evaluation import decoding_config

        objective = objective_flags(self.config["objective"])
        return instantiate(decoding_config(objective, chosen or self.config.get("decoding")))

    def detection(self, chosen: Detection) -> Detection:
        """``chosen`` (this command's detection), with the threshold the run's dev split chose when it
        gives none and tells mispronounced phones the same way."""
        own = self.build("detection")
        if chosen.threshold is None and own is not None and own.below == chosen.below:
            return chosen.with_threshold(own.threshold)
        return chosen

    def load(self) -> LoadedModel:
        from apa.models import LoadedModel
        from apa.models.adapter import load_adapter

        model, processor = self.model.load()
        return LoadedModel(load_adapter(model, processor, self.adapter, self.prompt.vocabulary), processor)

    @property
    def corpus(self) -> Path | None:
        """The speechocean762 folder the run trained on, when it is on this machine (for its lexicon).
        A relative ``data.root`` is read from where the run was launched (Hydra's ``.hydra/hydra.yaml``
        records it), else from apa's checkout (where the shipped adapter was trained), never from
        the current folder: the same run gives the same phones whatever folder it is used from."""
        root = (self.config.get("data") or {}).get("root")
        if not root:
            return None
        path = Path(root).expanduser()
        if not path.is_absolute():
            path = (self.launch_folder() or PROJECT_ROOT) / path
        path = Path(os.path.normpath(path))  # tidied, not resolved: the folder as the run and the user name it
        return path if (path / LEXICON_FILE).is_file() else None

    def launch_folder(self) -> Path | None:
        record = self.folder / HYDRA_RECORD
        try:
            cwd = read_config_yaml(record)["hydra"]["runtime"]["cwd"]
        except (OSError, RunFolderError, KeyError, TypeError):
            return None  # not launched by Hydra (the shipped adapter), or no record of where
        return Path(cwd) if isinstance(cwd, str) else None

    @property
    def needs_phones(self) -> bool:
        """Whether the prompt writes canonical phones (phone scores, or ``{phones}`` in its instruction)."""
        return "phone" in self.prompt.aspects or "{phones}" in self.prompt.instruction


def objective_flags(node: Mapping[str, Any]) -> SimpleNamespace:
    """A run's objective as decoding needs it (``name``, ``masked_slots``, ``decoding``): its class's
    flags with what its config set, never built (a folder's arguments need not fit the class). The
    target is one of apa's objectives: :func:`apa.runs.read_run` checked it."""
    objective = get_class(node["_target_"])
    masked = bool(node.get("masked_slots", objective.masked_slots))
    return SimpleNamespace(name=objective.name, masked_slots=masked, decoding=objective.reads(masked))
