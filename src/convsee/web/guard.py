"""Checks at the HTTP layer, before any route runs: who may talk to the server, and how.

- Host: by default only Host headers naming loopback are answered (localhost, *.localhost,
  127.0.0.0/8, [::1]; any port, so an SSH tunnel works). A page on another site can point its
  own domain at 127.0.0.1 (DNS rebinding); its requests then carry that domain in Host and
  are refused. Served on the network (`any_host`), every Host is answered.
- Cross-site requests: no API call (GET or POST: every one computes) and no POST may come
  from another origin (the Origin header, when the browser sends one, must name the Host it
  was sent to; Sec-Fetch-Site must not say cross-site), and the API takes only
  `Content-Type: application/json`, which a page on another site cannot send without a
  CORS preflight that this server never grants.
- Every response carries headers that stop other sites framing the page or reading its
  resources, and a Content-Security-Policy that runs only the page's own script files.

The payload code behind it can change freely; these hold for any route.
"""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

from starlette.datastructures import Headers
from starlette.responses import JSONResponse

__all__ = ["RequestGuard", "is_loopback_host", "split_host", "SECURITY_HEADERS"]

SAFE_METHODS = ("GET", "HEAD", "OPTIONS")
SECURITY_HEADERS = {
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
    "cross-origin-resource-policy": "same-origin",
    # Scripts only from the server's own files: markup injected into the page (say a class
    # name from a checkpoint's metadata) cannot run inline handlers. 'unsafe-eval' is for
    # browser automation (Playwright polls with eval); the page itself never evaluates text.
    "content-security-policy": (
        "default-src 'self'; script-src 'self' 'unsafe-eval'; img-src 'self' data: blob:; "
        "style-src 'self' 'unsafe-inline'; object-src 'none'; base-uri 'none'; "
        "form-action 'none'; frame-ancestors 'none'"
    ),
}
_RAW_SECURITY_HEADERS = [(k.encode(), v.encode()) for k, v in SECURITY_HEADERS.items()]


def split_host(value: str) -> tuple[str, int | None] | None:
    """(host, port) from a Host header value ("name", "name:port", "[v6]:port"), lowercased;
    None when it is not one."""
    if value.startswith("["):
        end = value.find("]")
        if end < 0:
            return None
        host, rest = value[1:end], value[end + 1 :]
        if rest and not rest.startswith(":"):
            return None
        port = rest[1:] if rest else None
        try:
            if ipaddress.ip_address(host).version != 6:
                return None
        except ValueError:
            return None
    else:
        host, sep, port = value.partition(":")
        port = port if sep else None
    if not host or not host.isascii():
        return None
    if port is not None:
        if not (port.isascii() and port.isdigit() and len(port) <= 5 and int(port) <= 65535):
            return None
    return host.lower(), None if port is None else int(port)


def is_loopback_host(value: str) -> bool:
    """Whether a Host header value names this machine's loopback interface."""
    parsed = split_host(value)
    if parsed is None:
        return False
    host = parsed[0].removesuffix(".")
    if host == "localhost" or host.endswith(".localhost"):  # RFC 6761: always loopback
        return True
    try:
        addr = ipaddress.ip_address(host)
    except ValueError:
        return False  # any other name could be re-pointed by its owner (DNS rebinding)
    mapped = getattr(addr, "ipv4_mapped", None)
    return addr.is_loopback or (mapped is not None and mapped.is_loopback)


def _same_origin(origin: str, host: str) -> bool:
    try:
        parts = urlsplit(origin)
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and parts.netloc.lower() == host.lower()


class RequestGuard:
    """ASGI middleware: the checks above; a refused request gets a 4xx JSON error."""

    def __init__(self, app, *, any_host: bool = False, json_prefix: str = "/api/"):
        self.app = app
        self.any_host = any_host  # served on the network: answer every Host
        self.json_prefix = json_prefix  # unsafe methods under it must send JSON

    def problem(self, scope) -> tuple[int, str] | None:
        """(status, message) when the request is refused, else None."""
        headers = Headers(scope=scope)
        host = headers.get("host")
        if not self.any_host and (host is None or not is_loopback_host(host)):
            return 400, (
                "this server answers only requests addressed to localhost "
                "(the Host header names another host)"
            )
        api = scope["path"].startswith(self.json_prefix)
        safe = scope.get("method", "GET") in SAFE_METHODS
        if safe and not api:  # the page and its files: any site may link to them
            return None
        # every API call, GET included, computes something (/api/views starts background
        # work): none may come from a page on another site
        origin = headers.get("origin")
        if origin is not None and (host is None or not _same_origin(origin, host)):
            return 403, "cross-origin requests are refused"
        if headers.get("sec-fetch-site") == "cross-site":
            return 403, "cross-site requests are refused"
        if safe:
            return None
        if api:
            media = headers.get("content-type", "").split(";", 1)[0].strip().lower()
            if media != "application/json":
                return 415, "send the body as JSON, with Content-Type: application/json"
        return None

    async def __call__(self, scope, receive, send):
        if scope["type"] == "lifespan":
            await self.app(scope, receive, send)
            return
        if scope["type"] != "http":  # no websockets here
            if scope["type"] == "websocket":
                await send({"type": "websocket.close", "code": 1008})
            return
        refused = self.problem(scope)
        if refused is not None:
            status, message = refused
            response = JSONResponse({"error": message}, status, headers=SECURITY_HEADERS)
            await response(scope, receive, send)
            return

        async def send_with_headers(message):
            if message["type"] == "http.response.start":
                names = {k.lower() for k, _ in message.get("headers", [])}
                extra = [(k, v) for k, v in _RAW_SECURITY_HEADERS if k not in names]
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        await self.app(scope, receive, send_with_headers)
