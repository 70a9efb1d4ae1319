"""User-facing errors: reported as one line with exit status 2."""

from __future__ import annotations

import argparse


class UsageError(Exception):
    """Bad input from the user (arguments, overrides, paths). The message names the problem and the
    allowed values."""


def one_line(err: BaseException) -> str:
    """The innermost cause's message that the message around it does not already carry (so a file name said
    by the outer error stays), flattened to one line."""
    while err.__cause__ is not None and str(err.__cause__) and str(err.__cause__) not in str(err):
        err = err.__cause__
    text = str(err) or type(err).__name__
    return " ".join(part.strip() for part in text.strip().splitlines() if part.strip())


class ArgumentParser(argparse.ArgumentParser):
    """argparse whose usage errors raise :class:`UsageError` (one line, exit 2) instead of exiting."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(message)
