"""Decoding shared by every process of a job (torchrun, ``accelerate launch``, SLURM tasks).

Each process decodes a share of the utterances (accelerate's ``split_between_processes``: contiguous
shares, in order), the shares are gathered on every process and put back in the utterances' order,
and only the main process writes and scores them. With N GPUs the test split takes about 1/N of the
time, and no process waits at a barrier for one that decodes everything. One process: plain decoding.
"""

from __future__ import annotations

from accelerate import PartialState
from accelerate.utils import gather_object
from torch import nn
from transformers import ProcessorMixin

from apa.data.features import FeatureTable
from apa.data.records import Utterance
from apa.evaluation.decoders import Decoder, Prediction
from apa.prompts import Prompt


def decode_shares(
    decoder: Decoder,
    model: nn.Module,
    processor: ProcessorMixin,
    prompt: Prompt,
    utterances: list[Utterance],
    features: FeatureTable,
) -> dict[str, Prediction]:
    """Every utterance's prediction, in ``utterances``' order, each process having decoded its share."""
    processes = PartialState()
    if processes.num_processes == 1:
        return decoder.predict(model, processor, prompt, utterances, features)
    with processes.split_between_processes(utterances) as share:
        decoded = decoder.predict(model, processor, prompt, list(share), features) if share else {}
    gathered = {uid: prediction for part in gather_object([decoded]) for uid, prediction in part.items()}
    return {u.id: gathered[u.id] for u in utterances}


def is_main_process() -> bool:
    return PartialState().is_main_process
