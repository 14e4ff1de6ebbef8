"""The figures the README and the shipped model card state for committed runs are those runs'
metrics.json: each statement is rebuilt here from the files, so a re-run that changes a figure
fails until the text follows it."""

import json
import re

import pytest

from .helpers import PROJECT_ROOT

SHIPPED = PROJECT_ROOT / "pretrained" / "mini-speechocean762"
UNSEEN = PROJECT_ROOT / "bench" / "unseen_speakers"
README = PROJECT_ROOT / "README.md"
CARD = SHIPPED / "README.md"


def metrics(path):
    return json.loads(path.read_text(encoding="utf-8"))


def pcc(run: dict, key: str) -> str:
    return f"{run['metrics'][key]:.3f}"


def interval(run: dict, key: str) -> str:
    low, high = run["ci95"][key]
    return f"[{low:.2f}, {high:.2f}]"


def prose(path) -> str:
    """The document's text with line breaks, quote marks and table padding as single spaces."""
    text = re.sub(r"^> ?", "", path.read_text(encoding="utf-8"), flags=re.MULTILINE)
    return re.sub(r"\s+", " ", text)


def statements() -> list[tuple[str, str]]:
    shipped, unseen = metrics(SHIPPED / "metrics.json"), metrics(UNSEEN / "shipped-metrics.json")
    before = metrics(UNSEEN / "fa-full-metrics.json")  # the adapter shipped before, on the same speakers
    total, word, phone = "sentence/total/pcc", "word/accuracy/pcc", "phone/accuracy/pcc"

    def detected(name: str) -> str:
        key = f"phone/accuracy/detection_{name}"
        return f"{pcc(shipped, key)} {interval(shipped, key)}"

    return [
        (
            "README.md",
            f"sentence total PCC {pcc(shipped, total)} {interval(shipped, total)}, word accuracy "
            f"{pcc(shipped, word)} and phone accuracy {pcc(shipped, phone)} on the 300-utterance test subset",
        ),
        ("README.md", f"speakers it never heard: {pcc(unseen, total)}, {pcc(unseen, word)}, {pcc(unseen, phone)})"),
        ("card", f"| phone accuracy (0-2) | {pcc(shipped, phone)} {interval(shipped, phone)} |"),
        ("card", f"| word accuracy | {pcc(shipped, word)} {interval(shipped, word)} |"),
        ("card", f"with probability {detected('auc')} (AUC)"),
        ("card", f"predicted below {shipped['metrics']['phone/accuracy/detection_threshold']:.3f}, the threshold"),
        ("card", f"precision {detected('precision')}, recall {detected('recall')}, F1 {detected('f1')}"),
        ("card", f"sentence total {pcc(unseen, total)} against {pcc(before, total)}"),
        ("card", f"word accuracy {pcc(unseen, word)} against {pcc(before, word)}"),
        ("card", f"phone accuracy {pcc(unseen, phone)} against {pcc(before, phone)}"),
    ]


@pytest.mark.parametrize(("document", "statement"), statements(), ids=lambda value: value[:60])
def test_a_stated_figure_is_its_runs_metric(document, statement):
    assert statement in prose(README if document == "README.md" else CARD), statement
