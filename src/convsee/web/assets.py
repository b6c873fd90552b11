"""The page's own files (web/static and its subfolders), served with the types a browser needs.

The page is ES modules (`<script type="module">`): a browser runs a module script only when
its Content-Type is a JavaScript type, and with `X-Content-Type-Options: nosniff` (guard.py)
it checks the stylesheet's type too. Starlette guesses the type from the file name with
`mimetypes`, which reads the machine's tables (/etc/mime.types, the Windows registry) and so
may answer `text/plain` for `.js`; the page's own kinds of file get their type from here.
"""

from __future__ import annotations

from pathlib import Path

from starlette.responses import FileResponse, Response
from starlette.staticfiles import StaticFiles

__all__ = ["PageFiles", "MEDIA_TYPES"]

MEDIA_TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".html": "text/html; charset=utf-8",
}


class PageFiles(StaticFiles):
    """StaticFiles with MEDIA_TYPES for the page's files (any other: as Starlette guesses)."""

    def file_response(self, full_path, stat_result, scope, status_code: int = 200) -> Response:
        response = super().file_response(full_path, stat_result, scope, status_code)
        media = MEDIA_TYPES.get(Path(full_path).suffix.lower())
        if media and isinstance(response, FileResponse):  # not a 304: it has no body type
            response.headers["content-type"] = media
        return response
