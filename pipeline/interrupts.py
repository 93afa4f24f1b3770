"""Interrupts are failures: SIGINT and SIGTERM stop a command with exit code 130 / 143.

Both signals raise `Interrupted`, a BaseException (so no `except Exception` swallows it) that
unwinds through every `finally`: temporary files are removed and an uncommitted scoring run is
rolled back before the process exits. A library may turn it into its own error (DuckDB raises
"Query interrupted"), so the signal is also recorded and `received()` tells the CLI that whatever
ended the command, it was an interrupt. `deferred()` holds the signals back during the few
renames of a commit, so an interrupt lands before or after them, never in between.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

HANDLED = (signal.SIGINT, signal.SIGTERM)


class Interrupted(BaseException):
    """The process received SIGINT or SIGTERM."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum

    @property
    def name(self) -> str:
        return signal.Signals(self.signum).name

    @property
    def exit_code(self) -> int:
        return 128 + self.signum


_received: list[int] = []


def _raise(signum: int, frame: FrameType | None) -> None:
    _received.append(signum)
    raise Interrupted(signum)


def received(exc: BaseException | None = None) -> int | None:
    """The signal that ended the command: `exc`'s own, else the first one this process received."""
    if isinstance(exc, Interrupted):
        return exc.signum
    if isinstance(exc, KeyboardInterrupt):
        return int(signal.SIGINT)
    return _received[0] if _received else None


def install() -> None:
    """Turn SIGINT and SIGTERM into `Interrupted` for this process (main thread only); forget earlier signals."""
    _received.clear()
    if threading.current_thread() is threading.main_thread():
        for signum in HANDLED:
            signal.signal(signum, _raise)


@contextmanager
def deferred() -> Iterator[None]:
    """Hold SIGINT/SIGTERM until the block is done, then raise the first one that arrived."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    pending: list[int] = []
    previous = {signum: signal.signal(signum, lambda s, _f: pending.append(s)) for signum in HANDLED}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    if pending:
        _received.append(pending[0])
        raise Interrupted(pending[0])
