"""Where this process stands in a multi-process launch (torchrun / accelerate launch).

Both launchers set ``RANK`` and ``WORLD_SIZE`` for every process they start. They are read at each
call, never cached at import: a module imported before the launcher's variables are known (or a
test that sets them) must see the values in force when the run happens.
"""

from __future__ import annotations

import os


def rank() -> int:
    """This process's rank among the launch's processes (0 when not launched by torchrun)."""
    return int(os.environ.get("RANK", "0"))


def world_size() -> int:
    """How many processes work on this run together (1 when not launched by torchrun)."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def is_main_process() -> bool:
    """The process that records the run: writes events, calls lifecycle hooks, holds the run lock."""
    return rank() == 0
