"""Text helpers shared by the built-in task types: finding the answer in a model's output.

Real model output is messy: reasoning before the answer, ``**Answer:**`` in Markdown, a
``<think>`` block, "Sure! Here is ...:" preambles, quotes around a span. These functions find the
final answer and the reasoning in such text without knowing the task; each task then reads its own
kind of answer (a label, a number, a span, free text) out of the segment they return.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

# Words that introduce the reasoning part; stripped from the start of a rationale.
RATIONALE_LABELS = ("reasoning", "rationale", "explanation", "thoughts", "thinking", "justification", "steps")

_QUOTES = {'"': '"', "'": "'", "“": "”", "‘": "’", "«": "»", "`": "`", "„": "“"}
_THINK = re.compile(r"<think>(.*?)</think>", re.S | re.I)
# A chatty first line announcing the answer: "Sure! Here is a summary of the dialogue:".
_PREAMBLE = re.compile(
    r"^\s*(?:(?:sure|certainly|okay|ok|of course|absolutely|alright)\b[^\n]*?:"
    r"|(?:(?:sure|certainly|okay|ok|of course|absolutely|alright)\W+)?(?:here(?:'s| is| are)|below is)\b[^\n]*?[:.!])"
    r"[ \t]*\n(?=\s*\S)",
    re.I,
)
# A bare interjection on its own line before the answer ("Certainly.\n..."); in a reply it may be
# the reply itself, so only tasks whose answers never start so strip it.
_INTERJECTION = re.compile(r"^\s*(?:sure|certainly|okay|ok|of course|absolutely|alright)\W*\n(?=\s*\S)", re.I)
_RATIONALE_PREFIX = re.compile(
    r"^\s*(?:#+\s*)?(?:\*\*|__)?(?:" + "|".join(RATIONALE_LABELS) + r")(?:\*\*|__)?\s*[:：]\s*(?:\*\*|__)?\s*", re.I
)


@dataclass
class AnswerSplit:
    """Where the answer is in an output: the reasoning before it, the answer segment after the last
    answer marker (or the whole text when there is none), and whether a marker was found."""

    rationale: str | None
    answer: str
    marked: bool


@lru_cache(maxsize=64)
def marker_pattern(labels: tuple[str, ...], prose: bool = True) -> re.Pattern[str]:
    """A pattern for an answer marker: ``Answer:``, ``**Final answer**:``, ``### Answer`` on its
    own line, or (with ``prose``) phrases like "the final answer is"."""
    names = "|".join(re.escape(label) for label in sorted(labels, key=len, reverse=True))
    prose_part = (
        r"|\b(?:the\s+)?(?:final\s+|correct\s+|right\s+)?answer\s+(?:is|would\s+be|will\s+be|should\s+be)\s*[:：]?"
        if prose
        else ""
    )
    return re.compile(
        r"(?:"
        # Label: value  (optionally bold, optionally "final", optionally a heading)
        rf"(?:^|(?<=[\s*_#>]))(?:final\s+)?(?:{names})(?:\*\*|__)?\s*[:：]\s*(?:\*\*|__)?"
        r"|"
        # ### Answer  (a heading on its own line; the value follows on the next lines)
        rf"^\s*#+\s*(?:final\s+)?(?:{names})\s*$" + prose_part + r")",
        # "the answer is", "the final answer is:", "so the answer would be"
        re.I | re.M,
    )


def split_thinking(text: str) -> tuple[str | None, str]:
    """Separate a ``<think>...</think>`` block (reasoning models) from the reply proper."""
    thoughts = [m.strip() for m in _THINK.findall(text)]
    rest = _THINK.sub("", text)
    lowered = rest.lower()
    if "</think>" in lowered:  # an unopened block: everything before the close tag is thinking
        cut = lowered.rindex("</think>")
        thoughts.append(re.sub("<think>", "", rest[:cut], flags=re.I).strip())
        rest = rest[cut + len("</think>") :]
    elif "<think>" in lowered:  # an unclosed block (output cut off): no reply after it
        cut = lowered.index("<think>")
        thoughts.append(rest[cut + len("<think>") :].strip())
        rest = rest[:cut]
    joined = "\n".join(t for t in thoughts if t)
    return (joined or None), rest.strip()


def split_answer(
    text: str,
    labels: tuple[str, ...] = ("answer",),
    *,
    prose: bool = True,
    preamble: bool = False,
    interjections: bool = False,
) -> AnswerSplit:
    """Split ``text`` at its last answer marker into (rationale, answer segment). With
    ``preamble``, a chatty first line ("Sure! Here is a summary:") is dropped first (see
    :func:`strip_preamble`)."""
    thinking, body = split_thinking(text)
    if preamble:
        body = strip_preamble(body, interjections=interjections)
    matches = list(marker_pattern(labels, prose).finditer(body))
    if not matches:
        return AnswerSplit(rationale=thinking, answer=body.strip(), marked=False)
    last = matches[-1]
    before = body[: last.start()].strip()
    answer = body[last.end() :].strip()
    rationale = clean_rationale("\n".join(part for part in (thinking, before) if part))
    return AnswerSplit(rationale=rationale, answer=answer, marked=True)


def clean_rationale(text: str | None) -> str | None:
    """Drop a leading "Reasoning:" label and Markdown decoration; None when nothing is left."""
    if not text:
        return None
    text = _RATIONALE_PREFIX.sub("", text.strip(), count=1).strip()
    text = text.rstrip("*_ \n").strip()
    return text or None


def strip_preamble(text: str, *, interjections: bool = False) -> str:
    """Remove a chatty first line such as "Sure! Here is a summary of the dialogue:" when an
    answer follows it (a one-line output is the answer, even "Absolutely."). With
    ``interjections``, a bare "Certainly." line before the answer goes too."""
    text = _PREAMBLE.sub("", text.strip(), count=1)
    if interjections:
        text = _INTERJECTION.sub("", text, count=1)
    return text.strip()


def strip_markdown(text: str) -> str:
    """Remove emphasis and code marks around a short answer (``**x**``, ``_x_``, `` `x` ``)."""
    text = text.strip()
    for mark in ("**", "__", "*", "_", "`"):
        if len(text) > 2 * len(mark) and text.startswith(mark) and text.endswith(mark):
            text = text[len(mark) : -len(mark)].strip()
    return text.replace("**", "").strip()


def unquote(text: str) -> str:
    """Remove one pair of quotes wrapping the whole text."""
    text = text.strip()
    if len(text) >= 2 and text[0] in _QUOTES and text[-1] == _QUOTES[text[0]]:
        return text[1:-1].strip()
    return text


def clean_span(text: str) -> str:
    """A short answer without decoration: markdown, quotes, a trailing full stop."""
    text = strip_markdown(text)
    text = unquote(text)
    text = text.rstrip(".。!;,").strip()
    text = unquote(strip_markdown(text))
    return text


def first_line(text: str) -> str:
    """The first non-empty line of text ("" when there is none)."""
    for line in text.splitlines():
        if line.strip():
            return line.strip()
    return ""


def quoted_spans(text: str) -> list[str]:
    """Spans in double or curly quotes, in order (single quotes are too often apostrophes)."""
    return [m.group(1) or m.group(2) for m in re.finditer(r'"([^"\n]+)"|“([^”\n]+)”', text)]


def words(text: str) -> list[str]:
    """Lower-cased word tokens (letters and digits), for length and copy checks."""
    return re.findall(r"\w+", text.lower())


def longest_common_run(a: list[str], b: list[str]) -> int:
    """Length of the longest run of consecutive tokens shared by a and b (dynamic programming,
    O(len(a) * len(b)) time and O(len(b)) memory; the texts here are at most a few thousand words)."""
    if not a or not b:
        return 0
    best = 0
    previous = [0] * (len(b) + 1)
    for token in a:
        current = [0] * (len(b) + 1)
        for j, other in enumerate(b, 1):
            if token == other:
                current[j] = previous[j - 1] + 1
                if current[j] > best:
                    best = current[j]
        previous = current
    return best


def repeated_ngram_share(tokens: list[str], n: int = 3, minimum: int = 8) -> float:
    """Share of word n-grams that repeat an earlier one: 0 for varied text, towards 1 for the
    loops small models fall into ("I'm glad to hear ... I'm glad to hear ..."). Texts with fewer
    than ``minimum`` n-grams score 0: too short to judge."""
    grams = [tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1)]
    if len(grams) < minimum:
        return 0.0
    return 1 - len(set(grams)) / len(grams)
