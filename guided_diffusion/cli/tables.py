"""Reading a user's CSV file for a command, with one-line usage errors."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from guided_diffusion.cli.errors import UsageError


def read_csv_table(path: Path, *, what: str = "") -> pd.DataFrame:
    """The CSV at ``path`` (empty cells stay empty strings); ``what`` prefixes the error messages.

    Raises:
        UsageError: if the file is missing or not a readable CSV.
    """
    prefix = f"{what}: " if what else ""
    if not path.is_file():
        raise UsageError(f"{prefix}no such file: {path}")
    try:
        return pd.read_csv(path, keep_default_na=False)
    except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError) as err:
        raise UsageError(f"{prefix}{path} is not a readable CSV: {err}") from None
