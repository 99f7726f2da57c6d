"""Output drift: a notebook's cells now show something else than the outputs saved with it.

The hardest failure of the system this replaces: a notebook that runs, but whose plot is
nonsense or whose model suddenly trains to a low accuracy. The runner (in_container.py) sends,
per code cell saved with outputs, a brief of those and of what ran now: the text (streams and
plain-text results), the images (type, and size for PNGs) and the error name. Compared here:

- text token by token (numbers, words, each other character), numbers as numbers (within
  `RELATIVE_TOLERANCE`), memory addresses and whitespace ignored (numpy pads an array's numbers
  to the widest: `array([0. , 1.5])` and `array([ 0. , 1.5])` are the same array);
- images by presence, type and shape: the width to height ratio, within `IMAGE_SIZE_TOLERANCE`
  (a plot saved at another DPI is the same plot, larger);
- errors by exception name.

A warning by default; `[smoke_test] outputs = "strict"` in course.toml makes it a failure.
Pure functions of plain data.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

RELATIVE_TOLERANCE = 0.05
IMAGE_SIZE_TOLERANCE = 0.10
SHOWN = 60  # characters of each side in a report

_NUMBER = r"(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"  # a sign is a token of its own
_TOKEN = re.compile(rf"{_NUMBER}|[^\W\d]\w*|\S")
_ADDRESS = re.compile(r"0x[0-9a-fA-F]{6,}")

#: (cell, what drifted: "text" | "image" | "error", what was saved, what ran now)
Drift = tuple[int, str, str, str]


def _tokens(text: str) -> list[str]:
    return _TOKEN.findall(_ADDRESS.sub("0x…", text))


def _same_token(saved: str, now: str) -> bool:
    if saved == now:
        return True
    try:
        a, b = float(saved), float(now)
    except ValueError:
        return False
    return math.isclose(a, b, rel_tol=RELATIVE_TOLERANCE, abs_tol=1e-9)


def _short(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= SHOWN else text[: SHOWN - 1] + "…"


def _first_difference(saved: str, now: str) -> tuple[str, str]:
    """The first line that differs, each side, so that a report shows them side by side."""
    for a, b in zip(saved.splitlines() + [""], now.splitlines() + [""]):
        tokens_a, tokens_b = _tokens(a), _tokens(b)
        if len(tokens_a) != len(tokens_b) or not all(map(_same_token, tokens_a, tokens_b)):
            return _short(a) or "(nothing)", _short(b) or "(nothing)"
    return _short(saved), _short(now)


def text_drifted(saved: str, now: str) -> bool:
    tokens_a, tokens_b = _tokens(saved), _tokens(now)
    return len(tokens_a) != len(tokens_b) or not all(map(_same_token, tokens_a, tokens_b))


def _image(image: Sequence[Any]) -> str:
    mime, width, height = (list(image) + [None, None])[:3]
    return f"{mime} {width}x{height}" if width else str(mime)


def _images_drifted(saved: Sequence[Sequence[Any]], now: Sequence[Sequence[Any]]) -> bool:
    if [i[0] for i in saved] != [i[0] for i in now]:
        return True
    for a, b in zip(saved, now):
        (_, *size_a), (_, *size_b) = (list(a) + [None, None])[:3], (list(b) + [None, None])[:3]
        if all(size_a) and all(size_b):
            ratio_a, ratio_b = size_a[0] / size_a[1], size_b[0] / size_b[1]
            if abs(ratio_a - ratio_b) > IMAGE_SIZE_TOLERANCE * max(ratio_a, ratio_b):
                return True
    return False


def output_drift(outputs: Iterable[Mapping[str, Any]]) -> tuple[Drift, ...]:
    """The runner's `outputs` (cell, saved brief, brief now) -> what drifted, cell by cell."""
    found: list[Drift] = []
    for entry in outputs:
        cell, saved, now = entry["cell"], entry["stored"], entry["now"]
        if saved.get("error") != now.get("error"):
            found.append((cell, "error", saved.get("error") or "none", now.get("error") or "none"))
        if text_drifted(saved.get("text", ""), now.get("text", "")):
            found.append((cell, "text", *_first_difference(saved["text"], now.get("text", ""))))
        if _images_drifted(saved.get("images", ()), now.get("images", ())):
            shown = [
                ", ".join(map(_image, side)) or "none" for side in (saved["images"], now["images"])
            ]
            found.append((cell, "image", shown[0], shown[1]))
    return tuple(found)
