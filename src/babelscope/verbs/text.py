"""Rich tables as text, for a verb's ``Result.summary`` (the CLI prints it when the verb ends)."""

from __future__ import annotations

from rich.console import Console


def as_text(*renderables) -> str:
    """What ``Console().print`` would show for ``renderables``, as one string."""
    console = Console()
    with console.capture() as captured:
        for r in renderables:
            console.print(r)
    return captured.get().rstrip("\n")
