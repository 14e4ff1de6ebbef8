"""Every process decodes: two gloo processes give the predictions one process gives."""

import json
import sys

import pytest

from .helpers import launch, only_run_dir

TWO_PROCESSES = (sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2")
SMALL = [
    "model=tiny", "data=synthetic", "data.speakers=4", "data.utterances_per_speaker=3", "data.test_speakers=2",
    "logger=none", "bootstrap_resamples=10",
]  # fmt: skip


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny fa run on the sentence prompt (one step): a checkpoint to decode."""
    outputs = tmp_path_factory.mktemp("trained") / "outputs"
    steps = ["trainer.arguments.max_steps=1", "trainer.arguments.gradient_accumulation_steps=1", "test_split=null"]
    result = launch("train.py", *SMALL, "objective=fa", "prompt=sentence", *steps, outputs=outputs)
    assert result.returncode == 0, result.stderr[-3000:]
    return only_run_dir(outputs, "train")


def decoded(tmp_path, run_dir, decoding: list[str], prefix=()) -> dict:
    outputs = tmp_path / "outputs"
    tmp_path.mkdir(parents=True, exist_ok=True)
    result = launch("evaluate.py", f"checkpoint={run_dir}", *SMALL, *decoding, outputs=outputs, prefix=prefix)
    assert result.returncode == 0, result.stderr[-3000:]
    (written,) = (outputs / "evaluate" / "runs").glob("*/predictions.json")  # the main process writes, once
    return json.loads(written.read_text())


def numbers(value) -> list[float]:
    """Every number in a JSON value, in order (None kept: a missing score stays missing)."""
    if isinstance(value, dict):
        return [n for key in sorted(value) for n in numbers(value[key])]
    if isinstance(value, list):
        return [n for item in value for n in numbers(item)]
    return [value] if value is None or (isinstance(value, int | float) and not isinstance(value, bool)) else []


@pytest.mark.parametrize(
    "decoding", [["decoding=slots"], ["decoding=generate", "decoding.max_new_tokens=12"]], ids=["slots", "generate"]
)
def test_two_processes_decode_what_one_process_decodes(trained, tmp_path, decoding):
    one = decoded(tmp_path / "one", trained, decoding)
    two = decoded(tmp_path / "two", trained, decoding, prefix=TWO_PROCESSES)
    assert list(two) == list(one) and len(one) == 6  # every test utterance, once, in the same order
    for uid in one:
        assert numbers(two[uid]) == pytest.approx(numbers(one[uid]), abs=1e-3), uid
