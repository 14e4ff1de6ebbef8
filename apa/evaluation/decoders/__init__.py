"""Decoding strategies: from a model and utterances to predicted scores, one module per strategy.

- :mod:`.generation`: free greedy generation, then parsing (``ce``, ``simpo_ce``, zero-shot);
- :mod:`.slots`: only the answer's score slots are read (``fa``);
- :mod:`.regression`: the regression head at every slot (``regression``).

How a trained model is decoded is spelt once, here: :func:`default_decoder` is the decoder of a
model trained with an objective (its class flag ``decoding`` names the strategy, and slot decoding
reads the slots masked exactly when the objective trained them masked), and
:func:`decoding_config` its config node with a chosen ``decoding=`` node on top. Training writes
that node into the run's ``config.yaml``; every reader instantiates it (a run folder without one,
written before, gets its objective's default). A new strategy is one module here, listed in
:data:`STRATEGIES` and exported from :mod:`apa.evaluation`, and one ``conf/decoding/*.yaml``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from apa.evaluation.decoders.base import Decoder, Item, Prediction, batches, items
from apa.evaluation.decoders.generation import GenerationDecoder
from apa.evaluation.decoders.regression import RegressionDecoder
from apa.evaluation.decoders.slots import SlotDecoder

STRATEGIES: tuple[type[Decoder], ...] = (GenerationDecoder, SlotDecoder, RegressionDecoder)
TARGET = "_target_"


def default_decoder(objective: Any = None) -> Decoder:
    """How a model trained with ``objective`` (an instance or its class) is read when nothing else
    says: the strategy its ``decoding`` flag names, with its defaults; an untrained model (None) by
    free generation."""
    name = objective.decoding if objective is not None else GenerationDecoder.name
    strategy = next((s for s in STRATEGIES if s.name == name), None)
    if strategy is None:
        raise ValueError(f"objective {objective.name}: decoding={name!r} is none of {[s.name for s in STRATEGIES]}")
    return strategy.for_objective(objective)


def decoding_config(objective: Any = None, chosen: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The decoder node for a model trained with ``objective``: the strategy ``chosen`` names (a
    ``decoding=`` node, or the one a run's config holds), else the objective's own, with its settings
    for that objective (a slot decoder reads the slots as the model trained them) under what
    ``chosen`` sets. A strategy that is not apa's is taken as chosen."""
    chosen = dict(chosen or default_decoder(objective).config())
    strategy = next((s for s in STRATEGIES if target_of(s) == chosen.get(TARGET)), None)
    if strategy is None:
        return chosen
    node = {**strategy.for_objective(objective).config(), **chosen}
    if strategy is SlotDecoder:
        check_slot_mode(node["masked_slots"], objective)
    return node


def target_of(strategy: type[Decoder]) -> str:
    return f"apa.evaluation.{strategy.__name__}"


def check_slot_mode(masked_slots: bool, objective: Any = None) -> None:
    """Slots are read as the model was trained on them: masked (all in one pass) after an objective
    that masks them, else left to right. The other way round reads tokens the model never saw."""
    trained = bool(objective is not None and objective.masked_slots)
    if bool(masked_slots) != trained:
        who = f"objective {objective.name}" if objective is not None else "an untrained model"
        raise ValueError(
            f"decoding.masked_slots={bool(masked_slots)} but {who} {'masks' if trained else 'does not mask'} the "
            f"score slots: slot decoding must read them as the model was trained (leave masked_slots out)"
        )


__all__ = [
    "STRATEGIES",
    "Decoder",
    "GenerationDecoder",
    "Item",
    "Prediction",
    "RegressionDecoder",
    "SlotDecoder",
    "batches",
    "check_slot_mode",
    "decoding_config",
    "default_decoder",
    "items",
]
