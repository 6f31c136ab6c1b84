"""The website as a reader sees it: every page of the built site in Debian's chromium.

Serves ``_build/html`` on 127.0.0.1 (Python's http.server, in a thread) and opens every page at
1400 px and 420 px in headless chromium driven by Playwright. Every request that is not for
127.0.0.1 is aborted, so the site is checked as a downloaded copy read offline. On each page:

* nav      the menu button opens the chapter list (and the contents button, where the page has
           one, opens the page's contents); no second, empty header bar with its own search box;
* console  no console errors, no uncaught exceptions, no request that failed or was blocked;
* math     MathJax typeset every formula without errors, and no TeX command (``\\frac``,
           ``$$`` ...) is left in the text outside code;
* overflow no code or output block (or table) is wider than its column: ``scrollWidth >
           clientWidth + TOLERANCE_PX`` or a right edge past the column's;
* figures  every PNG figure's smallest text as displayed is at least MIN_TEXT_PX: the PNG chunk
           ``noneq-min-text-px`` (contracts.md, 1) times ``clientWidth / naturalWidth``;
* weight   the page's own files (its HTML and images; the site-wide assets under ``_static/``,
           shared by every page and fetched once, are reported but not counted) are under
           MAX_PAGE_MB.

Full-page screenshots (JPEG) of every page at both widths, and at 420 px one of the open menu
(PNG), go to
``_build/site-check/``; the report table goes to stdout and to ``_build/site-check/report.md``,
which also lists every block wider than its column.
Exits 1 on any failure. ``--pages`` and ``--checks`` run a subset while developing, e.g.
``python tests/browser/site_check.py --pages ness_sgd,api --checks math,overflow``.
"""
from __future__ import annotations

import argparse
import base64
import functools
import http.server
import re
import struct
import sys
import threading
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlparse

WIDTHS = (1400, 420)
HEIGHT = 900
MIN_TEXT_PX = 9.0
MAX_PAGE_MB = 5.0
TOLERANCE_PX = 2
CHUNK_KEY = "noneq-min-text-px"
MAX_SHOT_PX = 60000
CHECKS = ("nav", "console", "math", "overflow", "figures", "weight")
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
# A TeX command, or $$, left in the text of a page (outside code) means a formula MathJax
# never saw: Markdown broke it up, or MathJax did not run.
TEX_LEFT = re.compile(r"\\[A-Za-z]+|\$\$|\\[()\[\]]")


# ---------------------------------------------------------------------------------------------
# measuring helpers (pure; tested in test_site_check.py)
# ---------------------------------------------------------------------------------------------
def png_text_chunks(data: bytes) -> dict:
    """The text chunks (tEXt, zTXt, iTXt) of a PNG as ``{key: value}``."""
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError("data: not a PNG file (wrong signature).")
    out, pos = {}, 8
    while pos + 8 <= len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        pos += 12 + length
        if kind == b"tEXt":
            key, _, value = body.partition(b"\0")
            out[key.decode("latin-1")] = value.decode("latin-1")
        elif kind == b"zTXt":
            key, _, rest = body.partition(b"\0")
            out[key.decode("latin-1")] = zlib.decompress(rest[1:]).decode("latin-1")
        elif kind == b"iTXt":
            key, _, rest = body.partition(b"\0")
            compressed, rest = rest[0], rest[2:]
            _lang, _, rest = rest.partition(b"\0")
            _tkey, _, text = rest.partition(b"\0")
            out[key.decode("latin-1")] = (zlib.decompress(text) if compressed else text).decode()
        elif kind == b"IEND":
            break
    return out


def min_text_px(data: bytes):
    """The figure's smallest text height in PNG pixels (contract 1), or None without the chunk."""
    value = png_text_chunks(data).get(CHUNK_KEY)
    return None if value is None else float(value)


def displayed_px(text_px: float, client_width: float, natural_width: float) -> float:
    """Text of ``text_px`` PNG pixels as displayed in an image shown ``client_width`` px wide."""
    if natural_width <= 0:
        raise ValueError(f"natural_width must be positive, got {natural_width}.")
    return text_px * client_width / natural_width


def overflow_px(scroll_width: float, client_width: float, right: float, column_right: float):
    """How far a block runs off its column (0 when it fits within TOLERANCE_PX): the part hidden
    behind its own scroll bar, or the part past the column's right edge."""
    excess = max(scroll_width - client_width, right - column_right)
    return excess if excess > TOLERANCE_PX else 0


def tex_left(text: str) -> list:
    """The TeX commands (and ``$$``) in ``text``, in order, without repeats."""
    return list(dict.fromkeys(TEX_LEFT.findall(text)))


def page_name(path: str) -> str:
    """A short name for a page's path under the site root: ``chapters/ness_sgd.html`` ->
    ``ness_sgd``."""
    return Path(path).with_suffix("").name


# ---------------------------------------------------------------------------------------------
# the browser side
# ---------------------------------------------------------------------------------------------
# Runs in the page: waits for MathJax, then measures math, overflow, figures and nav markup.
_WAIT_MATHJAX = """async () => {
  if (!window.MathJax || !MathJax.startup || !MathJax.startup.promise) return false;
  await MathJax.startup.promise; return true; }"""

_OPEN_EVERYTHING = """() => {
  document.querySelectorAll('details').forEach(d => d.open = true);
  document.querySelectorAll('.toggle-hidden').forEach(e => e.classList.remove('toggle-hidden'));
  document.querySelectorAll('.toggle-details').forEach(e => e.setAttribute('open', ''));
}"""

_MEASURE = r"""(tolerance) => {
  const out = {};
  // math: every formula typeset, no MathJax errors
  const formulas = [...document.querySelectorAll('.math, span.math, div.math')];
  out.formulas = formulas.length;
  out.untypeset = formulas.filter(e => !e.querySelector('mjx-container')).length;
  out.mathjax_errors = document.querySelectorAll(
    'mjx-merror, [data-mjx-error], mjx-assistive-mml merror, ' +
    'mjx-assistive-mml mtext[mathcolor="red"]').length;
  // text outside code, scripts and typeset math
  const skip = 'pre, code, script, style, textarea, mjx-container, .highlight, .MathJax';
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  const texts = [];
  for (let n = walker.nextNode(); n; n = walker.nextNode()) {
    const p = n.parentElement;
    if (p && !p.closest(skip)) texts.push(n.textContent);
  }
  out.text = texts.join(' ');
  // blocks: code, outputs and tables, against the article column
  const column = document.querySelector('article.bd-article') || document.body;
  const colRight = column.getBoundingClientRect().right;
  out.blocks = [];
  for (const el of document.querySelectorAll('article pre, article table')) {
    if (el.closest('mjx-container')) continue;
    const r = el.getBoundingClientRect();
    if (r.width === 0) continue;
    const parent = el.closest('.cell') ? (el.closest('.cell_output') ? 'output' : 'code')
                                       : (el.tagName === 'TABLE' ? 'table' : 'pre');
    out.blocks.push({kind: parent, scroll: el.scrollWidth, client: el.clientWidth,
                     right: r.right, head: el.innerText.slice(0, 60)});
  }
  out.column_right = colRight;
  // display formulas wider than the column (reported, not a failure: MathJax 3 cannot break them)
  out.wide_formulas = [...document.querySelectorAll('article mjx-container[display="true"]')]
    .filter(e => { const r = e.getBoundingClientRect();
                   return r.width > 0 && (e.scrollWidth > e.clientWidth + tolerance ||
                                          r.left + e.scrollWidth > colRight + tolerance); })
    .length;
  // figures
  out.images = [...document.querySelectorAll('article img')].map((img, k) => {
    const fig = img.closest('figure');
    const caption = fig && fig.querySelector('figcaption') ? fig.querySelector('figcaption').innerText : '';
    return {src: img.currentSrc || img.src, client: img.clientWidth, natural: img.naturalWidth,
            index: k + 1, caption: caption.replace(/\s+/g, ' ').slice(0, 50)};
  });
  // nav markup: visible header bars holding a search box
  out.search_boxes = [...document.querySelectorAll(
      '.bd-header .search-button, .bd-header input[type=search], .bd-header form')]
    .filter(e => e.getBoundingClientRect().height > 0).length;
  out.header_bars = [...document.querySelectorAll('header.bd-header, .bd-header')]
    .filter(e => e.getBoundingClientRect().height > 0).length;
  return out;
}"""

# The chapter list is open when a link of the primary sidebar is visible inside the viewport.
_CHAPTERS_VISIBLE = """() => {
  const links = [...document.querySelectorAll('.bd-sidebar-primary nav a, #pst-primary-sidebar nav a, .bd-sidebar-primary .bd-toc-item a')];
  return links.some(a => { const r = a.getBoundingClientRect();
    const s = getComputedStyle(a);
    return r.width > 0 && r.height > 0 && r.right > 0 && r.left < window.innerWidth &&
           s.visibility !== 'hidden' && a.checkVisibility(); });
}"""
_CONTENTS_VISIBLE = """() => {
  const links = [...document.querySelectorAll('.bd-sidebar-secondary nav a, .bd-sidebar-secondary .toc-entry a')];
  return links.some(a => { const r = a.getBoundingClientRect();
    return r.width > 0 && r.right > 0 && r.left < window.innerWidth && a.checkVisibility(); });
}"""


@dataclass
class Result:
    page: str
    width: int
    overflow: list = field(default_factory=list)   # (kind, px, head)
    wide_formulas: int = 0
    min_figure_px: float | None = None
    figures: list = field(default_factory=list)    # (image, displayed px or None)
    console: list = field(default_factory=list)
    weight: int = 0       # bytes: the page and everything it loads
    own_weight: int = 0   # bytes: the same without the shared site assets under _static/
    failures: list = field(default_factory=list)


def _serve(root: Path):
    handler = functools.partial(_QuietHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def _local_file(root: Path, url: str, base: str):
    """The file under ``root`` that a same-site URL names, or None."""
    if not url.startswith(base):
        return None
    path = root / unquote(urlparse(url).path).lstrip("/")
    if path.is_dir():
        path = path / "index.html"
    return path if path.is_file() else None


def _image_bytes(root: Path, src: str, base: str):
    if src.startswith("data:image/png;base64,"):
        return base64.b64decode(src.split(",", 1)[1])
    path = _local_file(root, src, base)
    return path.read_bytes() if path is not None and path.suffix.lower() == ".png" else None


def _toggle(page, button_selector, visible_js):
    """Click a sidebar toggle and say whether the list it controls ends up shown: if the list was
    open (wide screens), the first click must close it and a second must open it again."""
    button = page.locator(button_selector).first
    if button.count() == 0 or not button.is_visible():
        return None
    before = page.evaluate(visible_js)
    button.click()
    page.wait_for_timeout(300)
    after = page.evaluate(visible_js)
    if before:
        if after:
            return False
        button.click()
        page.wait_for_timeout(300)
        after = page.evaluate(visible_js)
    return bool(after)


def check_page(page, root, base, rel, width, checks, shots):
    res = Result(page_name(rel), width)
    errors, blocked = [], []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(f"uncaught: {e}"))
    loaded = set()

    def route(r):
        url = r.request.url
        if url.startswith(base) or url.startswith("data:"):
            loaded.add(url.split("#")[0])
            r.continue_()
        else:
            blocked.append(url)
            r.abort()

    page.route("**/*", route)
    page.goto(base + rel, wait_until="load")
    has_mathjax = page.evaluate(_WAIT_MATHJAX)
    page.wait_for_timeout(200)
    name = f"{res.page}-{width}"
    if shots:
        # JPEG holds at most 65,535 px: the longest pages (the API) are cut there
        height = min(page.evaluate("document.documentElement.scrollHeight"), MAX_SHOT_PX)
        page.screenshot(path=str(shots / f"{name}.jpg"), full_page=True, type="jpeg", quality=70,
                        clip={"x": 0, "y": 0, "width": width, "height": height})
    page.evaluate(_OPEN_EVERYTHING)
    page.wait_for_timeout(200)
    m = page.evaluate(_MEASURE, TOLERANCE_PX)

    if "math" in checks:
        if m["formulas"] and not has_mathjax:
            res.failures.append(f"{m['formulas']} formulas but MathJax did not start")
        if m["untypeset"]:
            res.failures.append(f"{m['untypeset']} of {m['formulas']} formulas not typeset")
        if m["mathjax_errors"]:
            res.failures.append(f"{m['mathjax_errors']} MathJax errors")
        left = tex_left(m["text"])
        if left:
            res.failures.append(f"TeX left in the text: {' '.join(left[:8])}")

    if "overflow" in checks:
        res.wide_formulas = m["wide_formulas"]
        for b in m["blocks"]:
            px = overflow_px(b["scroll"], b["client"], b["right"], m["column_right"])
            if px:
                res.overflow.append((b["kind"], px, b["head"].split("\n")[0]))
        if res.overflow:
            worst = max(res.overflow, key=lambda o: o[1])
            res.failures.append(f"{len(res.overflow)} blocks wider than the column (worst "
                                f"{worst[1]:.0f} px, {worst[0]}: {worst[2]!r})")

    if "figures" in checks:
        for img in m["images"]:
            if "/_static/" in img["src"]:
                continue  # the theme's own icons, not a figure
            data = _image_bytes(root, img["src"], base)
            if data is None:
                continue  # not a PNG (an SVG logo, a GIF): not a matplotlib figure
            label = f"#{img['index']} ({img['src'].rsplit('/', 1)[-1][:12]}..."
            label += f" {img['caption']!r})" if img["caption"] else ")"
            if img["client"] == 0 or img["natural"] == 0:
                continue  # not displayed (a hidden animation frame)
            text = min_text_px(data)
            if text is None:
                res.figures.append((label, None))
                res.failures.append(f"figure {label} has no {CHUNK_KEY} chunk "
                                    f"(shown at {img['client']}/{img['natural']} px)")
                continue
            px = displayed_px(text, img["client"], img["natural"])
            res.figures.append((label, px))
            if px < MIN_TEXT_PX:
                res.failures.append(f"figure {label}: smallest text {px:.1f} px < "
                                    f"{MIN_TEXT_PX:g} px ({text:g} px shown at "
                                    f"{img['client']}/{img['natural']})")
        shown = [px for _, px in res.figures if px is not None]
        res.min_figure_px = min(shown) if shown else None

    if "nav" in checks:
        if m["header_bars"] and m["search_boxes"]:
            res.failures.append("an extra header bar with a search box")
        opened = _toggle(page, ".primary-toggle", _CHAPTERS_VISIBLE)
        if opened is not True:
            res.failures.append("the menu button does not open the chapter list"
                                if opened is False else "no menu button")
        elif shots and width < 992:
            page.screenshot(path=str(shots / f"{name}-menu.png"))
        if opened and width < 992:
            page.keyboard.press("Escape")
            page.goto(base + rel, wait_until="load")
        if _toggle(page, ".secondary-toggle", _CONTENTS_VISIBLE) is False:
            res.failures.append("the contents button does not open the page's contents")

    if "weight" in checks:
        urls = loaded | {i["src"] for i in m["images"]}
        files = {p for p in (_local_file(root, u, base) for u in urls) if p is not None}
        res.weight = sum(p.stat().st_size for p in files)
        # The page's own files: everything but the site-wide assets under _static/ (theme,
        # fonts, MathJax), which every page shares and a browser fetches once per site.
        res.own_weight = sum(p.stat().st_size for p in files if "_static" not in p.parts)
        if res.own_weight > MAX_PAGE_MB * 1e6:
            res.failures.append(f"page weight (own files) {res.own_weight / 1e6:.1f} MB > "
                                f"{MAX_PAGE_MB:g} MB")

    if "console" in checks:
        # the menu check reloads the page at phone width: count each message once
        res.console = list(dict.fromkeys(errors + [f"blocked request {u}" for u in blocked]))
        for e in res.console[:5]:
            res.failures.append(f"console: {e[:200]}")
    return res


def site_pages(root: Path) -> list:
    """The site's pages (paths relative to ``root``), without redirects and Sphinx's own."""
    pages = []
    for p in sorted(root.rglob("*.html")):
        rel = p.relative_to(root).as_posix()
        if rel.startswith("_") or "/_" in rel:
            continue
        if 'http-equiv="Refresh"' in p.read_text(errors="replace")[:2000]:
            continue  # index.html: a redirect to the first chapter
        pages.append(rel)
    return pages


def ensure_chromium(path=CHROMIUM):
    if not Path(path).exists():
        sys.exit(f"{path} is missing: install Debian's chromium (`apt-get install -y chromium`;"
                 " `make site-check` does it). This check never downloads a browser.")


def format_report(results) -> str:
    lines = ["| page | width | overflowing blocks (worst px) | smallest figure text (px) "
             "| console errors | page weight, own / with site assets (MB) | wide formulas | failures |",
             "|---|---|---|---|---|---|---|---|"]
    for r in results:
        worst = f" ({max(o[1] for o in r.overflow):.0f})" if r.overflow else ""
        missing = sum(px is None for _, px in r.figures)
        fig = ("-" if r.min_figure_px is None else f"{r.min_figure_px:.1f}")
        if missing:
            fig += f", {missing} without chunk"
        lines.append(f"| {r.page} | {r.width} | {len(r.overflow)}{worst} | {fig} | "
                     f"{len(r.console)} | {r.own_weight / 1e6:.2f} / {r.weight / 1e6:.2f} | {r.wide_formulas} | {len(r.failures)} |")
    failed = [r for r in results if r.failures]
    if failed:
        lines += ["", "## Failures", ""]
        for r in failed:
            for f in r.failures:
                lines.append(f"- {r.page} @ {r.width} px: {f}")
    return "\n".join(lines) + "\n"


def format_overflow(results) -> str:
    """Every block wider than its column, widest first per page (a to-do list)."""
    lines = ["## Blocks wider than the column", "", "| page | width | kind | px | first line |",
             "|---|---|---|---|---|"]
    for r in results:
        for kind, px, head in sorted(r.overflow, key=lambda o: -o[1]):
            head = head.replace("|", "\\|").replace("`", "'")
            lines.append(f"| {r.page} | {r.width} | {kind} | {px:.0f} | `{head}` |")
    return "\n".join(lines) + "\n"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--html", default="_build/html", help="the built site (default %(default)s)")
    ap.add_argument("--out", default="_build/site-check", help="screenshots and report.md")
    ap.add_argument("--pages", default="", help="comma-separated page names (e.g. ness_sgd,api); "
                    "default every page")
    ap.add_argument("--checks", default=",".join(CHECKS), help="comma-separated subset of "
                    f"{','.join(CHECKS)} (default all)")
    ap.add_argument("--widths", default=",".join(map(str, WIDTHS)))
    ap.add_argument("--no-screenshots", action="store_true")
    args = ap.parse_args(argv)
    checks = {c for c in args.checks.split(",") if c}
    if checks - set(CHECKS):
        ap.error(f"--checks: unknown {sorted(checks - set(CHECKS))}; known: {', '.join(CHECKS)}")
    root = Path(args.html).resolve()
    if not (root / "index.html").exists():
        sys.exit(f"{root} has no index.html: build the site first (`make book`).")
    pages = site_pages(root)
    if args.pages:
        wanted = set(args.pages.split(","))
        pages = [p for p in pages if page_name(p) in wanted]
        if not pages:
            ap.error(f"--pages: none of {sorted(wanted)} is a page of the site")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for rel in pages:  # no screenshot left over from an earlier run of these pages
        for old in out.glob(f"{page_name(rel)}-*"):
            old.unlink()
    shots = None if args.no_screenshots else out
    ensure_chromium()

    from playwright.sync_api import sync_playwright

    start, server = time.time(), _serve(root)
    base = f"http://127.0.0.1:{server.server_address[1]}/"
    results = []
    try:
        with sync_playwright() as pw, _tmpdir() as profile:
            browser = pw.chromium.launch_persistent_context(
                profile, executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True,
                viewport={"width": WIDTHS[0], "height": HEIGHT})
            try:
                for width in map(int, args.widths.split(",")):
                    for rel in pages:
                        page = browser.new_page()
                        page.set_viewport_size({"width": width, "height": HEIGHT})
                        try:
                            results.append(check_page(page, root, base, rel, width, checks,
                                                      shots))
                        finally:
                            page.close()
                        r = results[-1]
                        print(f"  {r.page:22s} {width:5d} px  "
                              f"{'ok' if not r.failures else f'{len(r.failures)} failures'}",
                              flush=True)
            finally:
                browser.close()
    finally:
        server.shutdown()
    report = (f"# Site check: {len(pages)} pages x {len(args.widths.split(','))} widths, checks "
              f"{', '.join(c for c in CHECKS if c in checks)} ({time.time() - start:.0f} s)\n\n"
              + format_report(results))
    (out / "report.md").write_text(report + "\n" + format_overflow(results))
    print(report)
    print(f"Screenshots and report: {out}/")
    return 1 if any(r.failures for r in results) else 0


def _tmpdir():
    import tempfile

    return tempfile.TemporaryDirectory(prefix="site-check-chromium-")


if __name__ == "__main__":
    sys.exit(main())
