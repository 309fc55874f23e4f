"""The committee's HTML report as a reader sees it: rendered by a real browser (headless Chromium).

The release is built here by hand (a 1-D hierarchy, a 2-D table with an empty combination, a ratio
table), so the test does not depend on the demo. Two browser runs per language:

1. the report with a small measuring script appended (it removes itself and runs on load), dumped
   with --dump-dom and console logging: the parsed DOM must hold every table and chart, no script
   of the report's own may appear (labels are hostile), the console must stay silent, and the
   browser's own layout says whether any chart text is clipped, whether a table needs horizontal
   scrolling at a normal window width and whether the page referred to or fetched anything;
2. a screenshot of the untouched report, saved under tests/artifacts/ for a person to look at.

Chromium comes from Debian's `chromium` package; the test installs it when it is missing and it runs
as root, and is skipped with the reason otherwise.
"""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import struct
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest

from aggregator.compare import compare_protocols, write_comparison
from aggregator.release import Release, ReleasedCell, ReleasedTable
from aggregator.release.html import render_report
from support.lab import JAN, PROTOCOL, Lab, four_companies

ARTIFACTS = Path(__file__).parent / "artifacts"
WINDOW_WIDTH = 1280
MAX_SCREENSHOT_HEIGHT = 12000
EVIL = '<script>alert("x")</script>=HYPERLINK("http://evil")'
BASE_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
    # Nothing may be fetched: any host lookup fails, so a stray external asset shows up as missing.
    "--host-resolver-rules=MAP * ~NOTFOUND",
]


# ---------------------------------------------------------------- chromium


def _install_chromium() -> str:
    """Install Debian's chromium; return '' on success or the reason it could not be installed."""
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "chromium"]
    for attempt in (install, ["apt-get", "update"], install):
        result = subprocess.run(attempt, capture_output=True, text=True, env=env, timeout=900, check=False)
        if attempt is install and result.returncode == 0:
            return ""
    return f"`apt-get install chromium` failed: {result.stderr.strip()[-300:]}"


@pytest.fixture(scope="module")
def chromium() -> str:
    found = shutil.which("chromium")
    if found:
        return found
    if os.name != "posix" or os.geteuid() != 0 or not shutil.which("apt-get"):
        pytest.skip("chromium is not installed and cannot be installed here (needs root and apt-get)")
    reason = _install_chromium()
    found = shutil.which("chromium")
    if not found:
        pytest.skip(f"chromium could not be installed: {reason or 'no chromium binary after install'}")
    return found


def run_chromium(binary: str, profile: Path, page: Path, *extra: str) -> subprocess.CompletedProcess:
    command = [binary, *BASE_FLAGS, f"--user-data-dir={profile}", *extra, page.as_uri()]
    result = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, f"chromium failed ({result.returncode}): {result.stderr[-2000:]}"
    return result


# ---------------------------------------------------------------- the release


def cell(codes, labels, depths, value, status="published") -> ReleasedCell:
    return ReleasedCell(tuple(codes), tuple(labels), tuple(depths), value, status)


def companies_table(lang: str) -> ReleasedTable:
    """World -> region -> country, with hidden countries and a hostile label."""
    nl = lang == "nl"
    rows = [
        ("W", "Wereld" if nl else "World", 0, 61),
        ("150", "Europa" if nl else "Europe", 1, 24),
        ("PT", "Portugal", 2, 11),
        ("IT", "Italië" if nl else "Italy", 2, 9),
        ("RO", "Roemenië" if nl else "Romania", 2, None),
        ("BG", EVIL, 2, None),
        ("142", "Azië" if nl else "Asia", 1, 52),
        ("BD", "Bangladesh", 2, 31),
        ("CN", "China", 2, 28),
        ("IN", "India", 2, 17),
        ("KH", "Cambodja" if nl else "Cambodia", 2, None),
        ("MM", "Myanmar", 2, None),
        ("002", "Afrika" if nl else "Africa", 1, 7),
        ("ET", "Ethiopië" if nl else "Ethiopia", 2, None),
        ("MA", "Marokko" if nl else "Morocco", 2, 5),
    ]
    cells = [cell([c], [label], [d], v, "published" if v is not None else "primary") for c, label, d, v in rows]
    return ReleasedTable(
        "companies_per_country",
        "Bedrijven die inkopen per land" if nl else "Companies sourcing per country",
        "bedrijven" if nl else "companies",
        ("country",),
        ("Land" if nl else "Country",),
        "companies",
        cells,
        footnote="Een bedrijf telt in elke regio één keer." if nl else "A company counts once per region.",
    )


THEMES = {
    "nl": [
        ("T", "Alle thema's", 0),
        ("human_rights", "Mensenrechten", 1),
        ("child_labour", "Kinderarbeid", 2),
        ("forced_labour", "Dwangarbeid", 2),
        ("labour_conditions", "Arbeidsomstandigheden", 1),
        ("living_wage", "Leefbaar loon", 2),
        ("health_safety", "Gezondheid en veiligheid", 2),
    ],
    "en": [
        ("T", "All themes", 0),
        ("human_rights", "Human rights", 1),
        ("child_labour", "Child labour", 2),
        ("forced_labour", "Forced labour", 2),
        ("labour_conditions", "Labour conditions", 1),
        ("living_wage", "Living wage", 2),
        ("health_safety", "Health and safety", 2),
    ],
}
REGIONS = {
    "nl": [("W", "Wereld", 0), ("150", "Europa", 1), ("142", "Azië", 1), ("002", "Afrika", 1)],
    "en": [("W", "World", 0), ("150", "Europe", 1), ("142", "Asia", 1), ("002", "Africa", 1)],
}
HIDDEN = {("forced_labour", "002"), ("forced_labour", "150"), ("health_safety", "002"), ("health_safety", "150")}
ABSENT = {("child_labour", "150")}  # no company reported it: not a cell at all


def risks_table(lang: str) -> ReleasedTable:
    """Theme groups -> themes x regions, with hidden cells and one combination without any data."""
    cells = []
    for t, (tcode, tlabel, tdepth) in enumerate(THEMES[lang]):
        for r, (rcode, rlabel, rdepth) in enumerate(REGIONS[lang]):
            if (tcode, rcode) in ABSENT:
                continue
            value = None if (tcode, rcode) in HIDDEN else float(40 - 3 * t - 5 * r)
            status = "published" if value is not None else "secondary"
            cells.append(cell([tcode, rcode], [tlabel, rlabel], [tdepth, rdepth], value, status))
    return ReleasedTable(
        "risks_by_theme_region",
        "Bedrijven die een risico vonden, per thema en regio" if lang == "nl" else "Risks by theme and region",
        "bedrijven" if lang == "nl" else "companies",
        ("theme", "region"),
        ("Thema", "Regio") if lang == "nl" else ("Theme", "Region"),
        "companies",
        cells,
    )


def ratio_table(lang: str) -> ReleasedTable:
    nl = lang == "nl"
    cells = [
        cell(["W"], ["Wereld" if nl else "World"], [0], 0.8712),
        cell(["150"], ["Europa" if nl else "Europe"], [1], 1.0421),
        cell(["142"], ["Azië" if nl else "Asia"], [1], 0.7634),
        cell(["002"], ["Afrika" if nl else "Africa"], [1], None, "secondary"),
    ]
    return ReleasedTable(
        "living_wage_ratio_by_region",
        "Betaald loon als deel van het leefbaar loon, per regio" if nl else "Wage paid as a share of the living wage",
        "verhouding" if nl else "ratio",
        ("region",),
        ("Regio" if nl else "Region",),
        "ratio",
        cells,
        decimals=2,
    )


def make_release(lang: str) -> Release:
    return Release(
        covenant_id="textile",
        covenant_name="Convenant Duurzame Kleding en Textiel" if lang == "nl" else "Garments and Textile",
        period="2025-03",
        audience_id="monitoring_committee",
        audience_name="Monitoringscommissie" if lang == "nl" else "Monitoring committee",
        language=lang,
        protocol_version="2026.1",
        protocol_sha256="ab" * 32,
        code_version="0.1.0",
        created="2025-07-01",
        log_head="12:" + "ab" * 32,
        tables=[companies_table(lang), risks_table(lang), ratio_table(lang)],
        audit_summary={"cells_suppressed": 9},
    )


# ---------------------------------------------------------------- what the browser saw


class DomSummary(HTMLParser):
    """Counts what matters in the dumped DOM: sections, tables, captions, charts, suppressed cells."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.sections: list[dict] = []
        self._capture: str | None = None
        self.texts: list[str] = []

    def handle_starttag(self, tag: str, attrs: list) -> None:
        self.tags.append(tag)
        attributes = dict(attrs)
        classes = (attributes.get("class") or "").split()
        if tag == "section":
            self.sections.append({"id": attributes.get("id"), "tables": 0, "charts": 0, "rows": 0, "sup": 0, "none": 0})
        elif self.sections:
            current = self.sections[-1]
            current["tables"] += tag == "table"
            current["charts"] += tag == "svg" and "chart" in classes
            current["rows"] += tag == "tr"
            current["sup"] += tag == "td" and "sup" in classes
            current["none"] += tag == "td" and "none" in classes
        if tag in ("caption", "h2", "figcaption"):
            self._capture = tag

    def handle_endtag(self, tag: str) -> None:
        if tag == self._capture:
            self._capture = None

    def handle_data(self, data: str) -> None:
        self.texts.append(data)
        if self._capture and self.sections:
            self.sections[-1].setdefault(self._capture, "")
            self.sections[-1][self._capture] += data


PROBE = """
<script id="probe-script">
document.getElementById("probe-script").remove();  // the report's own DOM is checked for scripts
window.addEventListener("load", function () {
  const inside = (inner, outer) => inner.left >= outer.left - 1 && inner.right <= outer.right + 1
    && inner.top >= outer.top - 1 && inner.bottom <= outer.bottom + 1;
  const clipped = [];
  document.querySelectorAll("svg.chart").forEach((svg) => {
    const box = svg.getBoundingClientRect();
    svg.querySelectorAll("text").forEach((text) => {
      if (!inside(text.getBoundingClientRect(), box)) clipped.push(svg.id + ": " + text.textContent);
    });
  });
  const scrolling = [...document.querySelectorAll(".table-wrap")]
    .filter((wrap) => wrap.scrollWidth > wrap.clientWidth + 1)
    .map((wrap) => wrap.querySelector("caption").textContent);
  const unstyled = [...document.querySelectorAll("td.sup")]
    .filter((td) => getComputedStyle(td).backgroundImage === "none").length;
  const result = {
    clipped: clipped,
    scrolling: scrolling,
    unstyled_suppressed: unstyled,
    charts: [...document.querySelectorAll("svg.chart")].map((s) => [s.id, s.getBoundingClientRect().width]),
    resources: performance.getEntriesByType("resource").map((entry) => entry.name),
    references: [...document.querySelectorAll("[src], [href], link, object, iframe")]
      .map((el) => el.getAttribute("src") || el.getAttribute("href") || el.tagName)
      .filter((url) => !url.startsWith("#")),
    page_height: Math.ceil(document.documentElement.scrollHeight),
    page_width: Math.ceil(document.documentElement.scrollWidth),
  };
  const out = document.createElement("pre");
  out.id = "probe";
  out.textContent = JSON.stringify(result);
  document.body.appendChild(out);
});
</script>
"""


def read_probe(dom: str) -> dict:
    """The measuring script's JSON, taken back out of the dumped DOM."""
    match = re.search(r'<pre id="probe">(.*?)</pre>', dom, re.S)
    assert match, "the measuring script did not run"
    return json.loads(html.unescape(match.group(1)))


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()[:24]
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    return struct.unpack(">II", data[16:24])


@pytest.fixture(scope="module", params=["nl", "en"])
def rendered(request, chromium, tmp_path_factory) -> dict:
    """Render one language's report twice (measured DOM, then a screenshot); hand the results to the tests."""
    lang = request.param
    folder = tmp_path_factory.mktemp(f"browser-{lang}")
    release = make_release(lang)
    report = folder / "report.html"
    report.write_text(render_report(release), encoding="utf-8")
    probe_page = folder / "probe.html"
    probe_page.write_text(report.read_text(encoding="utf-8").replace("</body>", PROBE + "</body>"), "utf-8")
    window = f"--window-size={WINDOW_WIDTH},900"
    run = run_chromium(chromium, folder / "profile", probe_page, window, "--enable-logging=stderr", "--v=0",
                       "--dump-dom")  # fmt: skip
    probe = read_probe(run.stdout)
    ARTIFACTS.mkdir(exist_ok=True)
    screenshot = ARTIFACTS / f"release_report_{lang}.png"
    screenshot.unlink(missing_ok=True)
    height = min(probe["page_height"], MAX_SCREENSHOT_HEIGHT)
    window = f"--window-size={WINDOW_WIDTH},{height}"
    run_chromium(chromium, folder / "profile", report, window, f"--screenshot={screenshot}")
    dom = DomSummary()
    dom.feed(re.sub(r'<pre id="probe">.*?</pre>', "", run.stdout, flags=re.S))
    return {"lang": lang, "release": release, "dom": dom, "log": run.stderr, "probe": probe,
            "screenshot": screenshot, "height": height, "page": probe_page.as_uri()}  # fmt: skip


# ---------------------------------------------------------------- tests


def test_every_table_and_chart_is_in_the_rendered_dom(rendered):
    release, dom = rendered["release"], rendered["dom"]
    sections = [s for s in dom.sections if s["id"] and s["id"].startswith("table-")]
    assert [s["id"] for s in sections] == ["table-1", "table-2", "table-3"]
    for section, table in zip(sections, release.tables, strict=True):
        assert section["tables"] == 1 and section["charts"] == 1, section
        assert table.title in section["caption"] and table.title in section["h2"]
        assert table.title in section["figcaption"]
        hidden = sum(1 for c in table.cells if c.suppressed)
        assert section["sup"] == hidden, (table.table_id, section["sup"], hidden)
    # 1-D tables: one row per cell plus the header; the cross table: one row per theme plus the header
    assert sections[0]["rows"] == len(release.tables[0].cells) + 1
    assert sections[1]["rows"] == len(THEMES[rendered["lang"]]) + 1
    assert sections[2]["rows"] == len(release.tables[2].cells) + 1
    # the one combination nobody reported is a dash, explained in the legend, never a blank or a zero
    assert [s["none"] for s in sections] == [0, len(ABSENT), 0]
    no_data_legend = {"nl": "geen bedrijf rapporteerde deze combinatie", "en": "no company reported this combination"}
    assert sum(no_data_legend[rendered["lang"]] in text for text in dom.texts) == 2  # contents and notes


def test_hostile_label_is_text_and_no_script_reaches_the_page(rendered):
    dom = rendered["dom"]
    assert "script" not in dom.tags
    assert any(EVIL in text for text in dom.texts)


def console_lines(log: str, page_uri: str) -> list[str]:
    """Console messages of the page (Chromium logs every level as INFO:CONSOLE) and uncaught errors."""
    return [line for line in log.splitlines() if "Uncaught" in line or (":CONSOLE" in line and page_uri in line)]


def test_console_stays_silent(rendered):
    assert console_lines(rendered["log"], rendered["page"]) == []


def test_layout_no_clipped_chart_text_no_scrolling_no_fetches(rendered):
    probe = rendered["probe"]
    assert probe["clipped"] == []
    assert probe["scrolling"] == []
    assert probe["unstyled_suppressed"] == 0
    assert probe["resources"] == [] and probe["references"] == []
    assert [chart_id for chart_id, _ in probe["charts"]] == [f"chart-table-{n}" for n in (1, 2, 3)]
    assert all(width > 200 for _, width in probe["charts"])
    assert probe["page_width"] <= WINDOW_WIDTH


def test_screenshot_is_saved_as_an_artefact(rendered):
    shot = rendered["screenshot"]
    assert shot.is_file() and shot.parent == ARTIFACTS
    assert png_size(shot) == (WINDOW_WIDTH, rendered["height"])
    assert shot.stat().st_size > 20_000  # a blank page compresses to a few kB


def test_the_checks_catch_clipped_text_scrolling_fetches_and_console_errors(chromium, tmp_path):
    """The browser checks above must be able to fail: a page that breaks each of them."""
    page = tmp_path / "broken.html"
    page.write_text(
        "<!DOCTYPE html><html><body>"
        '<svg class="chart" id="bad" viewBox="0 0 100 40" width="100" height="40">'
        '<text x="60" y="20">a label far too long for its box</text></svg>'
        '<div class="table-wrap" style="width:200px;overflow-x:auto"><table><caption>wide</caption>'
        '<tr><td style="white-space:nowrap">' + "wide " * 200 + "</td></tr></table></div>"
        '<img src="http://example.invalid/logo.png" alt="">'
        '<script>console.error("boom"); null.x;</script>'
        "</body></html>" + PROBE,
        encoding="utf-8",
    )
    window = f"--window-size={WINDOW_WIDTH},900"
    run = run_chromium(chromium, tmp_path / "profile", page, window, "--enable-logging=stderr", "--v=0", "--dump-dom")
    probe = read_probe(run.stdout)
    console = console_lines(run.stderr, page.as_uri())
    assert len(console) == 2 and '"boom"' in console[0] and "Uncaught TypeError" in console[1]
    assert probe["clipped"] == ["bad: a label far too long for its box"]
    assert probe["scrolling"] == ["wide"]
    assert probe["references"] == ["http://example.invalid/logo.png"]
    assert probe["resources"] == ["http://example.invalid/logo.png"]


def test_the_protocol_comparison_page_renders_alone_and_silently(chromium, tmp_path):
    """`aggregator protocols compare` writes a page a committee opens offline: no fetches, no console output."""
    lab = Lab(tmp_path / "lab")
    four_companies(lab)
    paths = []
    for n, text in enumerate((PROTOCOL, PROTOCOL.replace("min_contributors = 3", "min_contributors = 5"))):
        paths.append(tmp_path / f"variant{n}.toml")
        paths[-1].write_text(text)
    page, _ = write_comparison(compare_protocols(lab.store, JAN, paths), tmp_path / "out")
    probe_page = tmp_path / "probe.html"
    probe_page.write_text(page.read_text(encoding="utf-8").replace("</body>", PROBE + "</body>"), "utf-8")
    window = f"--window-size={WINDOW_WIDTH},900"
    run = run_chromium(chromium, tmp_path / "profile", probe_page, window, "--enable-logging=stderr", "--dump-dom")
    probe = read_probe(run.stdout)
    assert probe["resources"] == [] and probe["references"] == []
    assert probe["page_width"] <= WINDOW_WIDTH
    assert console_lines(run.stderr, probe_page.as_uri()) == []
    assert "variant0.toml" in run.stdout and "variant1.toml" in run.stdout
    ARTIFACTS.mkdir(exist_ok=True)
    screenshot = ARTIFACTS / "protocol_comparison.png"
    run_chromium(chromium, tmp_path / "profile", page, window, f"--screenshot={screenshot}")
    assert png_size(screenshot)[0] == WINDOW_WIDTH
