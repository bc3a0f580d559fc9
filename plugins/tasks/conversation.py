"""Conversation: write the next turn of a dialogue (Topical-Chat, DailyDialog, chat-message layouts).

Turns may be objects with ``speaker``/``text`` (Topical-Chat), ``role``/``content`` (chat
messages), ``from``/``value`` (ShareGPT), or plain strings (alternating speakers). By default the
last turn is the reference reply and the turns before it are the context; a separate ``response``
column can hold the reply instead. Speaker labels are kept in the prompt.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from pydantic import Field

from stillhouse.kernel.interfaces import Example, FieldSpec, Metric, Parsed, Verdict
from stillhouse.plugins.tasks import metrics
from stillhouse.plugins.tasks.common import data_error, prediction_text
from stillhouse.plugins.tasks.freetext import FreeTextConfig, FreeTextTask
from stillhouse.plugins.tasks.text import split_answer, words

# Labels a model puts before a turn ("agent_2:", "#Person1#:", "Assistant:"); a reply starting
# with one is unwrapped and a line starting with one ends the reply (the model kept talking).
SPEAKER_LABEL = re.compile(
    r"^\s*(?:\*\*)?(?:agent[_ ]?\d+|speaker[_ ]?\w{1,3}|#?person[_ ]?\d+#?|user|assistant|bot|human|ai|[AB])(?:\*\*)?\s*:\s*",
    re.I,
)
_OPENING_LABEL = re.compile(r"^\s*(?:\*\*)?([^:\n*]{1,30}?)(?:\*\*)?\s*:\s")
_TEXT_KEYS = ("text", "content", "value", "utterance", "message")
_SPEAKER_KEYS = ("speaker", "role", "from", "author", "agent")


class ConversationConfig(FreeTextConfig):
    reply_from_last_turn: bool = Field(
        True, description="Without a response column, the last turn is the reference reply and the rest the context."
    )
    max_context_turns: int | None = Field(None, ge=1, description="Show only the last N context turns in prompts.")
    max_words: int = Field(80, ge=1, description="Longer replies are rejected as too_long.")
    max_copied_words: int | None = Field(
        12, ge=2, description="Reject replies that repeat this many consecutive words of the context (copied_context)."
    )


class ConversationTask(FreeTextTask[ConversationConfig]):
    name = "conversation"
    description = "Next turn of a dialogue; BLEU, chrF, ROUGE-L against the reference reply, distinct-1/2."
    Config = ConversationConfig
    primary_metric = "chrf"
    fields = (
        FieldSpec(
            "turns",
            aliases=("dialog", "dialogue", "messages", "conversation", "utterances", "history", "context"),
            kind="any",
        ),
        FieldSpec("response", aliases=("reply", "next_turn", "target"), required=False, reference=True),
    )
    id_fields = ("conversation_id", "dialogue_id", "dialog_id", "fname")
    instruction = "Continue the conversation below: write the next turn, in character, as a natural and engaging reply."
    answer_label = "Reply"
    answer_noun = "reply"
    answer_markers = ("reply", "response", "next turn")

    config: ConversationConfig

    def finish_example(self, example: Example, source: str) -> Example:
        turns = _normalise_turns(example.inputs["turns"], source)
        next_speaker = None
        if example.reference is None and self.config.reply_from_last_turn:
            if len(turns) < 2:
                raise data_error(
                    f"a conversation needs at least 2 turns (context + reply), got {len(turns)}",
                    source,
                    "turns",
                    hint="or set task_options.reply_from_last_turn = false for unlabelled conversations",
                )
            last = turns.pop()
            example.reference = last["text"]
            next_speaker = last["speaker"] or None
        if next_speaker is None and len(turns) >= 2 and turns[-2]["speaker"] != turns[-1]["speaker"]:
            next_speaker = turns[-2]["speaker"] or None  # speakers alternate
        example.inputs["turns"] = turns
        example.inputs["next_speaker"] = next_speaker
        return example

    def answer_format_for(self, example: Example | None) -> str:
        speaker = example.inputs.get("next_speaker") if example is not None else None
        who = f" as {speaker}" if speaker else ""
        return f"Write only the next turn{who}, one short message, without a speaker label."

    def render_input(self, example: Example) -> str:
        turns = example.inputs["turns"]
        if self.config.max_context_turns:
            turns = turns[-self.config.max_context_turns :]
        lines = [f"{t['speaker']}: {t['text']}" if t["speaker"] else t["text"] for t in turns]
        return "Conversation:\n" + "\n".join(lines)

    def answer_lines(self, segment: str) -> list[str]:
        kept: list[str] = []
        for line in segment.splitlines():
            if not line.strip():
                if kept:
                    break  # the reply is the first paragraph
                continue
            if SPEAKER_LABEL.match(line):
                if kept:
                    break  # a second speaker: the model went on writing the dialogue
                line = SPEAKER_LABEL.sub("", line, count=1)
            kept.append(line.strip())
        return kept

    def verify(self, example: Example, parsed: Parsed) -> Verdict:
        # A NUL word between turns keeps a verbatim run from spanning two turns.
        context = [w for turn in example.inputs["turns"] for w in [*words(turn["text"]), "\x00"]]
        rejected = self.check_text(parsed, context)
        if rejected is not None:
            return rejected
        speakers = {turn["speaker"].lower() for turn in example.inputs["turns"] if turn["speaker"]}
        wanted = (example.inputs.get("next_speaker") or "").lower()
        opening = self._opening_label(parsed.text)
        if wanted and opening in speakers and opening != wanted:
            return Verdict(False, "wrong_speaker")  # "agent_1: ..." when agent_2 is to reply
        reply = words(str(parsed.answer))
        # A turn repeated word for word; a short formula ("Goodbye!" to "Goodbye!") is a fine reply.
        if len(reply) >= 4 and any(words(turn["text"]) == reply for turn in example.inputs["turns"]):
            return Verdict(False, "copied_context")
        return Verdict(True, "ok")

    def _opening_label(self, text: str) -> str | None:
        """The speaker label the raw output opens with ("Agent_1:" -> "agent_1"), if any."""
        segment = split_answer(text, self.answer_markers, prose=False, preamble=True).answer
        match = _OPENING_LABEL.match(segment)
        return match.group(1).strip().lower() if match else None

    def score(self, examples: Sequence[Example], predictions: Sequence[Parsed]) -> list[Metric]:
        texts = [prediction_text(p) for p in predictions]
        diversity = [
            metrics.metric(f"distinct_{n}", metrics.distinct_n(texts, n), len(texts), "no words in the replies")
            for n in (1, 2)
        ]
        return self.overlap_metrics(examples, predictions, ["bleu", "chrf", "rouge_l"]) + diversity


def _normalise_turns(value: Any, source: str) -> list[dict[str, str]]:
    """Turns as ``[{"speaker": ..., "text": ...}]`` from the layouts in the module docstring."""
    if isinstance(value, str):
        # One turn a line, "speaker: text" where a speaker label is present.
        value = [line for line in value.splitlines() if line.strip()]
    if not isinstance(value, list | tuple):
        raise data_error(f"turns should be a list of turns, got {type(value).__name__}", source, "turns")
    turns = []
    for i, turn in enumerate(value):
        if isinstance(turn, str):
            label = re.match(r"^\s*([^:\n]{1,30}):\s+(.*)$", turn, re.S)
            speaker, text = (label.group(1).strip(), label.group(2)) if label else ("AB"[i % 2], turn)
        elif isinstance(turn, dict):
            text = next((turn[k] for k in _TEXT_KEYS if isinstance(turn.get(k), str)), None)
            speaker = next((str(turn[k]) for k in _SPEAKER_KEYS if turn.get(k) not in (None, "")), "")
            if text is None:
                raise data_error(f"turn {i} has no text (looked for {', '.join(_TEXT_KEYS)})", source, f"turns[{i}]")
        else:
            raise data_error(
                f"turn {i} should be an object or a string, got {type(turn).__name__}", source, f"turns[{i}]"
            )
        turns.append({"speaker": speaker, "text": text.strip()})
    return turns
