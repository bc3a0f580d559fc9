"""Text as a terminal may show it: control characters made visible.

A run name, a model answer or an error message can carry escape sequences (``\\x1b[2J``); printed
as-is they would restyle or clear the user's terminal, so every table shows them escaped instead.
"""

from __future__ import annotations

import re

# C0 controls (tab and newline included: a table cell is one line), DEL and C1 controls.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_NAMED = {"\n": "\\n", "\t": "\\t", "\r": "\\r"}


def visible(text: str) -> str:
    """``text`` with each control character written as an escape (``\\x1b``, ``\\n``)."""
    if not _CONTROL.search(text):
        return text
    return _CONTROL.sub(lambda m: _NAMED.get(m.group(), f"\\x{ord(m.group()):02x}"), text)
