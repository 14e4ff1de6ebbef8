"""``apa score``: pronunciation scores of any recording at sentence, word and phone level.

    apa score AUDIO --text "the words said"              # one recording: a table
    apa score AUDIO --text "..." --json scores.json       # and its scores in the scores.json schema
    apa score FOLDER                                      # every audio file in FOLDER (and below); the
                                                          #   words said in <stem>.txt or <stem>.lab beside it
    apa score --wav-scp data/test/wav.scp --text-file data/test/text   # a Kaldi pair
    apa score ... --checkpoint outputs/train/runs/<time>  # any training run instead of the shipped adapter
    apa score AUDIO --text "..." --phones "P1 P2 - P3"    # canonical phones by hand (words separated by -)

(also ``python -m apa.score ...``). The model is a run folder, ``config.yaml`` and ``adapter/``
(:class:`apa.trained_run.TrainedRun`), rebuilt as ``evaluate.py checkpoint=RUN_DIR`` rebuilds it and
decoded with the run's own decoder; the shipped adapter ``pretrained/mini-speechocean762`` is such a folder.

Audio is anything soundfile reads (WAV, FLAC, OGG, MP3, ...), any sample rate, mono or not: it
is mixed to mono, resampled to 16 kHz and cut into chunks of at most 30 s whose scores are
averaged, as in evaluation. The text is normalised as speechocean762 writes it and each word's
canonical phones come from :mod:`apa.data.lexicon`.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console

from apa.atomic import check_folder
from apa.data.audio import SAMPLE_RATE, AudioError, check_audio, load_audio, speech_seconds
from apa.data.corpus import DataProblem, describe
from apa.data.features import FeatureCache
from apa.data.lexicon import Lexicon, LexiconError, OutOfVocabulary, parse_phones, words_of
from apa.data.records import LabelError, Scores, Utterance, WordScores, read_text
from apa.data.speechocean762 import read_kaldi_table
from apa.evaluation.detection import Detection
from apa.evaluation.display import flagged, recordings_table, utterance_view
from apa.evaluation.report import predictions_json, write_json
from apa.models import LoadedModel
from apa.models.adapter import AdapterError
from apa.quiet import ignore_library_warnings
from apa.runs import RunFolderError
from apa.trained_run import PROJECT_ROOT, TrainedRun

PRETRAINED = PROJECT_ROOT / "pretrained" / "mini-speechocean762"  # the shipped adapter, a run folder
# What soundfile (libsndfile) reads, by the suffixes its formats are written with.
AUDIO_SUFFIXES = (
    *(".wav", ".wave", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".aiff", ".aif", ".aifc", ".au", ".snd", ".caf"),
    *(".w64", ".rf64", ".sph", ".nist", ".voc", ".sd2", ".avr", ".paf", ".pvf", ".htk", ".xi", ".iff", ".svx"),
    *(".sf", ".ircam", ".wve"),
)
TEXT_SIDECARS = (".txt", ".lab")  # the words said, beside the audio file (the Montreal Forced Aligner's layout)
DEFAULT_CACHE = "~/.cache/apa"  # as conf/paths/default.yaml: $APA_CACHE, else this
WAY_OUT = (
    'give the canonical phones by hand with --phones "P1 P2 - P3 ..." (one recording; words separated by -), '
    "or put WORD<TAB>PHONES lines in a file and pass it with --lexicon FILE"
)

log = logging.getLogger(__name__)


class ScoreInputError(ValueError):
    """Inputs that cannot be scored; the message names them and says what to give instead."""


def open_run(folder: Path, trust_remote_code: bool = False) -> TrainedRun:
    """The run folder to score with, read as ``evaluate.py checkpoint=`` reads it."""
    if folder == PRETRAINED and not folder.is_dir():
        raise ScoreInputError(
            f"{folder}: the shipped adapter is not there (it comes with a clone of the apa repository, "
            "under pretrained/); pass --checkpoint RUN_DIR with any training run folder instead "
            "(train.py's outputs/train/runs/<time>, e.g. from `make demo`)"
        )
    return TrainedRun.open(folder, trust_remote_code)


@dataclass(frozen=True)
class Request:
    """One recording to score: an id, the audio file, the words said and, optionally, their phones."""

    uid: str
    audio: Path
    text: str
    phones: str | None = None


def one_recording(audio: Path, text: str | None, phones: str | None) -> list[Request]:
    if text is None:
        raise ScoreInputError(f'{audio}: give the words said with --text "..."')
    return [Request(audio.stem, audio, text, phones)]


def folder_recordings(folder: Path) -> list[Request]:
    """Every audio file in ``folder`` and below, its text in ``<stem>.txt`` or ``<stem>.lab`` beside it."""
    files = sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in AUDIO_SUFFIXES)
    if not files:
        raise ScoreInputError(f"{folder}: no audio files ({', '.join(AUDIO_SUFFIXES)}) in it or below")
    requests, problems, seen = [], [], {}
    for path in files:
        sidecar = next((path.with_suffix(s) for s in TEXT_SIDECARS if path.with_suffix(s).is_file()), None)
        if path.stem in seen:
            problems.append(DataProblem(str(path), f"the same name as {seen[path.stem]}; ids come from file names"))
        elif sidecar is None:
            problems.append(DataProblem(str(path), f"no text beside it ({' or '.join(TEXT_SIDECARS)})"))
        else:
            requests.append(Request(path.stem, path, read_text(sidecar, ScoreInputError)))
        seen.setdefault(path.stem, path)
    refuse(problems, folder)
    skipped = not_scored(folder, files)
    if skipped:
        log.warning("%s: files not scored, %s", folder, describe(skipped))
    return requests


def not_scored(folder: Path, audio: list[Path]) -> list[DataProblem]:
    """The files in ``folder`` (and below) that are neither scored audio nor the text beside it."""
    used = {*audio, *(path.with_suffix(suffix) for path in audio for suffix in TEXT_SIDECARS)}
    skipped = []
    for path in sorted(p for p in folder.rglob("*") if p.is_file() and p not in used):
        if path.suffix.lower() in TEXT_SIDECARS:
            why = "a text with no audio file beside it"
        else:
            why = f"not an audio format soundfile reads ({', '.join(AUDIO_SUFFIXES)})"
        skipped.append(DataProblem(str(path), why))
    return skipped


def kaldi_recordings(wav_scp: Path, text_file: Path, audio_root: Path | None) -> list[Request]:
    """A Kaldi ``wav.scp`` and ``text`` pair. Relative audio paths are taken from ``audio_root``,
    by default the folder above wav.scp's (Kaldi's ``data/<split>/`` layout, as speechocean762)."""
    wavs, problems = read_kaldi_table(wav_scp)
    texts, text_problems = read_kaldi_table(text_file)
    problems += text_problems
    root = audio_root if audio_root is not None else wav_scp.resolve().parent.parent
    requests = []
    for uid, location in wavs.items():
        if location.endswith("|"):
            problems.append(DataProblem(uid, f"{wav_scp}: command pipes are not read; convert the audio to a file"))
        elif uid not in texts:
            problems.append(DataProblem(uid, f"listed in {wav_scp} but not in {text_file}"))
        else:
            requests.append(Request(uid, root / location, texts[uid]))
    problems += [DataProblem(uid, f"listed in {text_file} but not in {wav_scp}") for uid in texts.keys() - wavs.keys()]
    refuse(problems, wav_scp)
    return requests


def refuse(problems: list[DataProblem], source: Path | str) -> None:
    if problems:
        raise ScoreInputError(f"{source}: {describe(problems)}")


def check_recordings(requests: list[Request]) -> tuple[list[Request], list[DataProblem]]:
    """The recordings whose audio exists, reads, has samples and only finite ones (checked before
    any model loads), and why each other one cannot be scored. One recording that cannot be scored
    is an error; in a batch, the others are scored and the bad ones reported."""
    kept, problems = [], []
    for request in requests:
        try:
            check_audio(request.audio)
            kept.append(request)
        except AudioError as error:
            problems.append(DataProblem(request.uid, str(error)))
    if len(requests) == 1 and problems:
        raise AudioError(problems[0].message)  # it names the file
    if not kept:
        refuse(problems, "audio")
    return kept, problems


def placeholder_scores(words: Sequence[str], phones: Sequence[Sequence[str]]) -> Scores:
    """The words and their canonical phones with every score unknown (``None``). The decoders read
    only this structure of an utterance's scores (they render the answer's template from
    :func:`apa.prompts.slots.blank`), never its values, so an unlabelled recording needs no labels."""
    return Scores(
        words=tuple(
            WordScores(w, phones=tuple(p), phones_accuracy=(None,) * len(p)) for w, p in zip(words, phones, strict=True)
        )
    )


def unlabelled(request: Request, lexicon: Lexicon | None) -> Utterance:
    """The utterance a decoder reads: the normalised text, the words and their canonical phones
    (by hand, from the lexicon, or none when the prompt writes no phones)."""
    words = words_of(request.text)
    if request.phones is not None:
        phones = parse_phones(request.phones, words)
    elif lexicon is not None:
        phones = lexicon.phones(words)
    else:
        phones = [()] * len(words)
    return Utterance(request.uid, " ".join(words), request.audio, placeholder_scores(words, phones))


def utterances(requests: list[Request], lexicon: Lexicon | None) -> list[Utterance]:
    """Every request as an utterance; every text problem of a batch reported at once."""
    built, problems = [], []
    for request in requests:
        try:
            built.append(unlabelled(request, lexicon))
        except OutOfVocabulary as error:
            problems.append(DataProblem(request.uid, f"{error}; {WAY_OUT}"))
        except LexiconError as error:
            problems.append(DataProblem(request.uid, str(error)))
    if len(requests) == 1 and problems:
        raise LexiconError(str(problems[0]))
    refuse(problems, "text")
    return built


def phone_sources(batch: list[Utterance], requests: list[Request], lexicon: Lexicon | None) -> dict[str, list[str]]:
    """Where each word's canonical phones came from, per recording that has them: "--phones", or the
    name of the dictionary that gave them."""
    by_hand = {r.uid for r in requests if r.phones is not None}
    sources = {}
    for utterance in batch:
        if utterance.id in by_hand:
            sources[utterance.id] = ["--phones"] * len(utterance.words)
        elif lexicon is not None:
            sources[utterance.id] = [str(lexicon.source_of(word)) for word in utterance.words]
    return sources


def sources_note(sources: dict[str, list[str]]) -> str:
    """How many words each dictionary gave, most first (``SOURCE for N words``)."""
    counts = Counter(source for words in sources.values() for source in words)
    return "; ".join(f"{source} for {n} word{'s' * (n != 1)}" for source, n in counts.most_common())


MIN_SPEECH_SECONDS = 0.25  # the subset's 1,100 utterances hold at least 0.63 s each (speech_seconds)
MAX_WORDS_PER_SECOND = 6.0  # twice the fastest of them (3.0 words per second of audio)


def doubts(utterance: Utterance) -> list[str]:
    """Why the scores of a recording cannot be trusted, from its signal alone: no speech in it, or
    far too little time for the words it is said to hold (the model scores either confidently)."""
    audio = load_audio(utterance.audio, name=str(utterance.audio))
    seconds, words = len(audio) / SAMPLE_RATE, len(utterance.words)
    if speech_seconds(audio) < MIN_SPEECH_SECONDS:
        return [f"no speech found (under {MIN_SPEECH_SECONDS} s of sound above -50 dBFS): the scores mean nothing"]
    if words / seconds > MAX_WORDS_PER_SECOND:
        return [
            f"{words} words in {seconds:.1f} s of audio, over {MAX_WORDS_PER_SECOND:.0f} a second: "
            "far too short for the text, so the recording is not of these words"
        ]
    return []


def cache_dir() -> Path:
    path = Path(os.environ.get("APA_CACHE", DEFAULT_CACHE)).expanduser()
    check_folder(path, "$APA_CACHE")
    return path


def predict(run: TrainedRun, loaded: LoadedModel, batch: list[Utterance], cache: Path) -> dict[str, Scores]:
    """The run's scores of ``batch``, decoded as the run decodes its test split (features cached)."""
    model, processor = loaded
    features = FeatureCache.under(cache).load(batch, processor.feature_extractor)
    decoded = run.decoder().predict(model, processor, run.prompt, batch, features)
    return {u.id: decoded[u.id].scores for u in batch}


def parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="apa score",
        description="Score the pronunciation of recordings at sentence, word and phone level.",
        epilog="Runs offline on a CPU. Scores: sentence and word 0-10, phones 0-2 (speechocean762's scales).",
    )
    parser.add_argument(
        "audio", nargs="?", type=Path, metavar="AUDIO", help="an audio file, or a folder of them (texts beside)"
    )
    parser.add_argument("--text", metavar="TEXT", help="the words said (one audio file)")
    parser.add_argument(
        "--phones", metavar="PHONES", help='canonical phones by hand, words separated by "-" (one audio file)'
    )
    parser.add_argument(
        "--wav-scp", type=Path, metavar="FILE", help="a Kaldi wav.scp (with --text-file): score every line"
    )
    parser.add_argument("--text-file", type=Path, metavar="FILE", help="the Kaldi text file that goes with --wav-scp")
    parser.add_argument(
        "--audio-root", type=Path, metavar="DIR", help="where wav.scp's relative paths start (default: its ../)"
    )
    parser.add_argument(
        "--checkpoint", type=Path, default=PRETRAINED, metavar="RUN_DIR", help="a run folder (default: %(default)s)"
    )
    parser.add_argument(
        "--lexicon",
        type=Path,
        metavar="PATH",
        action="append",
        default=[],
        help="a speechocean762 folder or a WORD<TAB>PHONES file, before the run's corpus and cmudict (repeatable)",
    )
    parser.add_argument(
        "--trust-remote-code",
        action="store_true",
        help="let the run's model run its repository's code (a run folder cannot ask for it)",
    )
    parser.add_argument(
        "--flag-below",
        type=float,
        metavar="T",
        help="mark phones predicted below T (0-2) as mispronounced (default: the threshold the run's dev split chose)",
    )
    parser.add_argument(
        "--json", type=Path, metavar="OUT", help="write the scores here in the speechocean762 scores.json schema"
    )
    return parser


def requests_from(args: argparse.Namespace) -> list[Request]:
    """What to score, from exactly one of: an audio file, a folder, a Kaldi pair."""
    if (args.audio is None) == (args.wav_scp is None):
        raise ScoreInputError("give an audio file or folder, or --wav-scp with --text-file (one of them)")
    if args.wav_scp is not None:
        if args.text_file is None or args.text is not None or args.phones is not None:
            raise ScoreInputError("--wav-scp takes its texts from --text-file (not --text or --phones)")
        return kaldi_recordings(args.wav_scp, args.text_file, args.audio_root)
    if not args.audio.exists():
        raise AudioError(f"{args.audio}: no such audio file or folder")
    if args.audio.is_dir():
        if args.text is not None or args.phones is not None:
            raise ScoreInputError(f"{args.audio}: a folder's texts come from <stem>.txt files, not --text or --phones")
        return folder_recordings(args.audio)
    return one_recording(args.audio, args.text, args.phones)


def input_files(args: argparse.Namespace, requests: list[Request]) -> set[Path]:
    """Every file this command reads: audio, the texts beside it, the Kaldi pair, lexicons."""
    sidecars = [r.audio.with_suffix(suffix) for r in requests for suffix in TEXT_SIDECARS]
    given = [args.wav_scp, args.text_file, *args.lexicon]
    return {path.resolve() for path in [*(r.audio for r in requests), *sidecars, *given] if path is not None}


def check_output(path: Path | None, inputs: set[Path]) -> None:
    """Refuse, before anything is scored, a ``--json`` path that would replace an input or is a folder."""
    if path is None:
        return
    if path.is_dir():
        raise ScoreInputError(f"--json {path}: a folder; give the file to write, e.g. {path / 'scores.json'}")
    if path.resolve() in inputs:
        raise ScoreInputError(f"--json {path}: that is one of the files being scored or read; name a new file")
    if not path.resolve().parent.is_dir():
        raise ScoreInputError(f"--json {path}: its folder {path.parent} does not exist")


def score(args: argparse.Namespace, console: Console) -> dict[str, Scores]:
    if args.flag_below is not None and not 0 <= args.flag_below <= 2:
        raise ScoreInputError(f"--flag-below {args.flag_below:g}: a threshold on the phone scale, from 0 to 2")
    requests = requests_from(args)
    check_output(args.json, input_files(args, requests))
    cache = cache_dir()
    requests, skipped = check_recordings(requests)
    if skipped:
        log.warning("not scored, %s", describe(skipped))
    run = open_run(args.checkpoint, args.trust_remote_code)
    lexicon = None
    if run.needs_phones and any(r.phones is None for r in requests):
        lexicon = Lexicon.standard([*args.lexicon, *filter(None, [run.corpus])])
        log.info("canonical phones from %s", ", then ".join(lexicon.names))
    batch = utterances(requests, lexicon)
    sources = phone_sources(batch, requests, lexicon)
    log.info("scoring %d recording(s) with %s", len(batch), run.folder)
    scores = predict(run, run.load(), batch, cache)
    texts = {u.id: u.text for u in batch}
    warnings = {u.id: found for u in batch if (found := doubts(u))}
    flag_below = args.flag_below if args.flag_below is not None else run.detection(Detection()).threshold
    if len(batch) == 1:
        console.print(utterance_view(batch[0].id, batch[0].text, scores[batch[0].id], flag_below))
    else:
        console.print(recordings_table(scores, texts, flag_below))
        if args.json is None:
            console.print("every word's and phone's scores: --json OUT", style="dim")
    if lexicon is not None:
        console.print(f"canonical phones: {sources_note(sources)}", style="dim")
    for uid, found in warnings.items():
        console.print(f"! {uid}: not a score to trust: {'; '.join(found)}", style="bold red")
    if skipped:
        console.print(f"! {len(skipped)} recording(s) not scored: {', '.join(p.where for p in skipped)}")
    if args.json is not None:
        entries = predictions_json(scores, texts)
        for uid, found in warnings.items():
            entries[uid]["warnings"] = found
        for uid, words in sources.items():
            entries[uid]["phones_from"] = words
        if flag_below is not None:
            for uid, prediction in scores.items():
                entries[uid]["mispronounced_below"] = flag_below
                entries[uid]["mispronounced_phones"] = mispronounced_phones(prediction, flag_below)
        write_json(args.json, entries)
        console.print(f"scores of {len(scores)} recording(s) written to {args.json}")
    return scores


def mispronounced_phones(scores: Scores, flag_below: float) -> list[dict]:
    """The phones flagged below ``flag_below``: where each is (word and phone index) and what."""
    return [
        {"word": w, "phone": p, "symbol": symbol, "word_text": word.text, "accuracy": value}
        for w, word in enumerate(scores.words)
        for p, (symbol, value) in enumerate(zip(word.phones, word.phones_accuracy, strict=True))
        if flagged(value, flag_below)
    ]


def quiet_libraries() -> None:
    """apa's own progress bars and notes only: the libraries' loading bars, their INFO logs and a
    deprecation warning PEFT triggers (not ours to fix) would bury the table."""
    import datasets
    from transformers.utils import logging as transformers_logging

    logging.basicConfig(level=logging.WARNING, format="%(message)s", stream=sys.stderr)
    log.setLevel(logging.INFO)
    datasets.disable_progress_bars()
    transformers_logging.disable_progress_bar()
    ignore_library_warnings()


def main(argv: Sequence[str] | None = None) -> None:
    args = parser().parse_args(argv)
    quiet_libraries()
    try:
        score(args, Console())
    except (
        ScoreInputError,
        RunFolderError,
        AudioError,
        LexiconError,
        LabelError,
        FileNotFoundError,
        NotADirectoryError,
        AdapterError,
    ) as error:
        sys.exit(f"apa score: error: {error}")


if __name__ == "__main__":
    main()
