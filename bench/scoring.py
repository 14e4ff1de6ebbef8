"""Scoring speed: slot decoding against free generation + parsing, same model, prompt, batch, data.

Generation is given exactly as many new tokens as the longest answer of the batch holds, the work
a model that has learned the answer format does before it stops. Unparseable answers are the
share of utterances with at least one asked-for score missing.
"""

from __future__ import annotations

from hydra.utils import instantiate

from apa.data import FeatureCache, SyntheticCorpus
from apa.evaluation import GenerationDecoder, SlotDecoder
from apa.evaluation.pairing import pair_scores
from apa.models.encoding import PromptEncoder
from apa.models.score_tokens import add_score_tokens
from apa.prompts.slots import blank
from bench.common import compose_config, measure, timed


def unparseable_rate(prompt, predictions, utterances) -> float:
    """Share of utterances with at least one asked score missing."""
    references = {u.id: u.scores for u in utterances}
    missing = set()
    for pairs in pair_scores({u: p.scores for u, p in predictions.items()}, references, prompt.asked).values():
        missing |= {item.split(" ")[0] for item in pairs.missing}
    return len(missing) / len(utterances)


def answer_tokens(processor, prompt, utterances, features) -> int:
    encoder = PromptEncoder(processor.tokenizer, prompt)
    return max(
        len(encoded) - encoded.target_start
        for u in utterances
        for encoded in [encoder.encode(u, features.chunk(u.id, 0).mel_frames, blank(u.scores))]
    )


def benchmark(model_name: str, cache_dir: str, utterances: int, batch_size: int, repeats: int) -> dict:
    source = instantiate(compose_config("train", [f"model={model_name}", f"paths.cache_dir={cache_dir}"]).model)
    model, processor = source.load()
    model.eval()
    test = SyntheticCorpus(cache_dir).utterances("test")[:utterances]
    features = FeatureCache.under(cache_dir).load(test, processor.feature_extractor)
    results = {}
    for prompt_name in ("sentence", "multi"):
        prompt = instantiate(compose_config("train", [f"prompt={prompt_name}"]).prompt)
        add_score_tokens(model, processor.tokenizer, prompt.vocabulary)
        new_tokens = answer_tokens(processor, prompt, test, features)
        methods = {
            "slot": SlotDecoder(batch_size, masked_slots=True),  # one forward pass (fa, regression)
            "slot_left_to_right": SlotDecoder(batch_size),  # each argmax fed back (ce, simpo)
            "generate": GenerationDecoder(batch_size, max_new_tokens=new_tokens),
        }
        for method, decoder in methods.items():
            decoder.predict(model, processor, prompt, test[:2], features)  # warm-up

            answers = []  # each timed run's predictions; the last one is checked for parseability

            def run(decoder=decoder, prompt=prompt, answers=answers):
                return timed(lambda: answers.append(decoder.predict(model, processor, prompt, test, features)))

            seconds = measure(run, repeats)
            predictions = answers[-1]
            key = f"scoring_{prompt_name}_{method}"
            results[f"{key}_utterances_per_second"] = len(test) / seconds["median"]
            results[f"{key}_utterances_per_second_spread"] = [len(test) / seconds["max"], len(test) / seconds["min"]]
            results[f"{key}_unparseable_rate"] = unparseable_rate(prompt, predictions, test)
        speed = {m: results[f"scoring_{prompt_name}_{m}_utterances_per_second"] for m in methods}
        results[f"scoring_{prompt_name}_slot_vs_generate_speedup"] = speed["slot"] / speed["generate"]
        results[f"scoring_{prompt_name}_slot_left_to_right_vs_generate_speedup"] = (
            speed["slot_left_to_right"] / speed["generate"]
        )
        results[f"scoring_{prompt_name}_answer_tokens"] = new_tokens
    return results
