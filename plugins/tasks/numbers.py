"""Numbers in math answers: the GSM8K gold format and the final number of a model's reasoning.

GSM8K gold answers are a rationale with calculator annotations (``48/2 = <<48/2=24>>24``) and a
last line ``#### 72``. Model outputs end in many ways: ``#### 72``, ``\\boxed{72}``, "The answer
is $1,080.", "Answer: 72 clips", or just a last number. :func:`final_number` tries those in order of
how explicit they are, the way common GSM8K harnesses do (strict ``####``, then flexible).
Numbers are compared in a canonical text form (``"1080"``, ``"-3"``, ``"0.5"``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from stillhouse.plugins.tasks.text import split_answer, split_thinking

# A number as people write it: sign, currency, thousands separators, decimals, a fraction.
# It may not start inside a word or right after a digit/point ("x2", "1.5.3"), so "10-3" reads 10 and 3.
NUMBER = re.compile(
    r"(?<![\w.])(?P<num>[-−]?\$?(?:\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?|\.\d+)(?:\s*/\s*\d+(?!\d|\.\d))?)"
)
_CALCULATOR = re.compile(r"<<[^<>]*>>")
_BOXED = re.compile(r"\\(?:boxed|fbox)\s*\{((?:[^{}]|\{(?:[^{}]|\{[^{}]*\})*\})*)\}")
_LATEX_FRACTION = re.compile(r"\\d?frac\s*\{([^{}]+)\}\s*\{([^{}]+)\}")
_GSM_MARK = re.compile(r"####\s*(.*)")
_DECIMALS = Decimal(10) ** -10  # fractions like 1/3 are rounded to 10 places before comparing


def canonical(raw: str | int | float | Decimal) -> str | None:
    """The canonical text of a number ("1,080.00" -> "1080", "$-3" -> "-3", "3/4" -> "0.75");
    None when ``raw`` is not a number."""
    if isinstance(raw, bool):
        return None
    if isinstance(raw, int | float | Decimal):
        text = repr(raw) if isinstance(raw, float) else str(raw)
    else:
        text = raw
    text = text.strip().replace("−", "-").replace("$", "").replace(",", "").replace(" ", "")
    text = text.rstrip("%")
    try:
        if "/" in text:
            top, bottom = text.split("/", 1)
            if Decimal(bottom) == 0:
                return None
            value = Decimal(top) / Decimal(bottom)
        else:
            value = Decimal(text)
    except (InvalidOperation, ValueError):
        return None
    if not value.is_finite():
        return None
    if value == value.to_integral_value():
        return str(int(value))
    value = value.quantize(_DECIMALS).normalize()
    return format(value, "f")


def numbers_in(text: str) -> list[str]:
    """Every number in text, in order, as written."""
    return [m.group("num") for m in NUMBER.finditer(text)]


def equal(a: str | None, b: str | None, tolerance: float = 0.0) -> bool:
    """Whether two canonical numbers are equal (within an absolute tolerance)."""
    if a is None or b is None:
        return False
    if tolerance == 0:
        return a == b
    return abs(Decimal(a) - Decimal(b)) <= Decimal(str(tolerance))


@dataclass
class FinalNumber:
    value: str | None  # canonical number, None when none was found
    rationale: str | None
    how: str  # boxed | hashes | marker | only | last | none


def _number_of_segment(segment: str) -> str | None:
    """The number a short answer segment states: after the last "=" if it shows a calculation
    ("48 + 24 = 72"), else the first number ("72 clips (48 + 24)")."""
    segment = _LATEX_FRACTION.sub(r"\1/\2", segment).replace("{,}", ",").replace("\\,", ",").replace("\\$", "$")
    if "=" in segment:
        found = numbers_in(segment.rsplit("=", 1)[1])
        if found:
            return canonical(found[0])
    found = numbers_in(segment)
    return canonical(found[0]) if found else None


def final_number(text: str) -> FinalNumber:
    """The final answer of a worked solution, and the reasoning before it."""
    thinking, body = split_thinking(text)
    boxed = list(_BOXED.finditer(body))
    if boxed:
        value = _number_of_segment(boxed[-1].group(1))
        if value is not None:
            before = body[: boxed[-1].start()]
            line_start = before.rfind("\n")
            rationale = _join(thinking, before[:line_start] if line_start >= 0 else "")
            return FinalNumber(value, rationale, "boxed")
    hashes = list(_GSM_MARK.finditer(body))
    if hashes:
        value = _number_of_segment(hashes[-1].group(1))
        if value is not None:
            return FinalNumber(value, _join(thinking, body[: hashes[-1].start()]), "hashes")
    split = split_answer(body, ("answer", "final answer", "result"))
    if split.marked:
        first = next((line for line in split.answer.splitlines() if line.strip()), "")
        value = _number_of_segment(first)
        if value is not None:
            return FinalNumber(value, _join(thinking, split.rationale or ""), "marker")
    matches = list(NUMBER.finditer(body))
    if not matches:
        return FinalNumber(None, thinking, "none")
    last = matches[-1]
    if len(matches) == 1 and len(body.split()) <= 4:
        # The whole reply is the number ("55000", "$1,080.", "72 clips"): an answer-only output.
        return FinalNumber(canonical(last.group("num")), thinking, "only")
    before = body[: last.start()]
    line_start = before.rfind("\n")
    # The lines before the one with the number; in a one-line solution, the text before the number.
    rationale = _join(thinking, before[:line_start] if line_start >= 0 else before)
    return FinalNumber(canonical(last.group("num")), rationale, "last")


def gsm8k_gold(answer: str) -> tuple[str | None, str | None]:
    """(number, rationale) of a GSM8K answer field; the rationale loses its calculator annotations."""
    head, hashes, tail = answer.rpartition("####")
    if hashes:
        found = numbers_in(tail)
        value = canonical(found[0]) if found else None
        return value, strip_calculator(head) or None
    result = final_number(answer)
    return result.value, strip_calculator(result.rationale or "") or None


def strip_calculator(text: str) -> str:
    """Remove GSM8K ``<<48/2=24>>`` calculator annotations."""
    return _CALCULATOR.sub("", text).strip()


def _join(*parts: str | None) -> str | None:
    joined = "\n".join(p.strip() for p in parts if p and p.strip())
    return joined or None
