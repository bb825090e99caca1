"""Cell values of Wood Wide result rows, read the same from csv (strings) and json/parquet.

A csv cell is text (``"0.88"``, ``"True"``, ``"[0.1, 0.9]"``); json and parquet cells
are native. Each reader raises ValueError (or TypeError) on a value it cannot read;
normalize.py turns that into the provider's bad response.
"""

from __future__ import annotations

import json
import re
from typing import Any


def blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def number(value: Any) -> float:
    if isinstance(value, bool) or blank(value):
        raise ValueError(f"not a number: {value!r}")
    return float(value)


def opt_number(value: Any) -> float | None:
    return None if blank(value) else number(value)


def is_number(value: Any) -> bool:
    try:
        number(value)
    except (TypeError, ValueError):
        return False
    return True


def boolean(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return value != 0
    text = str(value).strip().lower()
    if text in ("true", "1", "yes", "t"):
        return True
    if text in ("false", "0", "no", "f", ""):
        return False
    raise ValueError(f"not a boolean: {value!r}")


def label(value: Any) -> str | None:
    """A class label as text: ``1``, ``1.0`` and ``"1"`` are all ``"1"``."""
    if blank(value):
        return None
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def int_or_str(value: Any) -> int | str:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    text = str(value).strip()
    return int(text) if text.lstrip("-").isdigit() else text


_SEPARATORS = re.compile(r"[\s,]+")


def structured(value: Any) -> Any:
    """A list or object, given natively or as text (csv): JSON, or numpy's ``[0.1 0.9]``."""
    if not isinstance(value, str):
        return value
    text = value.strip()
    if not text.startswith(("{", "[")):
        return value
    try:
        return json.loads(text)
    except ValueError:
        if not (text.startswith("[") and text.endswith("]")):
            raise
        # numpy's repr (pandas writes array cells so): "[0.1 0.2 0.7]"
        return [float(x) for x in _SEPARATORS.split(text[1:-1].strip()) if x]
