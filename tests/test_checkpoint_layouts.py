"""A checkpoint's chat template is found wherever the checkpoint keeps it."""

import json
import shutil
from pathlib import Path

import pytest

from apa.models.checkpoint import Qwen2AudioCheckpoint, share_chat_template
from apa.models.encoding import PromptEncoder
from apa.models.offline.tokenizer import qwen2_audio_chat_template

from .helpers import load_prompt

TEMPLATE_FILE = "chat_template.jinja"  # where save_pretrained puts it (transformers 5)


def relaid(source: Path, folder: Path, layout: str) -> Path:
    """A copy of the checkpoint at ``source`` with its chat template moved to ``layout``: the
    processor-level ``chat_template.json`` (older transformers), the tokenizer's
    ``tokenizer_config.json`` (the hub's Qwen2-Audio-7B-Instruct), or nowhere."""
    folder.mkdir()
    for path in source.iterdir():
        if path.name != TEMPLATE_FILE:
            (folder / path.name).symlink_to(path) if path.suffix == ".safetensors" else shutil.copy(path, folder)
    template = (source / TEMPLATE_FILE).read_text(encoding="utf-8")
    if layout == "processor":
        (folder / "chat_template.json").write_text(json.dumps({"chat_template": template}), encoding="utf-8")
    elif layout == "tokenizer":
        config = json.loads((folder / "tokenizer_config.json").read_text(encoding="utf-8"))
        (folder / "tokenizer_config.json").write_text(json.dumps({**config, "chat_template": template}))
    return folder


def load(folder: Path):
    return Qwen2AudioCheckpoint(str(folder), dtype="float32", device="cpu", local_files_only=True).load()


@pytest.fixture(scope="module")
def expected_ids(tiny_source, test_utterances):
    _, processor = tiny_source.load()
    return PromptEncoder(processor.tokenizer, load_prompt("sentence")).prompt_ids(test_utterances[0], 3000)


@pytest.mark.parametrize("layout", ["processor", "tokenizer"])
def test_chat_template_is_read_from_either_place(tiny_source, tmp_path, layout, expected_ids, test_utterances):
    assert (tiny_source.path / TEMPLATE_FILE).is_file()
    _, processor = load(relaid(tiny_source.path, tmp_path / layout, layout))
    assert processor.tokenizer.chat_template == processor.chat_template == qwen2_audio_chat_template()
    encoder = PromptEncoder(processor.tokenizer, load_prompt("sentence"))
    assert encoder.prompt_ids(test_utterances[0], 3000) == expected_ids


def test_checkpoint_without_a_chat_template_falls_back_to_the_processors_default(tiny_source, tmp_path, caplog):
    folder = relaid(tiny_source.path, tmp_path / "none", "none")
    _, processor = load(folder)
    assert processor.tokenizer.chat_template == processor.chat_template == processor.default_chat_template
    assert f"{folder}: the checkpoint has no chat template" in caplog.text


def test_a_processor_without_any_template_is_refused_by_name(tiny_source):
    _, processor = tiny_source.load()
    processor.chat_template = processor.tokenizer.chat_template = None
    with pytest.raises(ValueError, match="somewhere: the checkpoint has no chat template"):
        share_chat_template(processor, "somewhere")
