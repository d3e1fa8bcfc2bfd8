"""A routed client's shadows, so that closing the client can first let them finish."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from aurum_otel.phase import SkipReason

if TYPE_CHECKING:
    from aurum_otel.shadow.run import ShadowRun


class ShadowScope:
    """The shadows of one routed client, so that closing it can first let them finish.

    A client's ``close()`` calls :meth:`close`: no new shadow is taken, and it waits (bounded)
    for those queued and running; after the wait, those still queued are counted ``skipped``
    (``closed``) and never run, and a run still running is counted ``skipped`` too when it ends,
    never a mismatch.
    """

    def __init__(self) -> None:
        self._idle = threading.Condition()
        self._runs: set[ShadowRun] = set()
        self.closed = False

    def enter(self, run: ShadowRun) -> bool:
        with self._idle:
            if self.closed:
                return False
            self._runs.add(run)
            return True

    def leave(self, run: ShadowRun) -> None:
        with self._idle:
            self._runs.discard(run)
            if not self._runs:
                self._idle.notify_all()

    def close(self, timeout: float) -> bool:
        """Stop new shadows, let queued and running ones finish for up to ``timeout`` s, then
        cancel those still queued; ``True`` when every one finished in time."""
        with self._idle:
            self.closed = True
            if self._idle.wait_for(lambda: not self._runs, timeout):
                return True
            late = list(self._runs)
        for run in late:
            run.cancel(SkipReason.CLOSED)  # those not started yet never will
        with self._idle:
            for run in self._runs:
                run.cut = True  # running still: its resource is going away under it
        return False
