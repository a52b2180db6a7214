"""The README's and the documentation pages' Python examples run as written."""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent
README = ROOT / "README.md"
DOCS = ROOT / "docs"


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_readme_python_examples_run(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the examples write files
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)
    assert blocks
    namespace = {}
    for block in blocks:
        exec(compile(block, str(README), "exec"), namespace)


def _rst_python_blocks(text: str) -> list[str]:
    """The bodies of a reST page's ``.. code-block:: python`` directives, unindented."""
    blocks = []
    for match in re.finditer(r"^\.\. code-block:: python\n\n((?:(?:   .*)?\n)+)", text, re.M):
        lines = match.group(1).rstrip("\n").split("\n")
        blocks.append("\n".join(line[3:] for line in lines) + "\n")
    return blocks


PAGES = sorted(page.name for page in DOCS.glob("*.rst") if ".. code-block:: python" in
               page.read_text())


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize("page", PAGES)
def test_documentation_python_examples_run(page, tmp_path, monkeypatch):
    """Each page's examples run in order, in one namespace per page (a later example may use
    what an earlier one on the same page defined)."""
    monkeypatch.chdir(tmp_path)
    path = DOCS / page
    blocks = _rst_python_blocks(path.read_text())
    assert blocks
    namespace = {}
    for block in blocks:
        exec(compile(block, str(path), "exec"), namespace)
