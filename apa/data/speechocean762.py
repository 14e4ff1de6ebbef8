"""speechocean762 (Zhang et al., 2021): the official release layout and the hub dataset.

Both readers return the same :class:`~apa.data.records.Utterance` records, checked the same way
(:mod:`apa.data.corpus`), so the rest of the project never knows where the data came from.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from apa.data.audio import AudioError, check_audio
from apa.data.corpus import DataProblem, SpeakerHeldOut, accept
from apa.data.records import LabelError, Scores, Utterance, duplicated_keys, read_entries, read_text

SPLITS = ("train", "test")
KALDI_FILES = ("wav.scp", "text", "utt2spk", "spk2age", "spk2gender")
SCORES_FILE = Path("resource") / "scores.json"
HUB_ID = "mispeech/speechocean762"


def read_kaldi_table(path: Path) -> tuple[dict[str, str], list[DataProblem]]:
    """A Kaldi ``key value`` file (tab or space separated) as a dict, with its malformed lines."""
    if not path.is_file():
        raise FileNotFoundError(f"{path}: missing; the official layout has {', '.join(KALDI_FILES)} in each split")
    table, problems = {}, []
    for number, line in enumerate(read_text(path).splitlines(), start=1):
        if not line.strip():
            continue
        key, _, value = line.strip().partition("\t") if "\t" in line else line.strip().partition(" ")
        if not value.strip():
            problems.append(DataProblem(f"{path}:{number}", f"expected 'key value', got {line!r}"))
        elif key in table:
            problems.append(DataProblem(f"{path}:{number}", f"{key} is listed twice"))
        else:
            table[key] = value.strip()
    return table, problems


def labelled_utterance(uid: str, entry: Any, audio: Path | bytes, where: str, **metadata) -> Utterance | DataProblem:
    """Check one utterance's labels (against its text too) and audio header; a
    :class:`DataProblem` says what is wrong."""
    try:
        if not isinstance(entry, Mapping) or not isinstance(entry.get("text"), str):
            raise LabelError(f"{where}: expected an object with scores and a 'text' string")
        duplicated = duplicated_keys(entry, where)
        if duplicated:
            raise LabelError(f"{'; '.join(duplicated)} (which value is meant is unknown)")
        scores = Scores.from_json(entry, where)
        words = [word.text for word in scores.words]
        if words != entry["text"].split():
            raise LabelError(f"{where}: the words {words} are not the text {entry['text']!r} word for word")
        check_audio(audio, name=str(audio) if isinstance(audio, Path) else f"{where} audio")
    except (LabelError, AudioError) as error:
        return DataProblem(uid, str(error))
    return Utterance(id=uid, text=entry["text"], audio=audio, scores=scores, **metadata)


@dataclass
class Speechocean762(SpeakerHeldOut):
    """The official release: ``WAVE/``, ``train|test/{wav.scp,text,utt2spk,spk2age,spk2gender}``,
    ``resource/scores.json`` (labels of every split)."""

    root: str
    strict: bool = True

    @property
    def path(self) -> Path:
        return Path(self.root).expanduser()

    @cached_property
    def labels(self) -> dict[str, Any]:
        hint = f"missing; is {self.path} a speechocean762 folder in the official layout?"
        return read_entries(self.path / SCORES_FILE, missing=hint)

    def read(self, split: str) -> list[Utterance]:
        if not self.path.is_dir():
            raise FileNotFoundError(f"{self.path}: no such folder (expected speechocean762 in the official layout)")
        split_dir = self.path / split
        if not split_dir.is_dir():
            raise FileNotFoundError(f"{split_dir}: no split {split!r} in {self.path}")
        return accept(self._read_split(split_dir), f"{self.path} [{split}]", self.strict)

    def _read_split(self, split_dir: Path) -> Iterator[Utterance | DataProblem]:
        tables, problems = {}, []
        for name in KALDI_FILES:
            tables[name], bad_lines = read_kaldi_table(split_dir / name)
            problems += bad_lines
        yield from problems
        wav, text, utt2spk = tables["wav.scp"], tables["text"], tables["utt2spk"]
        for uid, relative in wav.items():
            entry = self.labels.get(uid)
            if uid in self.labels.duplicated:
                yield DataProblem(uid, f"has more than one entry in {SCORES_FILE}; which is meant is unknown")
            elif entry is None:
                yield DataProblem(uid, f"listed in {split_dir.name}/wav.scp but {SCORES_FILE} has no entry for it")
            elif uid not in text:
                yield DataProblem(uid, f"listed in {split_dir.name}/wav.scp but not in {split_dir.name}/text")
            elif isinstance(entry, Mapping) and text[uid].split() != str(entry.get("text")).split():
                yield DataProblem(uid, f"text differs: {split_dir.name}/text {text[uid]!r}, scores {entry['text']!r}")
            elif uid not in utt2spk:
                yield DataProblem(uid, f"has no speaker: {split_dir.name}/utt2spk does not list it")
            else:
                speaker = utt2spk.get(uid)
                age = tables["spk2age"].get(speaker)
                yield labelled_utterance(
                    uid,
                    entry,
                    self.path / relative,
                    where=str(SCORES_FILE),
                    speaker=speaker,
                    age=int(age) if age and age.isdigit() else None,
                    gender=tables["spk2gender"].get(speaker),
                )
        yield from self._unlisted()

    def _unlisted(self) -> Iterator[DataProblem]:
        """Labels whose utterance no split lists: their audio would be lost without a word."""
        listed = set()
        for split_dir in self.path.iterdir():
            if (split_dir / "wav.scp").is_file():
                listed |= read_kaldi_table(split_dir / "wav.scp")[0].keys()
        for uid in sorted((self.labels.keys() | set(self.labels.duplicated)) - listed):
            yield DataProblem(uid, f"has labels in {SCORES_FILE} but no split's wav.scp lists its audio")


@dataclass
class Speechocean762Hub(SpeakerHeldOut):
    """The hub dataset ``mispeech/speechocean762``: a hub id, or a local ``save_to_disk`` or parquet
    copy. It has no id column: the id is the audio file's stem, as in the official release."""

    source: str = HUB_ID
    revision: str | None = None
    strict: bool = True

    def read(self, split: str) -> list[Utterance]:
        from datasets import Audio

        rows = self._load(split).cast_column("audio", Audio(decode=False))
        where = f"{self.source} [{split}]"
        results = [self._utterance(index, row, where) for index, row in enumerate(rows)]
        counts = Counter(r.id for r in results if isinstance(r, Utterance))
        results = [
            DataProblem(r.id, f"appears {counts[r.id]} times in {where}")
            if isinstance(r, Utterance) and counts[r.id] > 1
            else r
            for r in results
        ]
        return accept(results, where, self.strict)

    def _load(self, split: str):
        from datasets import DatasetDict, load_dataset, load_from_disk

        local = Path(self.source).expanduser()
        if (local / "dataset_dict.json").is_file() or (local / "state.json").is_file():
            data = load_from_disk(str(local))
            if isinstance(data, DatasetDict):
                if split not in data:
                    raise KeyError(f"{local}: no split {split!r} (has {', '.join(data)})")
                return data[split]
            return data
        return load_dataset(str(local) if local.is_dir() else self.source, split=split, revision=self.revision)

    @staticmethod
    def _utterance(index: int, row: dict[str, Any], where: str) -> Utterance | DataProblem:
        audio = row.get("audio") or {}
        name = audio.get("path")
        if not name:
            return DataProblem(f"{where} row {index}", "the audio has no file name to take the utterance id from")
        uid = Path(name).stem
        if row.get("speaker") in (None, ""):
            return DataProblem(uid, f"{where} row {index}: no speaker")
        source = audio.get("bytes") or Path(name)
        entry = {**row, "words": _word_rows(row.get("words"))}
        age = row.get("age")
        return labelled_utterance(
            uid,
            entry,
            source,
            where=f"{where} row {index}",
            speaker=str(row["speaker"]),
            age=None if age is None else int(age),
            gender=row.get("gender"),
        )


def _word_rows(words: Any) -> Any:
    """Words as a list of objects, whether the dataset stores a list of structs or a struct of lists."""
    if isinstance(words, Mapping):
        keys = list(words)
        return [dict(zip(keys, values, strict=True)) for values in zip(*words.values(), strict=True)]
    return words
