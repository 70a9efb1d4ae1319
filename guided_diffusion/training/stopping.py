"""Graceful stops: SIGTERM and SIGINT become a request the training loop honours with a checkpoint."""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def stop_requests() -> Iterator[list[int]]:
    """While training, SIGTERM and SIGINT ask for a checkpoint and a clean stop instead of killing the run.

    Yields a list that receives the signal numbers (empty until one arrives). Only the main thread can
    install handlers; elsewhere the list stays empty and the signals keep their default action.
    """
    received: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        yield received
        return

    def handler(signum: int, frame: object) -> None:
        received.append(signum)

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield received
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
