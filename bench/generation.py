"""Generation speed: Qwen2-Audio's stock ``generate`` against apa's (:class:`GenerationDecoder`).

    python -m bench.generation                                  # mini, multi prompt, the real subset
    python -m bench.generation --tokens 32 128 --batch-sizes 8 16 model=tiny data=synthetic

Both paths get the same left-padded prompts and produce exactly ``--tokens`` new tokens (the work
of a model that answers at that length). The stock path runs the audio tower on 30 s and computes
the whole vocabulary's logits at every prompt position; apa's prefills through its own forward
and generates from the embeddings with the text model's ``generate``. Seconds per utterance are
medians of ``--repeats`` timed runs after a warm-up, in this one process. One JSON line per
(tokens, batch size); BENCHMARKS.md's "Generation" bullet quotes them. Any ``key=value`` is a
Hydra override of the ``mini_speechocean762`` preset.
"""

from __future__ import annotations

import argparse
import json
import time

import torch
from hydra.utils import instantiate

from apa.data import FeatureCache
from apa.evaluation.decoders import Item, batches, items
from apa.evaluation.decoders.generation import prompt_inputs
from apa.models.forward import input_embeddings, text_generator
from apa.models.score_tokens import add_score_tokens
from bench.common import compose_config, summary

PRESET = ["experiment=mini_speechocean762", "prompt=multi"]


STOCK_INPUTS = ("input_ids", "attention_mask", "input_features", "feature_attention_mask")


def stock(model, inputs: dict, settings: dict) -> torch.Tensor:
    """The new tokens of Qwen2-Audio's own ``generate`` (the reference apa's must match)."""
    output = model.generate(**{name: inputs[name] for name in STOCK_INPUTS}, **settings)
    return output[:, inputs["input_ids"].shape[1] :]


def apa(model, inputs: dict, settings: dict) -> torch.Tensor:
    embeddings = input_embeddings(model, inputs)
    return text_generator(model).generate(inputs_embeds=embeddings, attention_mask=inputs["attention_mask"], **settings)


PATHS = {"stock": stock, "apa": apa}


@torch.no_grad()
def generate_all(path, model, processor, prompt, chunks: list[Item], batch_size: int, tokens: int) -> list:
    pad = processor.tokenizer.pad_token_id
    settings = dict(max_new_tokens=tokens, min_new_tokens=tokens, do_sample=False, pad_token_id=pad)
    return [
        path(model, prompt_inputs(model, processor, prompt, batch), settings)
        for batch in batches(chunks, batch_size, "Generating")
    ]


def benchmark(overrides: list[str], utterances: int, tokens: list[int], batch_sizes: list[int], repeats: int):
    cfg = compose_config("train", [*PRESET, *overrides])
    model, processor = instantiate(cfg.model).load()
    model.eval()
    prompt = instantiate(cfg.prompt)
    add_score_tokens(model, processor.tokenizer, prompt.vocabulary)
    test = instantiate(cfg.data).utterances("test")[:utterances]
    chunks = items(test, FeatureCache.under(cfg.paths.cache_dir).load(test, processor.feature_extractor))
    for new_tokens in tokens:
        for batch_size in batch_sizes:
            row, outputs = {"tokens": new_tokens, "batch_size": batch_size, "utterances": len(test)}, {}
            for name, path in PATHS.items():
                job = (path, model, processor, prompt)
                generate_all(*job, chunks[:batch_size], batch_size, new_tokens)  # warm-up
                runs = [timed_output(*job, chunks, batch_size, new_tokens) for _ in range(repeats)]
                seconds = summary([s for s, _ in runs])
                row[f"{name}_seconds_per_utterance"] = seconds["median"] / len(test)
                row[f"{name}_seconds_spread"] = [seconds["min"], seconds["max"]]
                outputs[name] = runs[-1][1]
            row["speedup"] = row["stock_seconds_per_utterance"] / row["apa_seconds_per_utterance"]
            pairs = zip(outputs["stock"], outputs["apa"], strict=True)
            row["same_tokens"] = all(torch.equal(a, b) for a, b in pairs)
            yield row


def timed_output(*arguments) -> tuple[float, list]:
    start = time.perf_counter()
    output = generate_all(*arguments)
    return time.perf_counter() - start, output


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.generation", description=__doc__.splitlines()[0])
    parser.add_argument("--utterances", type=int, default=16)
    parser.add_argument("--tokens", type=int, nargs="+", default=[32, 128])
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[8, 16])
    parser.add_argument("--repeats", type=int, default=2)
    args, overrides = parser.parse_known_args(argv)
    for row in benchmark(overrides, args.utterances, args.tokens, args.batch_sizes, args.repeats):
        print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
