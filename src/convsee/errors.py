"""The one exception type for errors a user can cause (bad file, bad flag, bad request).

The CLI prints its message and exits non-zero; the web server turns it into a 4xx.
Anything else that escapes is a bug in convsee.
"""

import os

__all__ = ["ConvseeError", "no_file"]


class ConvseeError(Exception):
    """A user-caused error whose message is meant to be read as is."""


def no_file(path, missing: str = ": no such file") -> str:
    """Why path is not a file to read, for a message that starts with its name: a folder
    ("is a folder, not a file") or nothing there (missing)."""
    return " is a folder, not a file" if os.path.isdir(path) else missing
