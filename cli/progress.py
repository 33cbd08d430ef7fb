"""Progress lines for long stages: what is happening and how long it has taken."""

from __future__ import annotations

import time
from contextlib import contextmanager

from rich.console import Console


class Reporter:
    """Prints ``▶ stage`` then ``  +12.3s message`` lines to stderr (stdout stays clean for data)."""

    def __init__(self, console: Console | None = None) -> None:
        self.console = console or Console(stderr=True, highlight=False)
        self._stage = ""
        self._t0 = time.perf_counter()

    @contextmanager
    def stage(self, name: str):
        """A named stage; its start, messages and end are printed with elapsed time."""
        self._stage, self._t0 = name, time.perf_counter()
        self.console.print(f"[bold]▶ {name}[/bold]", soft_wrap=True)
        try:
            yield self
        except BaseException:
            self.console.print(f"[red]✗ {name}[/red] failed after {time.perf_counter() - self._t0:.1f}s", soft_wrap=True)
            raise
        self.console.print(f"[green]✓ {name}[/green] ({time.perf_counter() - self._t0:.1f}s)", soft_wrap=True)

    def __call__(self, message: str) -> None:
        elapsed = f"+{time.perf_counter() - self._t0:5.1f}s"
        self.console.print(f"  [dim]{elapsed}[/dim] ", end="", soft_wrap=True)
        self.console.print(message, soft_wrap=True, markup=False)
