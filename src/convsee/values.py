"""The grammars of the values the library takes as text: channel choices ("top:8", "0-5"),
a blur ("5,3"), an input size ("3,224,224"), lists of numbers ("0.5,0.5,0.5").

The CLI passes flag values through these, the web server its JSON fields, Python callers
their arguments: one parser for each syntax. Errors name the parameter (ConvseeError.param)."""

from __future__ import annotations

import re

from .errors import ConvseeError

__all__ = ["MAX_BLUR_KERNEL", "parse_blur", "parse_channels", "parse_floats", "parse_size"]

MAX_BLUR_KERNEL = 31  # px; a Gaussian this wide already flattens a 28x28 map


def parse_floats(text, param: str):
    """(numbers,) from "a,b,c" (or a sequence of numbers); None stays None."""
    if text is None:
        return None
    if not isinstance(text, str) and hasattr(text, "__iter__"):
        text = ",".join(str(v) for v in text)
    try:
        vals = tuple(float(x) for x in str(text).split(",") if x.strip())
    except ValueError:
        raise ConvseeError(
            f"{{param}} takes numbers separated by commas, got {str(text)[:40]!r}", param
        ) from None
    if not vals:
        raise ConvseeError("{param} needs at least one number", param)
    return vals


def parse_size(text, param: str = "input_size"):
    """(C, H, W) from "C,H,W" (or "CxHxW", or a sequence of three integers); None stays None."""
    if text is None:
        return None
    if not isinstance(text, str) and hasattr(text, "__iter__"):
        text = ",".join(str(v) for v in text)
    parts = [x for x in re.split(r"[,x ]+", str(text).strip()) if x]
    if len(parts) != 3 or not all(re.fullmatch(r"-?[0-9]{1,40}", x) for x in parts):
        raise ConvseeError(
            f"{{param}} takes C,H,W such as 3,224,224; got {str(text)[:40]!r}", param
        )
    c, h, w = (int(x) for x in parts)
    if not (1 <= c <= 64 and 1 <= h <= 4096 and 1 <= w <= 4096):
        raise ConvseeError(
            f"{{param}} {','.join(parts)[:40]} is out of range (C 1..64, H and W 1..4096)", param
        )
    return (c, h, w)


def parse_blur(text, param: str = "blur"):
    """(kernel, sigma) from "KERNEL,SIGMA" (or a pair); None stays None."""
    if text is None:
        return None
    if isinstance(text, (tuple, list)):
        text = ",".join(str(v) for v in text)
    try:
        k, sigma = str(text).split(",")
        k, sigma = int(k), float(sigma)
    except ValueError:
        raise ConvseeError(
            f"{{param}} takes KERNEL,SIGMA such as 5,3; got {str(text)[:40]!r}", param
        ) from None
    if not (1 <= k <= MAX_BLUR_KERNEL and k % 2 == 1):
        raise ConvseeError(f"{{param}} kernel must be odd, 1..{MAX_BLUR_KERNEL}; got {k}", param)
    if not (0 < sigma <= 50):
        raise ConvseeError(f"{{param}} sigma must be in (0, 50]; got {sigma:g}", param)
    return k, sigma


def parse_channels(
    text, n: int, default_top: int = 64, layer: str | None = None, param: str = "channels"
):
    """(channel indices to draw, how they were chosen): 'all', 'top:K', 'A-B', 'i,j,...'.

    None: all of them up to default_top channels, else the top default_top (chosen later by
    mean activation, so returned as ('top', K)). layer: its name, for the error message."""
    if text is None:
        return ("all", None) if n <= default_top else ("top", default_top)
    if not isinstance(text, str) and hasattr(text, "__iter__"):
        text = ",".join(str(v) for v in text)
    t = str(text).strip()
    if t == "all":
        return ("all", None)
    if t.startswith("top:"):
        k = t[4:]
        if not (k.isascii() and k.isdigit() and 1 <= int(k) <= 100000):
            raise ConvseeError(f"{{param}} top:K needs a positive K, got {t[:40]!r}", param)
        return ("top", min(int(k), n))
    picked: list[int] = []
    for part in t.split(","):
        part = part.strip()
        m = re.fullmatch(r"(\d{1,6})-(\d{1,6})", part)
        if m:
            lo, hi = int(m.group(1)), int(m.group(2))
            if lo > hi:
                raise ConvseeError(f"{{param}} range {part} runs backwards", param)
            picked += range(lo, hi + 1)
        elif part.isascii() and part.isdigit() and len(part) <= 6:
            picked.append(int(part))
        else:
            raise ConvseeError(f"{{param}} takes all, top:K, A-B or i,j,...; got {t[:40]!r}", param)
    bad = [c for c in picked if c >= n]
    if bad:  # what the user typed, the largest channel past the end, and the valid range
        raise ConvseeError(
            f"{{param}} {t[:40]}: channel {max(bad)} is out of range; "
            f"{'the layer' if layer is None else layer} has {n} channels (0-{n - 1})",
            param,
        )
    return ("list", sorted(dict.fromkeys(picked)))
