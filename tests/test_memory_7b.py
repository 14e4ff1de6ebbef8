"""bench.memory_7b: the 7B memory table is arithmetic on the committed token counts, and those
counts are what the real subset measures."""

import json

import pytest

from bench import memory_7b, paper_7b

COMMITTED = json.loads(memory_7b.OUTPUT.read_text())


def test_the_committed_table_follows_from_the_committed_token_counts():
    assert memory_7b.table(COMMITTED["tokens"]) == COMMITTED["memory"]


def test_the_estimate_orders_as_it_must():
    tokens = COMMITTED["tokens"]["wang2025_multi"]
    for checkpointing in (False, True):
        by_batch = [memory_7b.memory_gb(tokens, b, False, checkpointing) for b in memory_7b.BATCHES]
        assert by_batch == sorted(by_batch)
    assert memory_7b.memory_gb(tokens, 8, False, True) < memory_7b.memory_gb(tokens, 8, False, False)
    saved = memory_7b.weights_bytes(False) - memory_7b.weights_bytes(True)
    expected = paper_7b.parameters()["language_model_layers"] * (2 - memory_7b.NF4_BITS / 8)  # only the LM's layers
    assert saved == pytest.approx(expected)
    assert 16 < memory_7b.weights_bytes(False) / 1e9 < 17.5  # 8.4B parameters in bf16


def test_the_token_counts_are_the_subsets(speechocean762):
    assert memory_7b.measured_tokens(str(speechocean762)) == COMMITTED["tokens"]


def test_the_readme_shows_the_committed_table():
    from .helpers import PROJECT_ROOT

    assert memory_7b.markdown(COMMITTED["memory"]) in (PROJECT_ROOT / "README.md").read_text(encoding="utf-8")
