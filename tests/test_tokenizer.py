"""The offline tokenizer is Qwen2's, with Qwen2-Audio's special ids and chat template."""

import pytest

from apa.models.offline.tokenizer import QWEN2_AUDIO_SPECIAL_TOKENS, qwen2_audio_chat_template, qwen2_audio_tokenizer


@pytest.fixture(scope="module")
def tokenizer():
    return qwen2_audio_tokenizer()


def test_special_tokens_have_qwen2_audio_ids(tokenizer):
    ids = tokenizer.convert_tokens_to_ids(list(QWEN2_AUDIO_SPECIAL_TOKENS))
    assert ids == [151643, 151644, 151645, 151646, 151647, 151648]
    assert tokenizer.eos_token == tokenizer.pad_token == "<|endoftext|>"
    assert len(tokenizer) == 151649


def test_encodes_like_qwen2(tokenizer):
    # Ids published for Qwen2's tokenizer: "Hello" 9707, " world" 1879; digits split one by one.
    assert tokenizer("Hello world")["input_ids"] == [9707, 1879]
    assert tokenizer.tokenize(" 10") == ["Ġ", "1", "0"]
    audio = tokenizer("<|audio_bos|><|AUDIO|><|audio_eos|>")["input_ids"]
    assert audio == [151647, 151646, 151648]


def test_decode_round_trips(tokenizer):
    text = "Sentence Scores: 7 8 9 10 8\nWord Scores: we/10/10/10"
    assert tokenizer.decode(tokenizer(text)["input_ids"]) == text


def test_chat_template_matches_qwen2_audio_instruct(tokenizer):
    messages = [
        {"role": "user", "content": [{"type": "audio", "audio": "a.wav"}, {"type": "text", "text": "Rate it."}]},
        {"role": "assistant", "content": "8"},
    ]
    rendered = tokenizer.apply_chat_template(messages, tokenize=False)
    assert rendered == (
        "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
        "<|im_start|>user\nAudio 1: <|audio_bos|><|AUDIO|><|audio_eos|>\nRate it.<|im_end|>\n"
        "<|im_start|>assistant\n8<|im_end|>\n"
    )
    assert tokenizer.chat_template == qwen2_audio_chat_template()
