"""Where :class:`LossInputs` lived before the kernel declared it with the ``Loss`` interface.

Kept so plugins written against this path (and scaffolded ones) keep importing it; new code imports
``LossInputs`` and ``IGNORE_INDEX`` from ``stillhouse.kernel.interfaces``.
"""

from __future__ import annotations

from stillhouse.kernel.interfaces import IGNORE_INDEX, LossInputs

__all__ = ["IGNORE_INDEX", "LossInputs"]
