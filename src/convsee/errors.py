"""The one exception type for errors a user can cause (bad file, bad value, bad request).

The CLI prints its message and exits non-zero; the web server turns it into a 4xx.
Anything else that escapes is a bug in convsee.

An error caused by one parameter says which (`param`, its Python name: "input_size"), and
its message speaks of the parameter, never of a flag or a JSON key: a message may hold
`{param}` where the parameter's name goes. Each front end names the parameter in its own
words with one table (cli/errors.py: flags; web: JSON keys), as click's param_hint does::

    e = ConvseeError("{param} takes C,H,W such as 3,224,224", param="input_size")
    str(e)                   # 'input_size takes C,H,W such as 3,224,224'
    e.render("--input-size")  # '--input-size takes C,H,W such as 3,224,224'
"""

import os

__all__ = ["ConvseeError", "first_line", "no_file"]


class ConvseeError(Exception):
    """A user-caused error whose message is meant to be read as is.

    param: the parameter at fault (its Python name), or None. A message without `{param}`
    is shown after the parameter's name ("input_size: ...")."""

    def __init__(self, message: str, param: str | None = None):
        super().__init__(message)
        self.template = str(message)
        self.param = param

    def render(self, name: str | None = None) -> str:
        """The message with the parameter called name (default: its Python name)."""
        if self.param is None:
            return self.template
        name = name or self.param
        if "{param}" in self.template:
            return self.template.replace("{param}", name)
        return f"{name}: {self.template}"

    def __str__(self) -> str:
        return self.render()


def no_file(path, missing: str = ": no such file") -> str:
    """Why path is not a file to read, for a message that starts with its name: a folder
    ("is a folder, not a file") or nothing there (missing)."""
    return " is a folder, not a file" if os.path.isdir(path) else missing


def first_line(e: BaseException, limit: int = 300) -> str:
    """The first line of an exception's message (its type's name when it has none), cut to
    limit characters: what a one-line error says of a failure in the user's code."""
    text = str(e).strip()
    return (text.splitlines()[0] if text else type(e).__name__)[:limit]
