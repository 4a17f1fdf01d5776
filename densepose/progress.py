"""Progress of long work: a bar on a terminal, a plain line now and then in a log file.

A tqdm bar written to a file (``nohup``, a cluster job, ``> log 2>&1``) is thousands of
``\\r``-joined updates in which the work's own lines get lost; there a line every minute says as
much and reads cleanly.
"""
from __future__ import annotations

import sys
import time
from typing import Callable, TextIO


def on_terminal(stream: TextIO | None = None) -> bool:
    """Whether ``stream`` (default: stderr) is a terminal."""
    isatty = getattr(stream or sys.stderr, "isatty", None)
    return bool(isatty and isatty())


class Progress:
    """``update(n)`` as work is done, ``close()`` at the end (or use it as a context manager).

    On a terminal a tqdm bar (``leave=False``: gone when closed); elsewhere ``desc: done / total
    unit (rate unit/s, about T left)`` at most every ``every_s`` seconds, and once more at the end.
    ``total`` None: unknown (no total, no time left). ``enabled=False`` says nothing.
    """

    def __init__(self, total: int | None, desc: str, unit: str, enabled: bool = True, every_s: float = 60.0,
                 stream: TextIO | None = None, clock: Callable[[], float] = time.monotonic, leave: bool = True):
        self.total, self.desc, self.unit, self.every_s = total, desc, unit, every_s
        self.stream, self.clock = stream or sys.stderr, clock
        self.done = 0
        self.enabled = enabled
        self._bar = None
        if enabled and on_terminal(self.stream):
            from tqdm import tqdm

            self._bar = tqdm(total=total, desc=desc, unit=unit, file=self.stream, leave=leave)
        self._start = self._last = clock()

    def update(self, n: int = 1) -> None:
        self.done += n
        if self._bar is not None:
            self._bar.update(n)
        elif self.enabled and self.clock() - self._last >= self.every_s:
            self._line()

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
        elif self.enabled and self.done:
            self._line()
        self.enabled = False  # a second close says nothing

    def _line(self) -> None:
        now = self._last = self.clock()
        rate = self.done / max(now - self._start, 1e-9)
        eta = ""
        if self.total is not None and self.done < self.total and rate > 0:
            eta = f", about {_duration((self.total - self.done) / rate)} left"
        of = "" if self.total is None else f" / {self.total}"
        print(f"{self.desc}: {self.done}{of} {self.unit} ({rate:.2f} {self.unit}/s{eta})", file=self.stream, flush=True)

    def __enter__(self) -> "Progress":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"
