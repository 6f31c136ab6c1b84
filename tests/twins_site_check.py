"""Browser check of the widgets' static twins on the built site (``make twins-check``).

Serves ``_build/html`` on localhost, opens every chapter in headless Chromium (Debian's
``/usr/bin/chromium``, never a downloaded browser) at 1400 px and 420 px with every request that
does not go to localhost blocked, and for each twin player (``div.noneq-twin``):

* moves each slider one step and checks that the image changes (no kernel, no network);
* presses the play button, where there is one, and checks that the frame advances;
* reports the smallest figure text as displayed (PNG chunk ``noneq-min-text-px`` x displayed
  width / natural width); below 9 px it is a warning here, since the frames are the library's
  own figures, whose text size ``make site-check`` enforces on every image (contract 1); a frame
  without the chunk fails;
* records the page weight (HTML plus its images).

Screenshots of each player before and after go to ``_build/twins-check/``. Exits 1 on failure.
"""
from __future__ import annotations

import base64
import functools
import http.server
import io
import pathlib
import sys
import tempfile
import threading

ROOT = pathlib.Path(__file__).resolve().parents[1]
HTML = ROOT / "_build" / "html"
OUT = ROOT / "_build" / "twins-check"
WIDTHS = (1400, 420)
MIN_PX = 9.0
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def _min_text_px(src):
    from PIL import Image

    data = base64.b64decode(src.split(",", 1)[1])
    value = Image.open(io.BytesIO(data)).text.get("noneq-min-text-px")
    return float(value) if value is not None else None


def page_weight(page: pathlib.Path) -> int:
    """Bytes of the page's HTML plus the images it references from _images/."""
    import re

    text = page.read_text(encoding="utf-8")
    total = len(text.encode("utf-8"))
    for src in set(re.findall(r'src="(\.\./_images/[^"]+)"', text)):
        f = (page.parent / src).resolve()
        if f.exists():
            total += f.stat().st_size
    return total


def main() -> int:
    from playwright.sync_api import sync_playwright

    if not HTML.exists():
        print("no _build/html: run `make book` first")
        return 1
    OUT.mkdir(parents=True, exist_ok=True)
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    handler = functools.partial(Quiet, directory=str(HTML))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    failures, warnings, blocked, rows = [], [], [], []
    pages = sorted((HTML / "chapters").glob("*.html"))
    with sync_playwright() as pw, tempfile.TemporaryDirectory() as profile:
        ctx = pw.chromium.launch_persistent_context(profile, executable_path="/usr/bin/chromium",
                                                    args=CHROMIUM_ARGS, headless=True)

        def route(r):
            url = r.request.url
            if url.startswith(base) or url.startswith("data:"):
                return r.continue_()
            blocked.append(url)
            return r.abort()

        ctx.route("**/*", route)
        for page_path in pages:
            name = page_path.stem
            for width in WIDTHS:
                page = ctx.new_page()
                page.set_viewport_size({"width": width, "height": 900})
                page.goto(f"{base}/chapters/{page_path.name}", wait_until="load")
                players = page.locator("div.noneq-twin")
                n = players.count()
                for k in range(n):
                    player = players.nth(k)
                    player.scroll_into_view_if_needed()
                    img = player.locator("img")
                    tag = f"{name}-{k}-{width}px"
                    player.screenshot(path=str(OUT / f"{tag}-before.png"))
                    src0 = img.get_attribute("src")
                    shown, natural = img.evaluate("i => [i.clientWidth, i.naturalWidth]")
                    text_px = _min_text_px(src0)
                    if text_px is None:
                        failures.append(f"{tag}: frame without the noneq-min-text-px chunk")
                    elif text_px * shown / natural < MIN_PX:
                        warnings.append(f"{tag}: smallest text {text_px * shown / natural:.1f} px as displayed")
                    sliders = player.locator("input[type=range]")
                    for s in range(sliders.count()):
                        before = img.get_attribute("src")
                        slider = sliders.nth(s)
                        hi = int(slider.get_attribute("max"))
                        if hi == 0:
                            continue
                        slider.focus()
                        val = int(slider.input_value())
                        slider.press("ArrowRight" if val < hi else "ArrowLeft")
                        if img.get_attribute("src") == before:
                            failures.append(f"{tag}: slider {s} did not change the image")
                    player.screenshot(path=str(OUT / f"{tag}-after.png"))
                    button = player.locator("button")
                    played = ""
                    if button.count():
                        f0 = player.get_attribute("data-frame")
                        button.click()
                        page.wait_for_timeout(700)
                        button.click()
                        f1 = player.get_attribute("data-frame")
                        played = f", play {f0} -> {f1}"
                        if f0 == f1:
                            failures.append(f"{tag}: play did not advance the frame")
                        player.screenshot(path=str(OUT / f"{tag}-played.png"))
                    rows.append(f"{tag}: {shown}/{natural} px wide, smallest text "
                                f"{(text_px or 0) * shown / natural:.1f} px{played}")
                page.close()
            weight = page_weight(page_path)
            rows.append(f"{name}: page weight {weight / 1e6:.2f} MB")
            if weight > 5e6:
                failures.append(f"{name}: page weight {weight / 1e6:.2f} MB > 5 MB")
        ctx.close()
    server.shutdown()
    print("\n".join(rows))
    if blocked:
        print(f"{len(blocked)} non-local requests blocked, e.g. {sorted(set(blocked))[:3]}")
    for w in warnings:
        print("WARN", w)
    for f in failures:
        print("FAIL", f)
    print(f"screenshots in {OUT}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
