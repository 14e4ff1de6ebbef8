"""Prompts: every config renders targets with slots, parsing inverts rendering, answers as models
really write them are read without guessing."""

import functools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from apa.data import Scores, Utterance, WordScores
from apa.data.scales import ASPECTS, scale_of
from apa.prompts import JsonFormat, LineFormat, Prompt

from .helpers import PROMPT_NAMES, billy_loves_america, load_prompt


@pytest.fixture(scope="module")
def prompts() -> dict[str, Prompt]:
    return {name: load_prompt(name) for name in PROMPT_NAMES}


@pytest.fixture(scope="module")
def real_utterances(labelled_utterances) -> list[Utterance]:
    """Many labelled utterances: synthetic ones, and the real subset's when it is here."""
    return labelled_utterances


def test_the_expected_prompts_exist(prompts):
    expected = {
        "sentence",
        "word",
        "phone",
        "multi",
        "zeroshot",
        "sentence_accuracy",
        "sentence_fluency",
        "sentence_prosodic",
        "sentence_total",
        "word_accuracy",
        "wang2025_multi",
        "wang2025_word_sentence",
        "parikh2025",
    }
    assert expected <= set(prompts)
    assert prompts["multi"].aspects == {g: ASPECTS[g] for g in ("sentence", "word", "phone")}
    assert isinstance(prompts["zeroshot"].format, JsonFormat) and prompts["zeroshot"].score_tokens == "digits"
    assert prompts["sentence_fluency"].aspects == {"sentence": ("fluency",)}


def assert_round_trip(prompt: Prompt, scores: Scores) -> None:
    """parse(render(x)) gives back every written score, and nothing the prompt did not ask for."""
    rendered = prompt.render(scores)
    parsed = prompt.parse(rendered.text)
    for slot in rendered.slots:
        expected = scale_of(slot.granularity, slot.aspect).to_native(slot.score_class)
        assert parsed.value(*slot.key) == pytest.approx(expected), slot
        assert rendered.text[slot.start : slot.end] == prompt.vocabulary.write(slot.score_class)
    assert prompt.render(parsed).text == rendered.text
    asked = {(slot.granularity, slot.aspect) for slot in rendered.slots}
    for aspect in ASPECTS["sentence"]:
        if ("sentence", aspect) not in asked:
            assert parsed.aspect(aspect) is None
    if "word" in prompt.aspects:
        assert [w.text for w in parsed.words] == [w.text for w in scores.words]
    if "phone" in prompt.aspects:
        assert [w.phones for w in parsed.words] == [w.phones for w in scores.words]
    if not {"word", "phone"} & set(prompt.aspects):
        assert parsed.words == ()


# The JSON format writes digits only (test_bad_prompt_configs_are_rejected checks that).
JSON_PROMPTS = {"zeroshot", "parikh2025"}
VARIANTS = [
    (name, tokens)
    for name in PROMPT_NAMES
    for tokens in ("digits", "added")
    if name not in JSON_PROMPTS or tokens == "digits"
]


@pytest.mark.parametrize(("name", "score_tokens"), VARIANTS)
def test_round_trip_on_every_real_utterance(prompts, real_utterances, name, score_tokens):
    prompt = load_prompt(name, score_tokens=score_tokens) if score_tokens != prompts[name].score_tokens else None
    prompt = prompt or prompts[name]
    for utterance in real_utterances:
        assert_round_trip(prompt, utterance.scores)
    n_slots = len(prompt.render(real_utterances[0].scores).slots)
    n_words = len(real_utterances[0].scores.words)
    n_phones = sum(len(w.phones) for w in real_utterances[0].scores.words)
    expected = sum(
        len(aspects) * {"sentence": 1, "word": n_words, "phone": n_phones}[g] for g, aspects in prompt.aspects.items()
    )
    assert n_slots == expected


PHONES = ["AA0", "AE1", "AH0", "B", "CH", "DH", "IY1", "NG", "OW0", "TH", "ZH", "UW1", "ER0"]


def word_lists(unique: bool = False) -> st.SearchStrategy:
    """Random words with their scores and phones; ``unique``: no word text twice in an utterance,
    no phone twice in a word."""
    first = {"unique_by": lambda pair: pair[0]} if unique else {}
    return st.lists(
        st.builds(
            lambda text, acc, stress, total, phones: WordScores(
                text, acc, stress, total, tuple(p for p, _ in phones), tuple(s for _, s in phones)
            ),
            st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ'", min_size=1, max_size=9),
            st.integers(0, 10),
            st.sampled_from([5, 10]),
            st.integers(0, 10),
            st.lists(
                st.tuples(st.sampled_from(PHONES), st.floats(0, 2, allow_nan=False)), min_size=1, max_size=6, **first
            ),
        ),
        min_size=1,
        max_size=8,
        **({"unique_by": lambda word: word.text} if unique else {}),
    )


words_strategy = word_lists()
scores_strategy = st.builds(
    Scores,
    *(st.integers(0, 10) for _ in range(3)),
    st.floats(0, 10, allow_nan=False),  # completeness is continuous
    st.integers(0, 10),
    words_strategy,
)


@pytest.mark.parametrize(
    "name",
    [
        "multi",
        "sentence",
        "phone",
        "word_accuracy",
        "zeroshot",
        "wang2025_multi",
        "wang2025_word_sentence",
        "parikh2025",
        "multi_by_word",
    ],
)
@settings(max_examples=60, deadline=None)
@given(scores=scores_strategy)
def test_round_trip_on_random_scores(prompts, name, scores):
    assert_round_trip(prompts[name], scores)


@pytest.fixture(scope="module")
def multi_digits():
    return load_prompt("multi", score_tokens="digits")


@pytest.fixture(scope="module")
def example():
    return billy_loves_america()


def test_reads_answers_with_noise_around_them(multi_digits, example):
    clean = multi_digits.render(example.scores).text
    sentence, words, phones = clean.split("\n")
    noisy = f"Sure! Here is my assessment.\n\n  {phones}\r\n{sentence.lower()}\n\t{words.replace(' ', '   ')}\nDone."
    assert multi_digits.parse(noisy) == multi_digits.parse(clean)


def test_missing_line_leaves_only_that_granularity_missing(multi_digits, example):
    sentence, words, _phones = multi_digits.render(example.scores).text.split("\n")
    parsed = multi_digits.parse(f"{sentence}\n{words}")
    assert parsed.accuracy == example.scores.accuracy
    assert [w.accuracy for w in parsed.words] == [w.accuracy for w in example.scores.words]
    assert all(w.phones == () for w in parsed.words)


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        ("Sentence Scores: 7 6 6 10", {}),  # four scores for five aspects: none can be attributed
        ("Sentence Scores: 7 6 6 10 7 9", {}),
        ("Sentence Scores: 11 6 6 10 7", {"fluency": 6.0, "prosodic": 6.0, "completeness": 10.0, "total": 7.0}),
        (
            "Sentence Scores: 7 6 6.5 10 7.",
            {"accuracy": 7.0, "fluency": 6.0, "prosodic": 6.5, "completeness": 10.0, "total": 7.0},
        ),
        ("I cannot assess this recording.", {}),
    ],
    ids=["too-few", "too-many", "out-of-range", "decimals", "refusal"],
)
def test_sentence_scores_are_never_guessed(multi_digits, answer, expected):
    parsed = multi_digits.parse(answer)
    assert {a: parsed.aspect(a) for a in ASPECTS["sentence"] if parsed.aspect(a) is not None} == expected


def test_malformed_word_items_are_missing_alone(multi_digits):
    parsed = multi_digits.parse("Word Scores: BILLY/10/10/10 LOVES/8/10 AMERICA/x/10/10")
    assert [w.text for w in parsed.words] == ["BILLY", "LOVES", "AMERICA"]
    assert (parsed.words[0].accuracy, parsed.words[0].stress, parsed.words[0].total) == (10, 10, 10)
    assert (parsed.words[1].accuracy, parsed.words[1].total) == (None, None)
    assert (parsed.words[2].accuracy, parsed.words[2].stress) == (None, 10)


def test_phone_groups_that_do_not_pair_with_words_are_missing(multi_digits):
    answer = "Word Scores: BILLY/10/10/10 LOVES/8/10/8\nPhone Scores: B/10 IH1/9 - L/10 - AH0/4"
    parsed = multi_digits.parse(answer)
    assert [w.text for w in parsed.words] == ["BILLY", "LOVES"] and all(w.phones == () for w in parsed.words)
    paired = multi_digits.parse("Word Scores: BILLY/10/10/10 LOVES/8/10/8\nPhone Scores: B/10 IH1/9 - L/10 AH0/4")
    assert paired.words[1].phones == ("L", "AH0") and paired.words[1].phones_accuracy == (2.0, 0.8)


def test_phones_by_word_follow_their_word_and_keep_every_score(example):
    by_word, multi = load_prompt("multi_by_word", score_tokens="digits"), load_prompt("multi", score_tokens="digits")
    rendered = by_word.render(example.scores)
    assert rendered.text.count("\n") == 1 and "Phone Scores" not in rendered.text
    first = example.scores.words[0]
    assert f"{first.text}/" in rendered.text.split("[")[0]
    assert rendered.text.split("[ ")[1].startswith(f"{first.phones[0]}/")
    assert sorted(s.key for s in rendered.slots) == sorted(s.key for s in multi.render(example.scores).slots)
    assert by_word.parse(rendered.text) == multi.parse(multi.render(example.scores).text)


@pytest.mark.parametrize(
    ("line", "read"),
    [
        ("BILLY/10/10/10 [ B/10 IH1/9 ] LOVES/8/10/8 L/10 AH0/4", {"BILLY", "LOVES"}),  # phones outside brackets
        ("BILLY/10/10/10 [ B/10 IH1/9 LOVES/8/10/8 [ L/10 AH0/4 ]", {"BILLY"}),  # unclosed: hides the rest
        ("BILLY/10/10/10 [ B/10 [ IH1/9 ] ] LOVES/8/10/8 [ L/10 AH0/4 ]", {"BILLY", "LOVES"}),  # nested
        ("[ B/10 IH1/9 ] BILLY/10/10/10 LOVES/8/10/8 [ L/10 AH0/4 ]", {"BILLY", "LOVES"}),  # phones before a word
    ],
    ids=["unbracketed", "unclosed", "nested", "leading"],
)
def test_phones_by_word_out_of_place_are_missing_and_words_kept(line, read):
    """Every phone is missing; the words outside brackets are read with the scores written for them."""
    parsed = load_prompt("multi_by_word", score_tokens="digits").parse(f"Word Scores: {line}")
    assert all(w.phones == () for w in parsed.words)
    written = {"BILLY": (10, 10, 10), "LOVES": (8, 10, 8)}
    assert {w.text for w in parsed.words} & set(written) == read
    for word in parsed.words:
        assert word.text not in written or (word.accuracy, word.stress, word.total) == written[word.text]


def test_phone_prompt_keeps_words_by_position():
    phone = load_prompt("phone", score_tokens="digits")
    parsed = phone.parse("Phone Scores: B/10 IH1/oops - L/5")
    assert [(w.text, w.phones, w.phones_accuracy) for w in parsed.words] == [
        ("", ("B", "IH1"), (2.0, None)),
        ("", ("L",), (1.0,)),
    ]


def test_added_tokens_are_read_back(prompts, example):
    multi = prompts["multi"]
    assert multi.score_tokens == "added"
    text = multi.render(example.scores).text
    assert "<|score_10|>" in text and " 10" not in text
    assert multi.parse(text.replace("<|score_7|>", "7")).accuracy is None  # digits are not this vocabulary


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        ('```json\n{"accuracy": 8, "fluency": 7, "prosody": 6, "completeness": 10}\n```', (8, 7, 6, 10)),
        ("Scores: {'Accuracy': 8, 'Fluency': '7'} and {\"prosody\": 6}", (8, 7, 6, None)),
        ('{"result": {"accuracy": 8.5, "completeness": 12}}', (8.5, None, None, None)),
        ("Accuracy: 8, fluency: 7", (None, None, None, None)),  # no JSON object: nothing is guessed
    ],
    ids=["fenced", "fragments", "nested-and-out-of-range", "prose"],
)
def test_zero_shot_json_answers(prompts, answer, expected):
    parsed = prompts["zeroshot"].parse(answer)
    assert (parsed.accuracy, parsed.fluency, parsed.prosodic, parsed.completeness) == expected
    assert parsed.total is None


def test_json_prompts_are_the_ones_with_a_json_format(prompts):
    assert {name for name, prompt in prompts.items() if isinstance(prompt.format, JsonFormat)} == JSON_PROMPTS


def test_wang_prompt_is_their_section_2_1_text(prompts, example):
    """The verbatim prompt asks for the multi prompt's answer, with the paper's own words."""
    wang, multi = prompts["wang2025_multi"], prompts["multi"]
    assert wang.aspects == multi.aspects and wang.score_tokens == "digits"
    assert wang.render(example.scores).text == load_prompt("multi", score_tokens="digits").render(example.scores).text
    text = wang.instruction_for(example)
    assert text.startswith("You are a pronunciation evaluation teacher who analyzes speech at sentence, word and phone")
    assert "Reference text: BILLY LOVES AMERICA.\nReference phone sequence: B IH1 L IY0 - L AH0 V Z - AH0 M" in text
    assert "we assess the goodness of each phoneme with in the words." in text  # as printed
    assert text.endswith("Phone Scores: {P1}/{Acc} {P2}/{Acc} - {P3}/{Acc} …")
    table2 = prompts["wang2025_word_sentence"]
    assert table2.aspects == {"sentence": multi.aspects["sentence"], "word": multi.aspects["word"]}
    assert "phone" not in table2.instruction_for(example).split("All scores range")[1]


def test_parikh_prompt_is_their_printed_rubric_with_capitalised_keys(prompts, example):
    parikh = prompts["parikh2025"]
    lines = parikh.instruction_for(example).split("\n")
    assert lines[:3] == [
        "The speaker was supposed to say:",
        '"BILLY LOVES AMERICA"',
        "You are a pronunciation assessment expert. The speaker is a non-native English learner.",
    ]
    assert lines[4] == (
        "- Accuracy (0-10): 9-10 = Excellent pronunciation without mispronunciation to 0-2 = Unintelligible."
    )
    assert lines[-1] == "Return your response in JSON format."
    answer = parikh.render(example.scores).text
    assert answer == '{"Accuracy": 7, "Fluency": 6, "Prosody": 6, "Completeness": 10}'
    assert parikh.parse('Here: {"accuracy": 8, "Prosody": 6}') == Scores(accuracy=8, prosodic=6)  # any case


def test_instruction_fills_placeholders_only(prompts, example):
    text = prompts["multi"].instruction_for(example)
    assert '"BILLY LOVES AMERICA"' in text
    assert "B IH1 L IY0 - L AH0 V Z - AH0 M EH1 R IH0 K AH0" in text
    assert "{Acc}" in text and "{text}" not in text and "{phones}" not in text


def test_messages_follow_the_chat_template(prompts, example, tiny):
    _, processor = tiny
    messages = prompts["sentence"].messages(example)
    rendered = processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    assert rendered.startswith("<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n")
    assert "Audio 1: <|audio_bos|><|AUDIO|><|audio_eos|>\nAssess the pronunciation" in rendered
    assert rendered.endswith("<|im_end|>\n<|im_start|>assistant\n")
    with_system = Prompt("s", "Rate.", {"sentence": ["total"]}, system="You are an examiner.")
    assert with_system.messages(example)[0] == {"role": "system", "content": "You are an examiner."}


def test_rendering_needs_every_label(prompts):
    scores = Scores(accuracy=7, fluency=None, prosodic=6, completeness=10, total=7)
    with pytest.raises(ValueError, match="sentence fluency label"):
        prompts["sentence"].render(scores)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(aspects={"word": ["fluency"]}), "are not among"),
        (dict(aspects={"paragraph": ["accuracy"]}), "are not among"),
        (dict(aspects={}), "asks for no scores"),
        (dict(aspects={"word": ["accuracy"]}, format=JsonFormat(), score_tokens="digits"), "JSON format"),
        (dict(aspects={"sentence": ["accuracy"]}, format=JsonFormat()), "JSON format"),
        (dict(aspects={"sentence": ["accuracy"]}, score_tokens="letters"), "score_tokens='letters'"),
    ],
)
def test_bad_prompt_configs_are_rejected(kwargs, message):
    with pytest.raises(ValueError, match=message):
        Prompt("bad", "Rate.", **{"format": LineFormat(), **kwargs})


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        ("Sentence Scores: -3 7 7 10 8", {}),  # a sign is not part of any score: nothing attributable
        ("Sentence Scores: 7 1,5 10 8", {}),  # 1,5 is not the scores 1 and 5
        ("Sentence Scores: 8 7 7 10 8\nSentence Scores: 8 7 6 10 8", {}),  # two lines disagree
        (
            "Sentence Scores: 8 7 7 10 8\n\nsentence scores: 8 7 7 10 8",  # the same line twice
            {"accuracy": 8.0, "fluency": 7.0, "prosodic": 7.0, "completeness": 10.0, "total": 8.0},
        ),
        (
            "Sentence Scores: Fluency 7 Accuracy 8 Prosody 6 Completeness 10 Total 7",  # labelled, another order
            {"accuracy": 8.0, "fluency": 7.0, "prosodic": 6.0, "completeness": 10.0, "total": 7.0},
        ),
        (
            "Sentence Scores: tot=7, acc=8, flu: 7, pro:6; com 10.",
            {"accuracy": 8.0, "fluency": 7.0, "prosodic": 6.0, "completeness": 10.0, "total": 7.0},
        ),
        ("Sentence Scores: Accuracy 8 Accuracy 7 Fluency 7 Prosody 6 Total 7", {}),  # a label twice
        ("Sentence Scores: Accuracy 8 Fluency 7 6 Completeness 10 Total 7", {}),  # a score without a label
        ("Sentence Scores: Accuracy 8 Speed 7 Fluency 7 Prosody 6 Completeness 10 Total 7", {}),  # unknown label
    ],
    ids=[
        "sign",
        "decimal-comma",
        "conflicting-lines",
        "repeated-line",
        "labels-reordered",
        "labels-abbreviated",
        "label-twice",
        "unlabelled-among-labels",
        "unknown-label",
    ],
)
def test_sentence_scores_are_read_by_label_or_not_at_all(multi_digits, answer, expected):
    parsed = multi_digits.parse(answer)
    assert {a: parsed.aspect(a) for a in ASPECTS["sentence"] if parsed.aspect(a) is not None} == expected


def test_a_cut_answer_loses_its_last_word_not_a_digit(prompts):
    sentence = load_prompt("sentence", score_tokens="digits")
    assert sentence.parse("Sentence Scores: 8 7 7 10 10").total == 10
    assert sentence.parse("Sentence Scores: 8 7 7 10 1", cut=True) == Scores()  # "1" may be "10" cut short
    cut_word = load_prompt("word", score_tokens="digits").parse("Word Scores: GOOD/10/10/10 JOB/9/10/1", cut=True)
    assert [(w.text, w.accuracy) for w in cut_word.words] == [("GOOD", 10)]
    assert prompts["zeroshot"].parse('{"accuracy": 8, "fluency": 1', cut=True) == Scores()


def test_added_score_tokens_need_no_spaces(prompts):
    answer = "Sentence Scores: " + "".join(f"<|score_{c}|>" for c in (8, 7, 6, 10, 7))
    parsed = prompts["sentence"].parse(answer)
    assert (parsed.accuracy, parsed.fluency, parsed.prosodic, parsed.completeness, parsed.total) == (8, 7, 6, 10, 7)


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        ('{"accuracy": 1e1, "fluency": 7, "prosody": 6, "completeness": 10}', (None, 7, 6, 10)),
        ('{"accuracy": 9,5, "fluency": 7}', (None, 7, None, None)),
        ('{"accuracy": "9,5", "fluency": "7"}', (None, 7, None, None)),
        ('{"accuracy": 8.}', (None, None, None, None)),
        ('{"accuracy": 8, "fluency": 7} ... {"accuracy": 6}', (None, 7, None, None)),  # two different values
        ('{"accuracy": 8} and again {"accuracy": 8}', (8, None, None, None)),  # the same value twice
    ],
    ids=["exponent", "decimal-comma", "quoted-decimal-comma", "trailing-point", "conflicting", "repeated"],
)
def test_zero_shot_json_numbers_are_whole_or_missing(prompts, answer, expected):
    parsed = prompts["zeroshot"].parse(answer)
    assert (parsed.accuracy, parsed.fluency, parsed.prosodic, parsed.completeness) == expected


# Fuzzing: mutations of rendered answers must give back the scores as written, or missing, never
# another number. Excluded, because they write another well-formed number that no parser can tell
# from a real one: deleting or inserting a digit ("10" -> "1"), a decimal point or a space between
# two digits ("10" -> "1.0", "1 0"). Words and phones are unique within an utterance and a word, so
# that the evaluator's pairing by text (how every comparison below is made) is unambiguous.
JUNK = "xQé,;:=+-eE/()#{}'\"|<>"
fuzz_scores = st.builds(Scores, *(st.integers(0, 10) for _ in range(5)), word_lists(unique=True))


def mutate(text: str, data) -> tuple[str, bool]:
    """One random mutation of ``text``; returns the mutated text and whether it was cut short."""
    kind = data.draw(st.sampled_from(["insert", "delete", "cut", "repeat-line", "swap-lines", "conflicting-copy"]))
    lines = text.split("\n")
    if kind == "insert":
        at = data.draw(st.integers(0, len(text)))
        return text[:at] + data.draw(st.sampled_from(JUNK)) + text[at:], False
    if kind == "delete":
        deletable = [i for i, c in enumerate(text) if not c.isdigit() and c != " "]
        if not deletable:
            return text, False
        at = data.draw(st.sampled_from(deletable))
        return text[:at] + text[at + 1 :], False
    if kind == "cut":
        return text[: data.draw(st.integers(0, len(text)))], True
    if kind == "repeat-line":
        at = data.draw(st.integers(0, len(lines) - 1))
        return "\n".join([*lines, lines[at]]), False
    if kind == "swap-lines":
        return "\n".join(data.draw(st.permutations(lines))), False
    digits = [i for i, c in enumerate(text) if c.isdigit()]  # a copy with one digit changed, after the answer
    if not digits:
        return text, False
    at = data.draw(st.sampled_from(digits))
    return text + "\n" + text[:at] + str((int(text[at]) + 1) % 10) + text[at + 1 :], False


FUZZED = ["multi", "sentence", "word", "phone", "zeroshot", "multi_by_word"]


@functools.cache
def cached_prompt(name: str, score_tokens: str) -> Prompt:
    return load_prompt(name, score_tokens=score_tokens)


@pytest.mark.parametrize("score_tokens", ["digits", "added"])
@pytest.mark.parametrize("name", FUZZED)
@settings(max_examples=150, deadline=None)
@given(scores=fuzz_scores, data=st.data())
def test_mutated_answers_give_the_written_scores_or_missing(name, score_tokens, scores, data):
    from apa.evaluation.pairing import pair_scores

    if name == "zeroshot" and score_tokens == "added":
        return  # the JSON format writes digits only
    prompt = cached_prompt(name, score_tokens)
    rendered = prompt.render(scores).text
    written = prompt.parse(rendered)
    mutated, cut = mutate(rendered, data)
    parsed = prompt.parse(mutated, cut=cut)
    for (granularity, aspect), pairs in pair_scores({"u": parsed}, {"u": written}, prompt.asked).items():
        assert pairs.predicted == pairs.reference, (granularity, aspect, mutated)
