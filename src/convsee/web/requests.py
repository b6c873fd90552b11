"""Reading request bodies defensively: a size cap while streaming, JSON with depth and
number limits, and short messages that describe a bad value without echoing it.

Nothing here knows what the payload means, so any route (and any future model) can use it.
Every failure is a `BadRequest` with a 4xx status and a message meant to be shown as is.
"""

from __future__ import annotations

import json
import logging
import math

__all__ = [
    "BadRequest",
    "read_body",
    "parse_json",
    "query",
    "whole",
    "describe",
    "MAX_DEPTH",
    "MAX_NUMBER_CHARS",
]

log = logging.getLogger("convsee.web")
MAX_DEPTH = 32  # nested lists/objects; the activations request needs 3
MAX_NUMBER_CHARS = 100  # characters in one JSON number; JavaScript writes at most ~24


class BadRequest(Exception):
    """A request the client got wrong: status (4xx) and a short message of ours."""

    def __init__(self, message: str, status: int = 400, *, close: bool = False):
        super().__init__(message)
        self.status = status
        self.close = close  # answer with Connection: close (the rest of the body is unread)


def describe(value) -> str:
    """What a JSON value is, in a few words and without its content."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return f"a string of {len(value)} characters" if len(value) > 40 else "a string"
    if isinstance(value, list):
        return f"a list of {len(value)} items"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def query(params, keys: tuple[str, ...] = ()) -> dict[str, str]:
    """The query string's values by key (a Starlette QueryParams or a list of (key, value)):
    each of `keys` at most once, no other key (400: a typo is said, never ignored)."""
    items = params.multi_items() if hasattr(params, "multi_items") else list(params)
    out: dict[str, str] = {}
    for key, value in items:
        if key not in keys:
            takes = ", ".join(f"'{k}'" for k in keys) if keys else "no query parameters"
            raise BadRequest(f"unknown query parameter: this address takes {takes}")
        if key in out:
            raise BadRequest(f"'{key}' is given more than once in the query")
        out[key] = value
    return out


def whole(text: str, key: str, what: str = "a whole number") -> int:
    """A query value that must be a whole number (0 or more, at most 9 digits): 400 else."""
    if not (len(text) <= 9 and text.isascii() and text.isdigit()):
        raise BadRequest(f"'{key}' must be {what}, got {describe(text)}")
    return int(text)


async def read_body(request, limit: int) -> bytes:
    """The whole body, refusing (413) as soon as it is over `limit` bytes, declared or sent."""
    declared = request.headers.get("content-length")
    if declared is not None:
        if not (declared.isascii() and declared.isdigit()) or len(declared) > 15:
            raise BadRequest("bad Content-Length header", 400, close=True)
        if int(declared) > limit:
            raise BadRequest(f"body too large (over {limit} bytes)", 413, close=True)
    from starlette.requests import ClientDisconnect

    chunks, size = [], 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise BadRequest(f"body too large (over {limit} bytes)", 413, close=True)
            chunks.append(chunk)
    except ClientDisconnect:  # one line in the log, not a traceback
        log.warning("a client closed its connection while sending a request body")
        raise BadRequest("the connection closed before the body arrived", 400, close=True) from None
    return b"".join(chunks)


def _reject_constant(name):
    raise BadRequest(f"{name} is not allowed: numbers must be finite")


def _number(convert):
    def parse(text: str):
        if len(text) > MAX_NUMBER_CHARS:
            raise BadRequest(
                f"a number in the body is too long (over {MAX_NUMBER_CHARS} characters)"
            )
        x = convert(text)
        if isinstance(x, float) and not math.isfinite(x):  # 1e999 parses as infinity
            raise BadRequest("a number in the body is out of range: numbers must be finite")
        return x

    return parse


def parse_json(raw: bytes, max_depth: int = MAX_DEPTH):
    """The JSON value in raw: finite numbers of sane length, at most max_depth levels deep."""
    try:
        value = json.loads(
            raw,
            parse_constant=_reject_constant,  # NaN, Infinity, -Infinity
            parse_int=_number(int),  # a 4000-digit integer is refused before int() runs
            parse_float=_number(float),
        )
    except RecursionError:
        raise BadRequest(f"JSON nested too deeply (over {max_depth} levels)") from None
    except json.JSONDecodeError as e:
        raise BadRequest(f"malformed JSON ({e.msg} at line {e.lineno} column {e.colno})") from None
    except (UnicodeDecodeError, ValueError):
        raise BadRequest("malformed JSON (not UTF-8 text)") from None
    _check_depth(value, max_depth)
    return value


def _check_depth(value, max_depth: int) -> None:
    stack = [(value, 1)]
    while stack:
        v, depth = stack.pop()
        if isinstance(v, (list, dict)):
            if depth > max_depth:
                raise BadRequest(f"JSON nested too deeply (over {max_depth} levels)")
            items = v.values() if isinstance(v, dict) else v
            stack.extend((x, depth + 1) for x in items if isinstance(x, (list, dict)))
