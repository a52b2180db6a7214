"""Docstring pieces written once: a parameter that several public functions or classes take is
documented in one place and put into each of their numpydoc docstrings at import time, so that
`help()`, Sphinx and numpydoc's checks all see it where it belongs."""

from __future__ import annotations

import re
import textwrap


def with_shared_docs(**pieces):
    """A decorator: each line of the decorated object's docstring that holds only ``{name}``
    becomes ``pieces[name]`` (numpydoc text written from column 0), indented as that line is."""

    def fill(line_match):
        indent, name = line_match.group(1), line_match.group(2)
        text = textwrap.dedent(pieces[name]).strip("\n")
        return "\n".join(indent + line if line else "" for line in text.split("\n"))

    def decorate(documented):
        documented.__doc__ = re.sub(r"^([ \t]*)\{(\w+)\}[ \t]*$", fill, documented.__doc__,
                                    flags=re.M)
        return documented

    return decorate
