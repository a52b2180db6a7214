"""The lab's report page: `nncore lab all --quick` writes one self-contained index.html (every
figure embedded as a data URI, nothing fetched) with each experiment's claim, figures, table,
verdict and meta; `nncore lab report DIR` rebuilds the same page; every text is escaped; and a
real browser (headless Chromium through Selenium) opens it without console errors, loads every
image and draws a page that is not blank."""

import base64
import html
import io
import json
import shutil
import types
from html.parser import HTMLParser

import numpy as np
import pandas as pd
import pytest

import nncore
from nncore import lab
from nncore.cli import main
from nncore.lab import _page

SEEDS = 2


class _Page(HTMLParser):
    """Every tag's attributes, the text of each section's blockquote (the claim), its table's
    cells and its list items (the conclusions)."""

    def __init__(self, text):
        super().__init__()
        self.tags: list = []  # (tag, attributes)
        self.sections: dict = {}
        self._section = None
        self._open: list = []  # the tags whose text is being collected
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        self.tags.append((tag, attributes))
        if tag == "section":
            self._section = self.sections.setdefault(
                attributes["id"], {"claim": "", "cells": [], "items": [], "text": ""})
        elif tag in ("blockquote", "th", "td", "li"):
            self._open.append(tag)
            if self._section is not None and tag in ("th", "td"):
                self._section["cells"].append("")
            if self._section is not None and tag == "li":
                self._section["items"].append("")

    def handle_endtag(self, tag):
        if self._open and self._open[-1] == tag:
            self._open.pop()
        if tag == "section":
            self._section = None

    def handle_data(self, data):
        if self._section is None:
            return
        self._section["text"] += data
        if not self._open:
            return
        tag = self._open[-1]
        if tag == "blockquote":
            self._section["claim"] += data
        elif tag in ("th", "td"):
            self._section["cells"][-1] += data
        elif tag == "li":
            self._section["items"][-1] += data


@pytest.fixture(scope="module")
def ran(tmp_path_factory):
    """`nncore lab all --quick` into a fresh folder: (folder, the page's text)."""
    folder = tmp_path_factory.mktemp("lab-all")
    assert main(["lab", "all", "--quick", "--seeds", str(SEEDS), "--no-progress",
                 "--out", str(folder)]) == 0
    return folder, (folder / "index.html").read_text(encoding="utf-8")


def test_the_page_is_self_contained_and_embeds_every_figure(ran):
    folder, text = ran
    page = _Page(text)
    for tag, attributes in page.tags:
        assert tag not in ("script", "iframe", "object", "embed"), tag
        if "src" in attributes:
            assert attributes["src"].startswith("data:"), (tag, attributes["src"][:60])
        if tag == "link":  # the icon only, as a data URI: no stylesheet fetched
            assert attributes["href"].startswith("data:"), attributes
    assert "@import" not in text and "url(" not in text
    # every PNG the experiments wrote is on the page, byte for byte, and nothing else
    embedded = sorted(base64.b64decode(a["src"].split(",", 1)[1])
                      for tag, a in page.tags if tag == "img")
    assert all(a["src"].startswith("data:image/png;base64,") for tag, a in page.tags
               if tag == "img")
    written = sorted(png.read_bytes() for png in folder.glob("*/*.png"))
    assert len(written) >= len(lab.EXPERIMENTS) and embedded == written


def test_each_experiment_has_its_claim_table_verdict_and_meta_in_order(ran):
    folder, text = ran
    page = _Page(text)
    assert list(page.sections) == list(lab.EXPERIMENTS)
    for name in lab.EXPERIMENTS:
        section = page.sections[name]
        assert " ".join(section["claim"].split()) == " ".join(lab.CLAIMS[name].split())
        report = json.loads((folder / name / "report.json").read_text())
        cells = []  # the summary table's, then each shown table's (sharpness-measures' τ)
        for table in [report["table"], *report.get("tables", {}).values()]:
            cells += table["columns"] + [cell for row in table["rows"] for cell in row]
        assert section["cells"] == cells
        assert section["items"] == report["conclusions"]
        assert any(v in item for item in section["items"] for v in ("held", "did not hold"))
        meta = json.loads((folder / name / "meta.json").read_text())
        assert meta["command"] == f"nncore lab all --quick --seeds {SEEDS} --no-progress " \
                                  f"--out {folder}"
        for shown in (f"nncore {nncore.__version__}", meta["cpu"],
                      f"0–{SEEDS - 1} ({SEEDS} seeds)", f"wall time {meta['wall_seconds']:.1f} s",
                      "quick yes"):
            assert " ".join(shown.split()) in " ".join(section["text"].split()), (name, shown)
    shown = json.loads((folder / "sharpness-measures" / "report.json").read_text())["tables"]
    assert len(shown) == 2 and all(table["rows"] for table in shown.values())
    # the table is the runs' own numbers: zero-init's mean and spread of the training loss per
    # initialisation, from runs.csv
    runs = pd.read_csv(folder / "zero-init" / "runs.csv")
    cells = page.sections["zero-init"]["cells"]
    width = len(json.loads((folder / "zero-init" / "report.json").read_text())["table"]["columns"])
    table = pd.DataFrame([cells[i:i + width] for i in range(width, len(cells), width)],
                         columns=cells[:width])
    assert sorted(table["init"]) == sorted(set(runs["init"]))
    for init, group in runs.groupby("init"):
        shown = table.loc[table["init"] == init, "train_loss"].item()
        loss = group["train_loss"]
        assert len(loss) == SEEDS and shown == f"{loss.mean():.3g} ± {loss.std(ddof=1):.2g}"


def test_lab_report_rebuilds_the_same_page(ran, capsys):
    folder, text = ran
    (folder / "index.html").unlink()
    assert main(["lab", "report", str(folder)]) == 0
    assert "index.html" in capsys.readouterr().out
    assert (folder / "index.html").read_text(encoding="utf-8") == text


def test_every_text_is_escaped_and_missing_experiments_are_named(tmp_path, capsys):
    hostile = "<script>alert('x')</script> & <img src=x onerror=alert(1)>"
    own = tmp_path / "my-experiment"
    own.mkdir()
    (own / "report.json").write_text(json.dumps({
        "title": hostile, "conclusions": [f"{hostile}. The lecture's claim (a < b) held."],
        "table": {"columns": ["setting", hostile], "rows": [[hostile, "1 ± 0"]], "note": ""}}))
    (own / "meta.json").write_text(json.dumps({"command": hostile, "cpu": hostile,
                                               "seeds": [0], "wall_seconds": 1.0}))
    text = _page.write_page(tmp_path).read_text(encoding="utf-8")
    assert "<script" not in text and "<img src=x" not in text
    assert text.count(html.escape(hostile)) == 6  # title, cell ×2, conclusion, command, CPU
    sections = _Page(text).sections
    assert list(sections) == list(lab.EXPERIMENTS) + ["my-experiment"]
    assert "Not run" in sections["zero-init"]["text"]
    assert main(["lab", "report", str(tmp_path / "empty")]) == 2
    assert "no finished lab runs" in capsys.readouterr().err


def test_claims_fall_back_to_the_docstring_and_link_their_papers():
    module = types.ModuleType("new_experiment", "new-thing — wide minima help. More text. Yes.")
    assert _page.claim_of(module) == "new-thing — wide minima help."
    module.CLAIM = "Sharp minima hurt (Keskar et al. 2017, arXiv:1609.04836; https://x.org/a)."
    assert _page.claim_of(module) == module.CLAIM
    linked = _page._linked(module.CLAIM)
    assert '<a href="https://arxiv.org/abs/1609.04836">arXiv:1609.04836</a>' in linked
    assert '<a href="https://x.org/a">https://x.org/a</a>).' in linked
    for name, claim in lab.CLAIMS.items():
        assert claim == lab._MODULES[name].CLAIM


def test_verdicts_are_read_after_the_claim_only():
    def phrases(sentence):
        return [phrase for _, _, phrase in _page.verdicts(sentence)]

    assert phrases("d: 3 held up. The lecture's claim (x helps) held on d.") == ["held"]
    assert phrases("The lecture's claim (x) held for the training loss and did not hold for "
                   "the test accuracy.") == ["held", "did not hold"]
    assert phrases("The lecture's claim (x) held for flatness only: the rest.") == \
        ["held for flatness only"]
    assert phrases("d: 2 run(s) missed the target and are left out") == []


# ---------------------------------------------------------------------------------------------
# In a real browser


def _browser():
    """A headless Chromium through Selenium, or the reason there is none."""
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        return None, "selenium is not installed (pip install -r requirements-test.txt)"
    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    if binary is None or driver is None:
        return None, ("Chromium and its driver are not installed (Debian: apt-get install "
                      "chromium chromium-driver)")
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                     "--disable-gpu", "--window-size=1200,900"):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service(driver), options=options), None


def _look_at(browser, path):
    """Open the page: (console errors, images not loaded, distinct colours of a screenshot)."""
    from PIL import Image

    browser.get(path.as_uri())
    errors = [e["message"] for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    broken = browser.execute_script(
        "return Array.from(document.images).filter(i => !i.complete || i.naturalWidth === 0)"
        ".map(i => i.alt);")
    count = browser.execute_script("return document.images.length;")
    shot = np.asarray(Image.open(io.BytesIO(browser.get_screenshot_as_png())).convert("RGB"))
    return errors, broken, count, len(np.unique(shot.reshape(-1, 3), axis=0))


def test_a_browser_opens_the_page_loads_every_image_and_logs_no_error(ran, tmp_path):
    browser, reason = _browser()
    if browser is None:
        pytest.skip(reason)
    folder, text = ran
    try:
        errors, broken, count, colours = _look_at(browser, folder / "index.html")
        assert errors == [] and broken == []
        assert count == len(list(folder.glob("*/*.png")))
        assert colours > 10, "the screenshot is (nearly) blank"
        # The same checks catch a broken page: an image that does not decode and a script error.
        spoiled = text.replace("data:image/png;base64,", "data:image/png;base64,AAAA", 1)
        spoiled = spoiled.replace("</body>", "<script>undefinedFunction()</script></body>")
        (tmp_path / "spoiled.html").write_text(spoiled, encoding="utf-8")
        errors, broken, count, _ = _look_at(browser, tmp_path / "spoiled.html")
        assert len(broken) == 1 and any("undefinedFunction" in e for e in errors)
        (tmp_path / "blank.html").write_text("<!DOCTYPE html><html><body></body></html>")
        assert _look_at(browser, tmp_path / "blank.html")[3] == 1
    finally:
        browser.quit()


def test_lab_help_lists_every_experiment_and_all_and_report(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["lab", "--help"])
    assert exit_.value.code == 0
    listed = capsys.readouterr().out
    for name, description in {**lab.DESCRIPTIONS, "all": "every", "report": "rebuild"}.items():
        assert any(line.split()[:1] == [name] and description.split()[0] in line
                   for line in listed.splitlines()), name
    with pytest.raises(SystemExit):
        main(["lab", "batch-size", "--help"])
    assert "--protocol" in capsys.readouterr().out  # an experiment's options, as before


def test_ctrl_c_in_lab_all_keeps_what_finished_skips_the_rest_and_writes_the_page(
        tmp_path, monkeypatch, capsys):
    scaling = lab.EXPERIMENTS["scaling"]

    def interrupted(**options):  # scaling, as if Ctrl-C had stopped it after its last fit
        result = scaling(**options)
        result.interrupted = True
        return result

    monkeypatch.setitem(lab.EXPERIMENTS, "scaling", interrupted)
    assert main(["lab", "all", "--quick", "--seeds", "1", "--no-progress",
                 "--out", str(tmp_path)]) == 130
    assert "interrupted" in capsys.readouterr().err
    assert sorted(p.parent.name for p in tmp_path.glob("*/report.json")) == ["scaling",
                                                                             "zero-init"]
    sections = _Page((tmp_path / "index.html").read_text(encoding="utf-8")).sections
    assert "Not run" in sections["batch-size"]["text"]
    assert "Not run" not in sections["scaling"]["text"]
