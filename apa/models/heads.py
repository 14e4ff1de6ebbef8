"""A regression head on the language model's hidden state at each score slot (Ma et al. 2025).

It is attached to the Qwen2-Audio model as ``score_head`` before the LoRA wrapper is applied and
listed in PEFT's ``modules_to_save``, so it trains with the adapter and is saved and loaded with
it (``adapter_model.safetensors``).
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from torch import nn

from apa.models.forward import qwen2_audio
from apa.runs import HEAD_SPEC

HEAD_NAME = "score_head"


class ScoreHead(nn.Module):
    """One output per aspect: linear (``hidden_size=None``) or a small MLP, shared trunk.

    Its outputs are fractions of the score scale (0-1, centred on mid-scale at the start);
    ``forward`` returns them as scores on the 0-10 scale of every slot (:data:`SCALE`).
    """

    SCALE = 10.0

    def __init__(self, input_size: int, aspects: list[str], hidden_size: int | None = None, dropout: float = 0.1):
        super().__init__()
        self.spec = {"input_size": input_size, "aspects": list(aspects), "hidden_size": hidden_size, "dropout": dropout}
        self.aspects = list(aspects)
        output = nn.Linear(input_size if hidden_size is None else hidden_size, len(aspects))
        nn.init.constant_(output.bias, 0.5)  # centred on mid-scale
        if hidden_size is None:
            self.net = output
        else:
            self.net = nn.Sequential(nn.Linear(input_size, hidden_size), nn.GELU(), nn.Dropout(dropout), output)

    def forward(self, hidden: torch.Tensor, aspect_index: torch.Tensor) -> torch.Tensor:
        """``hidden`` (n, input_size), ``aspect_index`` (n,) -> one score per row (n,), on 0-10."""
        out = self.net(hidden.to(next(self.parameters()).dtype))
        return self.SCALE * out.gather(-1, aspect_index[:, None]).squeeze(-1)


def attach_head(model: nn.Module, head: ScoreHead) -> None:
    """Put ``head`` on the (unwrapped) Qwen2-Audio model, where PEFT's modules_to_save finds it."""
    device = model.get_output_embeddings().weight.device
    model.add_module(HEAD_NAME, head.to(device))


def get_head(model: nn.Module) -> ScoreHead:
    head = getattr(qwen2_audio(model), HEAD_NAME, None)
    if head is None:
        raise AttributeError("this model has no regression head (objective=regression attaches one)")
    return head


def save_head_spec(model: nn.Module, folder: Path) -> None:
    """Write the head's shape beside a saved adapter (if the model has a head)."""
    head = getattr(qwen2_audio(model), HEAD_NAME, None)
    if head is not None:
        spec = head.original_module.spec if hasattr(head, "original_module") else head.spec
        (folder / HEAD_SPEC).write_text(json.dumps(spec, indent=1))


def load_head_spec(folder: Path) -> ScoreHead | None:
    path = folder / HEAD_SPEC
    return ScoreHead(**json.loads(path.read_text())) if path.is_file() else None
