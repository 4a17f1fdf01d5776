"""Reading a JSON file (annotations, results, dataset folders) with one-line errors that name it."""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from densepose.errors import UserError


def read_json(path: str | os.PathLike, what: str = "JSON file") -> Any:
    """The parsed contents of ``path``; a missing file, invalid JSON, text that is not UTF-8 and
    nesting too deep for the parser each raise `UserError` naming the file (``what`` says what it
    should have been, e.g. "annotation file")."""
    path = Path(path)
    a_what = f"{'an' if what[:1].lower() in 'aeiou' else 'a'} {what}"
    if not path.is_file():
        raise UserError(f"{path}: {what} not found")
    try:
        with open(path, "rb") as f:
            return json.load(f)
    except json.JSONDecodeError as exc:
        raise UserError(f"{path}: not valid JSON ({exc.msg}, line {exc.lineno} column {exc.colno})") from None
    except UnicodeDecodeError:
        raise UserError(f"{path}: not UTF-8 text, so not {a_what}") from None
    except RecursionError:
        raise UserError(f"{path}: JSON nested too deeply to be {a_what}") from None
