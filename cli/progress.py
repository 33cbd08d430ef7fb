"""Progress lines for long stages: what is happening and how long it has taken."""

from __future__ import annotations

import time
from contextlib import contextmanager

from rich.console import Console


class Reporter:
    """Prints ``[stage +12.3s] message`` lines to stderr (stdout stays clean for data)."""

    def __init__(self, console: Console | None = None) -> None:
        self.console = console or Console(stderr=True, highlight=False)
        self._stage = ""
        self._t0 = time.perf_counter()

    @contextmanager
    def stage(self, name: str):
        """A named stage; its start, messages and end are printed with elapsed time."""
        self._stage, self._t0 = name, time.perf_counter()
        self.console.print(f"[bold]▶ {name}[/bold]")
        yield self
        self.console.print(f"[green]✓ {name}[/green] ({time.perf_counter() - self._t0:.1f}s)")

    def __call__(self, message: str) -> None:
        self.console.print(f"  [dim]{self._stage} +{time.perf_counter() - self._t0:.1f}s[/dim] {message}")
