"""The one exception type for errors a user can cause (bad file, bad flag, bad request).

The CLI prints its message and exits non-zero; the web server turns it into a 4xx.
Anything else that escapes is a bug in convsee.
"""

__all__ = ["ConvseeError"]


class ConvseeError(Exception):
    """A user-caused error whose message is meant to be read as is."""
