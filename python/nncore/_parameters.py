"""Errors whose remedy names a parameter of the call. A Python caller passed `impute=...`, a
command-line user typed `--impute ...`: the library words a message once, with placeholders for
the parameters it names, and each caller reads it in its own terms — str() in Python's
(`impute='mean'|'median'`), `ParameterError.spelled(flags)` in a command line's, given that
command line's table of parameter → flag."""

from __future__ import annotations

from typing import NamedTuple


class Mention(NamedTuple):
    """A parameter named in a message, with the value suggested for it (if any) as a Python
    caller writes it and as it is typed on a command line; `call` is what a Python caller passes
    it to and `command` the command line that takes it, when the message points elsewhere."""

    parameter: str
    python: str = ""
    typed: str = ""
    call: str = ""
    command: str = ""

    def spelled(self, flags: dict | None = None) -> str:
        """As a Python keyword, or as the option of `flags` (parameter → flag; a parameter the
        command line has no flag for stays a keyword)."""
        if flags is None or self.parameter not in flags:
            keyword = f"{self.parameter}={self.python}" if self.python else self.parameter
            return f"{self.call}({keyword})" if self.call else keyword
        option = f"{flags[self.parameter]} {self.typed}" if self.typed else flags[self.parameter]
        return f"{self.command} {option}" if self.command else option


class ParameterError(ValueError):
    """A ValueError whose message names parameters: `template` holds {key} where each mention
    goes (keys of `mentions`); str() spells them as Python keywords."""

    def __init__(self, template: str, mentions: dict | None = None):
        self.template = template
        self.mentions = dict(mentions or {})
        super().__init__(self.spelled())

    def spelled(self, flags: dict | None = None) -> str:
        """The message with each mention as a Python keyword, or with flags (parameter → flag)
        as that command line's option."""
        text = self.template
        for key, mention in self.mentions.items():
            text = text.replace("{" + key + "}", mention.spelled(flags))
        return text

    def __reduce__(self):  # pickled whole: errors of fits in other processes keep their mentions
        return type(self), (self.template, self.mentions)
