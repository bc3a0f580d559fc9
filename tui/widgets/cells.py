"""How values look in tables: status colours, progress bars, scores, money, durations.

Rich renderables only; every table in the app formats through here so a run reads the same on
every screen. Colours are theme variables' neighbours that stay legible on light and dark themes.
"""

from __future__ import annotations

from rich.text import Text

from stillhouse.kernel.text import visible

STATUS_STYLES = {
    "completed": "bold green",
    "running": "bold cyan",
    "created": "cyan",
    "failed": "bold red",
    "interrupted": "bold magenta",
    "incomplete": "bold yellow",
    "finished": "green",
    "pending": "dim",
}

STAGE_MARKS = {"finished": "✓", "running": "▶", "failed": "✗", "interrupted": "■", "pending": "·"}


def status_text(status: str) -> Text:
    return Text(status, style=STATUS_STYLES.get(status, ""))


def progress_bar(fraction: float | None, width: int = 5) -> Text:
    """``▰▰▰▱▱ 62%``; an empty string when nothing is known yet."""
    if fraction is None:
        return Text("-", style="dim")
    fraction = max(0.0, min(1.0, fraction))
    filled = round(fraction * width)
    text = Text("▰" * filled, style="cyan")
    text.append("▱" * (width - filled), style="dim")
    text.append(f" {fraction * 100:3.0f}%")
    return text


def score(value: float | None) -> Text:
    """A task metric (0..1) to three decimals, right-aligned; "-" when missing."""
    if value is None:
        return Text("-", style="dim", justify="right")
    return Text(f"{value:.3f}", justify="right")


def percent(value: float | None, justify: str = "right") -> Text:
    """A ratio (1.0 = 100 %) as a percentage, coloured by how much is kept."""
    if value is None:
        return Text("-", style="dim", justify=justify)  # type: ignore[arg-type]
    style = "green" if value >= 0.9 else "yellow" if value >= 0.7 else "red"
    return Text(f"{value * 100:.0f}%", style=style, justify=justify)  # type: ignore[arg-type]


def money(value: float | None) -> Text:
    if value is None:
        return Text("-", style="dim", justify="right")
    return Text(f"${value:.4f}" if value < 1 else f"${value:,.2f}", justify="right")


def number(value: float | None, digits: int = 4) -> Text:
    if value is None:
        return Text("-", style="dim", justify="right")
    if abs(value) >= 1000 or value == int(value):
        return Text(f"{value:,.0f}" if abs(value) >= 1000 else f"{value:g}", justify="right")
    return Text(f"{value:.{digits}g}", justify="right")


def duration(seconds: float | None) -> str:
    """``2d 01:02:03`` / ``1:02:03`` / ``2:03``; "-" when unknown."""
    if seconds is None:
        return "-"
    seconds = max(0, int(round(seconds)))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d {hours:02d}:{minutes:02d}:{secs:02d}"
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def clip(text: str, width: int) -> str:
    """One line of at most ``width`` characters; control characters shown escaped (a name with
    an escape sequence must not restyle the terminal)."""
    flat = visible(" ".join(text.split()))
    return flat if len(flat) <= width else flat[: max(0, width - 1)] + "…"


def toml_text(source: str) -> Text:
    """TOML with [tables] and keys picked out; plain theme colours so it reads on light and dark."""
    text = Text()
    for line in source.splitlines():
        stripped = line.strip()
        if stripped.startswith("["):
            text.append(line, style="bold cyan")
        elif stripped.startswith("#"):
            text.append(line, style="dim")
        elif "=" in line:
            key, _, value = line.partition("=")
            text.append(key, style="bold")
            text.append("=" + value)
        else:
            text.append(line)
        text.append("\n")
    return text
