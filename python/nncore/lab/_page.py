"""The lab's report page: one self-contained HTML file, `index.html`, built from the finished runs
in a folder of experiment folders (`<folder>/<experiment>/`, as `nncore lab all` writes them).

Per experiment it shows the claim (the module's CLAIM, in the lecture's words, with the papers it
cites linked), the figures (the folder's PNGs, embedded as base64 data URIs: the page fetches
nothing), the table of mean ± spread over seeds and the conclusions with their verdicts (from
report.json), and the run's meta (meta.json: nncore's version, CPU, seeds, wall time). Every text
from the runs is HTML-escaped."""

from __future__ import annotations

import base64
import html
import json
import re
from pathlib import Path

# A link in a claim: a URL, or an arXiv identifier (linked to its abstract page).
_LINK = re.compile(r"https?://[^\s<>\"]*[^\s<>\".,;:)]|arXiv:(\d{4}\.\d{4,5})")
# Where a conclusion states its verdict: after "The lecture's claim (...)", in verdict()'s words
# (batch-size also says for which half the claim held).
_CLAIM_STATED = re.compile(r"The lecture's claim \([^)]*\)")
_VERDICT = re.compile(r"did not hold|could not be judged|held for \w+ only|held")
_VERDICT_CLASS = {"held": "held", "did not hold": "not", "could not be judged": "none"}

_STYLE = """
body { font: 15px/1.5 system-ui, sans-serif; max-width: 1100px; margin: 2em auto;
       padding: 0 1em; color: #222; background: #fff; }
h1 { font-size: 1.6em; } h2 { border-top: 2px solid #ddd; padding-top: 1em; margin-top: 2em; }
blockquote { border-left: 4px solid #4a7bb7; margin: 1em 0; padding: .3em 1em;
             background: #f3f6fa; }
.figures { display: flex; flex-wrap: wrap; gap: 1em; align-items: flex-start; }
figure { margin: 0; } figure img { max-width: 100%; height: auto; }
figcaption { font-size: .85em; color: #555; }
.table { overflow-x: auto; }
table { border-collapse: collapse; font-size: .85em; }
th, td { border: 1px solid #ccc; padding: .25em .5em; text-align: right; white-space: nowrap; }
th { background: #f0f0f0; } td:first-child, th:first-child { text-align: left; }
.note, .meta { font-size: .85em; color: #555; }
.v-held { color: #1a7f37; } .v-not { color: #b42318; } .v-none, .v-partly { color: #9a6700; }
.missing { color: #b42318; }
"""


def claim_of(module) -> str:
    """The experiment's claim: its module's CLAIM, else its docstring's first sentence."""
    claim = getattr(module, "CLAIM", None)
    if claim:
        return str(claim)
    text = " ".join((module.__doc__ or "").split())
    end = re.search(r"[.!?](\s|$)", text)
    return text[:end.end()].strip() if end else text


def _linked(text: str) -> str:
    """text escaped, its URLs and arXiv identifiers made links."""
    parts, start = [], 0
    for match in _LINK.finditer(text):
        parts.append(html.escape(text[start:match.start()]))
        url = (f"https://arxiv.org/abs/{match.group(1)}" if match.group(1) else match.group(0))
        parts.append(f'<a href="{html.escape(url)}">{html.escape(match.group(0))}</a>')
        start = match.end()
    return "".join(parts) + html.escape(text[start:])


def _verdict_class(phrase: str) -> str:
    return _VERDICT_CLASS.get(phrase, "partly")


def verdicts(conclusion: str) -> list[tuple[int, int, str]]:
    """(start, end, phrase) of each verdict a conclusion states after 'The lecture's claim
    (...)'; none when it states no claim."""
    stated = _CLAIM_STATED.search(conclusion)
    if stated is None:
        return []
    return [(m.start(), m.end(), m.group(0))
            for m in _VERDICT.finditer(conclusion, stated.end())]


def _conclusion_html(text: str) -> str:
    parts, start = [], 0
    for begin, end, phrase in verdicts(text):
        parts.append(html.escape(text[start:begin]))
        parts.append(f'<strong class="v-{_verdict_class(phrase)}">{html.escape(phrase)}</strong>')
        start = end
    return "".join(parts) + html.escape(text[start:])


def _tally(conclusions) -> str:
    """'held 2, did not hold 1': how often each verdict was stated (over data sets)."""
    counts: dict = {}
    for conclusion in conclusions:
        for _, _, phrase in verdicts(conclusion):
            counts[phrase] = counts.get(phrase, 0) + 1
    return ", ".join(f'<span class="v-{_verdict_class(p)}">{html.escape(p)} {n}</span>'
                     for p, n in counts.items())


def _table_html(table: dict) -> str:
    if not table.get("rows"):
        return '<p class="note">No finished runs: no table.</p>'
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in table["columns"])
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(v))}</td>" for v in row) + "</tr>"
                   for row in table["rows"])
    return (f'<div class="table"><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody>'
            f'</table></div><p class="note">{html.escape(table.get("note", ""))}</p>')


def _figures_html(folder: Path, name: str) -> str:
    main = f"{name.replace('-', '_')}.png"  # the experiment's own figure first
    pngs = sorted(folder.glob("*.png"), key=lambda p: (p.name != main, p.name))
    out = []
    for png in pngs:
        data = base64.b64encode(png.read_bytes()).decode("ascii")
        label = html.escape(f"{name}: {png.stem.replace('_', ' ')}")
        out.append(f'<figure><img src="data:image/png;base64,{data}" alt="{label}">'
                   f'<figcaption>{html.escape(png.name)}</figcaption></figure>')
    return f'<div class="figures">{"".join(out)}</div>' if out else ""


def _seeds(seeds) -> str:
    seeds = list(seeds or [])
    if not seeds:
        return "—"
    if seeds == list(range(seeds[0], seeds[0] + len(seeds))) and len(seeds) > 1:
        return f"{seeds[0]}–{seeds[-1]} ({len(seeds)} seeds)"
    return ", ".join(map(str, seeds))


def _meta_html(meta: dict) -> str:
    build = meta.get("build_info") or {}
    items = {
        "nncore": f"{meta.get('nncore_version', '?')}"
                  + (f" ({build.get('march')}, {build.get('float_kernel')})" if build else ""),
        "CPU": f"{meta.get('cpu', '?')}, {meta.get('cpus', '?')} cores",
        "Python": meta.get("python", "?"),
        "seeds": _seeds(meta.get("seeds")),
        "quick": "yes" if meta.get("quick") else "no",
        "parallel fits": meta.get("n_jobs", 1),
        "runs finished": f"{meta.get('runs_finished', '?')}"
                         + (" (interrupted by Ctrl-C)" if meta.get("interrupted") else ""),
        "wall time": f"{float(meta.get('wall_seconds', 0)):.1f} s",
        "command": meta.get("command", "?"),
    }
    return '<p class="meta">' + "; ".join(
        f"<b>{html.escape(k)}</b> {html.escape(str(v))}" for k, v in items.items()) + "</p>"


def _section(folder: Path, name: str, module) -> tuple[str, str]:
    """The experiment's section and its line in the contents."""
    anchor = html.escape(name)
    claim = claim_of(module) if module is not None else ""
    report_file = folder / name / "report.json"
    if not report_file.is_file():
        text = (f'<section id="{anchor}"><h2>{anchor}</h2><blockquote>{_linked(claim)}'
                f'</blockquote><p class="missing">Not run: no finished run in '
                f'{html.escape(name)}/ (nncore lab {anchor} --out {html.escape(str(folder))}/'
                f'{anchor}).</p></section>')
        return text, f'<li><a href="#{anchor}">{anchor}</a>: not run</li>'
    report = json.loads(report_file.read_text())
    meta_file = folder / name / "meta.json"
    meta = json.loads(meta_file.read_text()) if meta_file.is_file() else {}
    conclusions = report.get("conclusions", [])
    description = getattr(module, "DESCRIPTION", "")
    text = (f'<section id="{anchor}"><h2>{anchor}</h2>'
            + (f"<p>{html.escape(description)}</p>" if description else "")
            + (f"<blockquote>{_linked(claim)}</blockquote>" if claim else "")
            + f"<h3>{html.escape(report.get('title', name))}</h3>"
            + _figures_html(folder / name, name) + _table_html(report.get("table", {}))
            + "".join(f"<h3>{html.escape(heading)}</h3>" + _table_html(table)
                      for heading, table in report.get("tables", {}).items())
            + "<h3>Verdict</h3>"
            + ('<p class="missing">A quick run (fewer epochs, settings and data sets: what the '
               "tests run): its verdict is not the experiment's.</p>" if meta.get("quick") else "")
            + "<ul>"
            + "".join(f"<li>{_conclusion_html(c)}</li>" for c in conclusions) + "</ul>"
            + _meta_html(meta) + "</section>")
    tally = _tally(conclusions)
    return text, (f'<li><a href="#{anchor}">{anchor}</a>'
                  + (f" — verdicts over its data sets: {tally}" if tally else "") + "</li>")


def write_page(folder) -> Path:
    """Write ``folder/index.html``: one self-contained page of every experiment's finished run.

    The experiments appear in ``nncore.lab.EXPERIMENTS`` order (those not run are listed as
    such), then any other experiment folder holding a ``report.json``.

    Parameters
    ----------
    folder : str or path-like
        The folder holding one folder per experiment (``folder/<experiment>/``, each with the
        ``report.json``, ``meta.json`` and PNG figures an experiment writes).

    Returns
    -------
    pathlib.Path
        The page written, ``folder/index.html``.
    """
    from . import _MODULES

    folder = Path(folder)
    others = sorted(p.parent.name for p in folder.glob("*/report.json")
                    if p.parent.name not in _MODULES)
    names = list(_MODULES) + others
    if not any((folder / name / "report.json").is_file() for name in names):
        raise FileNotFoundError(f"no finished lab runs in {folder}: no <experiment>/report.json")
    sections, contents = zip(*(_section(folder, name, _MODULES.get(name)) for name in names))
    from .._version import __version__

    page = ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            "<link rel=\"icon\" href=\"data:,\">"  # no favicon request
            "<title>The lecture, measured: nncore lab</title>"
            f"<style>{_STYLE}</style></head><body>"
            "<h1>The lecture, measured: nncore lab</h1>"
            "<p>Each claim of the lecture as one experiment over seeds: the claim, the figures, "
            "the table of mean ± standard deviation over seeds and what it concludes (page "
            f"by nncore {html.escape(__version__)}; each run's own version, CPU, seeds and "
            "time are under its section).</p>"
            f"<ul>{''.join(contents)}</ul>{''.join(sections)}</body></html>\n")
    target = folder / "index.html"
    target.write_text(page, encoding="utf-8")
    return target
