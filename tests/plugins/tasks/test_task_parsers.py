"""Parsers of the built-in tasks on tables of realistic, messy model outputs.

Each row is an output in the style real models produce (chatty preambles, Markdown, <think> blocks,
reasoning before the answer, units and currency, quotes) and the answer the task must read from it,
or the error code when there is no safe reading.
"""

from __future__ import annotations

import pytest

from stillhouse.plugins.tasks import ConversationTask, MathTask, NLITask, QATask, SummarizationTask

NLI_OUTPUTS = [
    ("entailment", "entailment"),
    ("Contradiction", "contradiction"),
    ("NEUTRAL.", "neutral"),
    ("Answer: Neutral", "neutral"),
    ("**Answer:** Contradiction.", "contradiction"),
    (
        "Reasoning: The premise says two women embrace; the hypothesis adds that they are sisters, which "
        "the premise does not say.\nAnswer: neutral",
        "neutral",
    ),
    ("The premise describes a man on a bike.\nTherefore the hypothesis is entailed.", "entailment"),
    ("Answer: Contradiction. It cannot be entailment because the men are fighting, not hugging.", "contradiction"),
    ("Label: not entailment but neutral", "neutral"),
    ("There is no contradiction here; the premise clearly entails the hypothesis.", "entailment"),
    ("Yes", "entailment"),
    ("It is not possible to tell", "neutral"),
    (
        "<think>Two women hug. Sisters? Not stated... maybe neutral. No wait, nothing says they are not sisters.</think>\n"
        "Neutral",
        "neutral",
    ),
    ("The relationship between the premise and the hypothesis is: **contradiction**", "contradiction"),
    ("Final answer: ENTAILMENT", "entailment"),
    ("I'd say the hypothesis contradicts the premise.", "contradiction"),
    ("### Answer\nneutral", "neutral"),
    # Real SmolLM2-135M outputs cut off at max_tokens: a label word in the opening sentence is not
    # a conclusion.
    (
        "To determine whether the premise entails the hypothesis, we need to examine the logical structure "
        "of the premise. However, the premise does not provide any information about the relationship "
        "between the two women. It does not specify the relationship between",
        "unparseable",
    ),
    (
        "To determine whether the premise entails the hypothesis, we need to examine the given information.\n\n"
        "The hypothesis is a neutral statement, as it does not conta",
        "neutral",
    ),
    ("", "empty"),
    ("   \n ", "empty"),
    ("I am not sure what you mean.", "unparseable"),
    ("It could be neutral or contradiction.", "ambiguous_label"),
]


@pytest.mark.parametrize(("output", "expected"), NLI_OUTPUTS)
def test_nli_parser(output: str, expected: str) -> None:
    parsed = NLITask().parse(output)
    if expected in ("entailment", "neutral", "contradiction"):
        assert parsed.ok, parsed
        assert parsed.answer == expected
    else:
        assert not parsed.ok
        assert parsed.error == expected


def test_nli_parser_keeps_the_rationale() -> None:
    parsed = NLITask().parse("Reasoning: A man on a bike is a person outdoors.\nAnswer: entailment")
    assert parsed.rationale == "A man on a bike is a person outdoors."
    parsed = NLITask().parse("<think>bikes are ridden outside</think>Answer: entailment")
    assert parsed.rationale == "bikes are ridden outside"


def test_nli_synonyms_only_as_the_whole_answer() -> None:
    # "no" inside prose is not read as contradiction; as the whole answer it is.
    assert NLITask().parse("No idea, sorry.").error == "unparseable"
    assert NLITask().parse("Answer: no").answer == "contradiction"


def test_nli_custom_label_set() -> None:
    task = NLITask(NLITask.Config(labels=["entailment", "not_entailment"]))
    assert task.parse("Answer: not_entailment").answer == "not_entailment"
    assert task.parse("Answer: Entailment").answer == "entailment"
    assert task.parse("yes").answer == "entailment"
    assert task.parse("no").error == "unparseable"  # "no" -> contradiction is dropped: not a label here


QA_OUTPUTS = [
    ("Denver Broncos", "Denver Broncos"),
    ("Denver Broncos.", "Denver Broncos"),
    ('"Denver Broncos"', "Denver Broncos"),
    ("“Santa Clara, California”", "Santa Clara, California"),
    ("Answer: October 1973", "October 1973"),
    (
        "**Answer:** the Organization of Arab Petroleum Exporting Countries",
        "the Organization of Arab Petroleum Exporting Countries",
    ),
    ("The answer is 1973.", "1973"),
    ("Reasoning: The passage says the crisis began in October 1973.\nAnswer: October 1973", "October 1973"),
    ("Final Answer: `committees`", "committees"),
    ('According to the passage, the council divides itself into "committees".', "committees"),
    ("The context states that the price rose to nearly $12.\n\n$12 globally", "$12 globally"),
    ("Short answer: Warsaw", "Warsaw"),
    ("<think>The question asks who won. Broncos beat Panthers.</think>\nDenver Broncos", "Denver Broncos"),
    ("Answer: 'Super Bowl 50'", "Super Bowl 50"),
    ("  Answer:   Levi's Stadium  \n", "Levi's Stadium"),
    ("### Answer\nGreen Bay Packers", "Green Bay Packers"),
    # Gold SQuAD spans with quotes inside stay whole.
    ('declared Japan a "nonfriendly" country', 'declared Japan a "nonfriendly" country'),
    ('a pharynx ("throat"); a wider area in the center.', 'a pharynx ("throat"); a wider area in the center'),
    ("", "empty"),
    ("Answer: ", "empty"),
]


@pytest.mark.parametrize(("output", "expected"), QA_OUTPUTS)
def test_qa_parser(output: str, expected: str) -> None:
    parsed = QATask().parse(output)
    if expected == "empty":
        assert parsed.error == "empty"
    else:
        assert parsed.ok, parsed
        assert parsed.answer == expected


MATH_OUTPUTS = [
    ("72", "72"),
    ("#### 72", "72"),
    ("Natalia sold 48/2 = 24 clips in May.\nNatalia sold 48+24 = 72 clips altogether.\n#### 72", "72"),
    ("Reasoning: 12/60 = 0.2 per minute, times 50 is 10.\nAnswer: $10", "10"),
    ("The answer is $1,080.", "1080"),
    ("So the total is 5 + 3 = 8 apples.\n\nFinal Answer: 8 apples", "8"),
    ("We get \\boxed{18}.", "18"),
    ("Therefore, the answer is $\\boxed{1,000}$ dollars.", "1000"),
    ("\\boxed{\\frac{3}{4}}", "0.75"),
    ("**Answer:** 2,520,000", "2520000"),
    ("She spent 3 hours. Answer: 48 + 24 = 72", "72"),
    ("The temperature dropped to -5 degrees.\nAnswer: -5", "-5"),
    ("It costs 0.5 dollars per apple, so 12 apples cost 6 dollars.", "6"),
    ("<think>100 - 50 - 30 - 15 = 5</think>\nBetty needs $5 more.", "5"),
    ("The percentage is 25%.", "25"),
    ("Answer: 72.0", "72"),
    ("First 10-3=7, then 7*2=14.\nThe final answer is 14", "14"),
    ("The result is 1/2.", "0.5"),
    ("", "empty"),
    ("I cannot solve this problem.", "no_number"),
]


@pytest.mark.parametrize(("output", "expected"), MATH_OUTPUTS)
def test_math_parser(output: str, expected: str) -> None:
    parsed = MathTask().parse(output)
    if expected in ("empty", "no_number"):
        assert parsed.error == expected
    else:
        assert parsed.ok, parsed
        assert parsed.answer == expected


def test_math_parser_rationale() -> None:
    parsed = MathTask().parse("Reasoning: 48/2 = 24 in May.\n48 + 24 = 72 in total.\nAnswer: 72")
    assert parsed.rationale == "48/2 = 24 in May.\n48 + 24 = 72 in total."
    parsed = MathTask().parse("48/2 = 24 in May.\n48 + 24 = 72 in total.\n#### 72")
    assert parsed.rationale == "48/2 = 24 in May.\n48 + 24 = 72 in total."
    assert MathTask().parse("72").rationale is None


SUMMARY_OUTPUTS = [
    (
        "#Person2# has trouble breathing and will see a specialist.",
        "#Person2# has trouble breathing and will see a specialist.",
    ),
    ("Summary: Jimmy and his friend agree to work out at 3:30.", "Jimmy and his friend agree to work out at 3:30."),
    (
        "Sure! Here is a summary of the dialogue:\n\nJimmy and his friend agree to work out at 3:30.",
        "Jimmy and his friend agree to work out at 3:30.",
    ),
    (
        "Here's a concise summary:\nThe doctor sends the patient to a specialist.",
        "The doctor sends the patient to a specialist.",
    ),
    ("**Summary:** The doctor sends the patient to a specialist.", "The doctor sends the patient to a specialist."),
    ('"Person1 invites Jimmy to the gym."', "Person1 invites Jimmy to the gym."),
    ("## Summary\nPerson1 invites Jimmy to the gym.", "Person1 invites Jimmy to the gym."),
    (
        "- Person1 invites Jimmy to the gym.\n- They agree on 3:30.",
        "Person1 invites Jimmy to the gym. They agree on 3:30.",
    ),
    ("1. Person1 invites Jimmy.\n2. Jimmy agrees.", "Person1 invites Jimmy. Jimmy agrees."),
    (
        "Reasoning: The key facts are the invitation and the time.\nSummary: Person1 invites Jimmy to work out at 3:30.",
        "Person1 invites Jimmy to work out at 3:30.",
    ),
    (
        "<think>who did what? Person1 invites.</think>\nPerson1 invites Jimmy to work out.",
        "Person1 invites Jimmy to work out.",
    ),
    ("TL;DR: Jimmy agrees to a gym session.", "Jimmy agrees to a gym session."),
    (
        "Certainly.\nThe two friends plan a workout\nand switch leg day to Friday.",
        "The two friends plan a workout and switch leg day to Friday.",
    ),
    ("Summary:\n\nThe two friends plan a workout.", "The two friends plan a workout."),
    ("The answer is that they go to the gym.", "The answer is that they go to the gym."),
    ("", "empty"),
    ("Summary:", "empty"),
]


@pytest.mark.parametrize(("output", "expected"), SUMMARY_OUTPUTS)
def test_summarization_parser(output: str, expected: str) -> None:
    parsed = SummarizationTask().parse(output)
    if expected == "empty":
        assert parsed.error == "empty"
    else:
        assert parsed.ok, parsed
        assert parsed.answer == expected


REPLY_OUTPUTS = [
    (
        "I love football too! Did you watch the game last night?",
        "I love football too! Did you watch the game last night?",
    ),
    ("agent_2: I love football too!", "I love football too!"),
    ("Reply: Yes, I saw it.", "Yes, I saw it."),
    ("**Reply:** Yes, I saw it.", "Yes, I saw it."),
    ('"Yes, I saw it."', "Yes, I saw it."),
    ("Sure! Here's a possible reply:\n\nThat's amazing, I had no idea!", "That's amazing, I had no idea!"),
    ("agent_1: That's amazing!\nagent_2: I know right?\nagent_1: Yes.", "That's amazing!"),
    ("That's amazing!\n\nLet me know if you want another reply.", "That's amazing!"),
    ("Assistant: Nice chatting with you!", "Nice chatting with you!"),
    ("#Person2#: Sounds good to me.", "Sounds good to me."),
    ("<think>They talk about football; agree.</think>\nYes, Mahomes is great.", "Yes, Mahomes is great."),
    ("Response: I didn't know the locker room was pink!", "I didn't know the locker room was pink!"),
    ("Next turn: Ha, that's funny.", "Ha, that's funny."),
    ("Speaker 2: Wow, really?", "Wow, really?"),
    ("  I think so too.  ", "I think so too."),
    ("Yes: and I also think he will win the MVP again.", "Yes: and I also think he will win the MVP again."),
    ("", "empty"),
    ("agent_2:", "empty"),
]


@pytest.mark.parametrize(("output", "expected"), REPLY_OUTPUTS)
def test_conversation_parser(output: str, expected: str) -> None:
    parsed = ConversationTask().parse(output)
    if expected == "empty":
        assert parsed.error == "empty"
    else:
        assert parsed.ok, parsed
        assert parsed.answer == expected


def test_a_one_line_reply_that_sounds_like_a_preamble_is_the_reply() -> None:
    # Found on Topical-Chat: the gold reply "absolutely." was once stripped as chatter.
    assert ConversationTask().parse("absolutely.").answer == "absolutely."
    assert (
        ConversationTask().parse("Sure!\nLet's watch the game together.").answer
        == "Sure! Let's watch the game together."
    )
    assert SummarizationTask().parse("Certainly.\nThey plan a workout.").answer == "They plan a workout."
    assert SummarizationTask().parse("Okay, they plan a workout.").answer == "Okay, they plan a workout."


def test_free_text_answers_cut_at_max_tokens_keep_their_complete_sentences() -> None:
    from stillhouse.plugins.tasks.freetext import trim_to_sentence
    from stillhouse.plugins.tasks.summarization import SummarizationTask

    assert trim_to_sentence("Amy feels ill. The doctor says she should") == "Amy feels ill."
    assert trim_to_sentence("Amy feels ill. Dr. Lee agrees.") == "Amy feels ill. Dr. Lee agrees."
    assert trim_to_sentence("no sentence ends here") == "no sentence ends here"
    task = SummarizationTask()
    assert task.parse("Jimmy and Alex plan a workout. They choose arms because Jimmy's legs are").answer == (
        "Jimmy and Alex plan a workout."
    )
    strict = SummarizationTask(SummarizationTask.Config(trim_incomplete=False))
    assert strict.parse("Jimmy and Alex plan a workout. They choose").answer.endswith("They choose")


def test_rejections_say_what_was_measured_against_what_limit() -> None:
    """A reason code alone ("too_long" for a 45-word summary with max_words 120) does not say
    which limit failed: the verdict's detail names the measure and the limit."""
    from stillhouse.kernel.interfaces import Example, Parsed

    task = SummarizationTask()
    document = " ".join(f"w{i}" for i in range(50))  # 50 source words: at most 0.9 × 50 = 45
    summary = " ".join(f"s{i}" for i in range(46)) + "."
    verdict = task.verify(Example("d1", "train", {"document": document}, None), Parsed(answer=summary, text=summary))
    assert (verdict.reason, verdict.detail) == ("too_long", "46 words > max_compression 0.9 × 50 source words = 45")
    long_doc = " ".join(f"w{i}" for i in range(400))
    too_many = " ".join(f"s{i}" for i in range(130)) + "."
    verdict = task.verify(Example("d2", "train", {"document": long_doc}, None), Parsed(answer=too_many, text=too_many))
    assert (verdict.reason, verdict.detail) == ("too_long", "130 words > max_words 120")
    qa = QATask().verify(
        Example("q", "train", {"question": "q?", "context": "a b c"}, "a"), Parsed(answer=" ".join(["a"] * 31), text="")
    )
    assert qa.detail == "31 words > max_answer_words 30"
    nli = NLITask().verify(Example("n", "train", {"premise": "p", "hypothesis": "h"}, "entailment"), Parsed(answer="neutral", text=""))
    assert nli.detail == "teacher said neutral, reference is entailment"
