"""The Binder check: open every chapter the way its launch button does, in a real browser.

Run by ``make binder-check`` with the Python of the emulated Binder environment
(``tests/binder/build_env.sh``). It copies the working tree (what repo2docker copies: tracked
and untracked, not ignored, files) into ``OUT/repo``, starts JupyterLab there on 127.0.0.1 with a
token, pinned to ONE core (``taskset -c 0``, Binder's share) and with the scratch HOME where
``postBuild`` wrote its settings, and drives Debian's headless chromium (Playwright) through
``/lab/tree/chapters/NAME.md`` for every notebook chapter:

1. the file opens as a notebook (not as a text file);
2. MyST renders: an admonition is a rendered admonition, no markdown cell stays raw and no
   directive source (```` ```{ ````) shows in the rendered text (checked over the whole notebook);
3. Run > Run All Cells finishes with no error output; its wall time is measured from the click
   to the last cell's reply, with the kernel's CPU time over the same span (what the limit
   applies to by default: on a machine shared with other jobs the wall time measures their load
   too), and the kernel's peak memory (VmHWM from /proc) is read after it;
4. the first slider of an interactive widget is moved with the keyboard and its output changes;
5. File > Save (Ctrl+S) writes the chapter back byte-identical;
6. the kernel is shut down before the next chapter (a finished kernel keeps its memory).

Screenshots after Run All go to ``OUT/NAME.png`` (top of the chapter) and ``OUT/NAME-widget.png``;
the table goes to ``OUT/report.md``. Exit status 1 if any chapter fails a step, takes more than
``--max-seconds`` (60) for Run All (kernel CPU time, or wall time with ``--time run_s``), or peaks above ``--max-mib`` (1536) MiB.
"""

import argparse
import json
import os
import pathlib
import re
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

from playwright.sync_api import sync_playwright

REPO = pathlib.Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def notebook_chapters(root):
    """The chapters Lab opens as notebooks (a jupytext header with a kernelspec), sorted."""
    return sorted(p.stem for p in (root / "chapters").glob("*.md")
                  if "\nkernelspec:" in p.read_text(encoding="utf-8"))


def copy_tree(dest):
    """Copy the working tree's tracked and untracked (not ignored) files into ``dest``."""
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=REPO,
                           check=True, capture_output=True).stdout.decode().split("\0")
    shutil.rmtree(dest, ignore_errors=True)
    for name in filter(None, files):
        src = REPO / name
        if src.is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / name)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Lab:
    """A JupyterLab server on one core, and its REST API."""

    def __init__(self, env, home, root, log):
        self.port, self.token = free_port(), secrets.token_hex(16)
        self.base = f"http://127.0.0.1:{self.port}"
        cmd = ["taskset", "-c", "0", str(env / "bin" / "jupyter"), "lab", "--no-browser",
               "--ip=127.0.0.1", f"--port={self.port}", f"--IdentityProvider.token={self.token}",
               f"--ServerApp.root_dir={root}",
               # lets this check read the notebook model (outputs, execution counts) from the page
               "--LabApp.expose_app_in_browser=True"]
        if os.geteuid() == 0:
            cmd.append("--allow-root")
        environ = dict(os.environ, HOME=str(home), PATH=f"{env / 'bin'}:{os.environ['PATH']}")
        environ.pop("JUPYTER_CONFIG_DIR", None)
        environ.pop("JUPYTER_DATA_DIR", None)
        self.proc = subprocess.Popen(cmd, cwd=root, env=environ, stdout=log, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        deadline = time.time() + 120
        while True:
            try:
                self.api("GET", "/api/status")
                return
            except OSError:
                if self.proc.poll() is not None or time.time() > deadline:
                    raise RuntimeError(f"JupyterLab did not start; see {log.name}")
                time.sleep(0.5)

    def api(self, method, path):
        req = urllib.request.Request(self.base + path, method=method,
                                     headers={"Authorization": f"token {self.token}"})
        with urllib.request.urlopen(req, timeout=10) as resp:
            body = resp.read()
        return json.loads(body) if body else None

    def session(self, path):
        for s in self.api("GET", "/api/sessions"):
            if s["path"] == path:
                return s
        return None

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def kernel_pid(kernel_id):
    """The pid of the kernel process whose command line names its connection file."""
    for proc in pathlib.Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                cmdline = (proc / "cmdline").read_bytes()
            except OSError:
                continue
            if f"kernel-{kernel_id}.json".encode() in cmdline:
                return int(proc.name)
    raise RuntimeError(f"no process for kernel {kernel_id}")


def cpu_seconds(pid):
    """User + system CPU time of a process (all its threads), in seconds."""
    fields = pathlib.Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def peak_mib(pid):
    for line in pathlib.Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmHWM for pid {pid}")


# JavaScript run in the page; `window.jupyterapp` is exposed by --LabApp.expose_app_in_browser.
JS_STATE = """() => {
  const panel = window.jupyterapp.shell.currentWidget;
  const cells = panel.content.model.sharedModel.cells;
  const code = cells.filter(c => c.cell_type === 'code');
  const errors = [], tracebacks = [], stderr = [];
  for (const c of code) for (const o of c.outputs) {
    if (o.output_type === 'error') {
      errors.push(o.ename + ': ' + o.evalue);
      tracebacks.push(c.source + String.fromCharCode(10) + o.traceback.join(String.fromCharCode(10)));
    }
    if (o.output_type === 'stream' && o.name === 'stderr') stderr.push(String(o.text).slice(0, 300));
  }
  const done = code.filter(c => c.execution_count !== null).length;
  const kernel = panel.sessionContext.session && panel.sessionContext.session.kernel;
  return {ncode: code.length, done, errors, tracebacks, stderr, dirty: panel.context.model.dirty,
          kernel: kernel ? kernel.status : 'none'};
}"""
JS_SCROLLER = ("[...document.querySelectorAll('.jp-NotebookPanel .jp-WindowedPanel-outer')]"
               ".sort((a, b) => b.scrollHeight - a.scrollHeight)[0]")
JS_MARKDOWN = """() => {
  const out = {cells: 0, raw: 0, directives: []};
  for (const cell of document.querySelectorAll('.jp-NotebookPanel .jp-MarkdownCell')) {
    if (cell.getBoundingClientRect().height === 0) continue;
    out.cells += 1;
    // a rendered markdown cell hides its editor; a raw one shows its source in it
    const editor = cell.querySelector('.jp-InputArea-editor');
    if (editor && editor.getBoundingClientRect().height > 0) { out.raw += 1; continue; }
    const text = (cell.querySelector('.jp-MarkdownOutput') || cell).innerText;
    const m = text.match(/```\\{[\\w-]+\\}/);
    if (m) out.directives.push(m[0]);
  }
  return out;
}"""
JS_FIRST_WIDGET_CELL = """() => {
  const cells = window.jupyterapp.shell.currentWidget.content.model.sharedModel.cells;
  return cells.findIndex(c => c.cell_type === 'code' && c.outputs.some(o => o.data &&
      o.data['application/vnd.jupyter.widget-view+json']));
}"""


def scroll_through(page):
    """Scroll the notebook from top to bottom; return what the markdown cells showed."""
    seen = {"cells": 0, "raw": 0, "directives": []}
    page.evaluate(f"{JS_SCROLLER}.scrollTo(0, 0)")
    for _ in range(400):
        page.wait_for_timeout(250)
        got = page.evaluate(JS_MARKDOWN)
        seen["cells"] = max(seen["cells"], got["cells"])
        seen["raw"] = max(seen["raw"], got["raw"])
        seen["directives"] += got["directives"]
        if page.evaluate(f"(() => {{ const o = {JS_SCROLLER}; const end = o.scrollTop + o.clientHeight"
                         " >= o.scrollHeight - 2; o.scrollBy(0, o.clientHeight * 0.9); return end; })()"):
            break
    page.evaluate(f"{JS_SCROLLER}.scrollTo(0, 0)")
    return seen


def menu(page, top, item):
    page.locator(".lm-MenuBar-itemLabel", has_text=top).first.click()
    page.locator(".lm-Menu-itemLabel", has_text=item).first.click()


def move_widget(page, out):
    """Move the first slider of the first interactive widget; return a description or raise."""
    index = page.evaluate(JS_FIRST_WIDGET_CELL)
    if index < 0:
        return "no widget in this chapter"
    page.evaluate(f"(() => {{ const nb = window.jupyterapp.shell.currentWidget.content;"
                  f" nb.activeCellIndex = {index}; return nb.scrollToItem({index}, 'start'); }})()")
    cell = page.locator(".jp-NotebookPanel .jp-Cell.jp-mod-active")
    cell.locator(".widget-slider .noUi-handle, .widget-dropdown select").first.wait_for(timeout=30000)
    output = cell.locator(".jp-OutputArea-output .widget-output, .jp-OutputArea-output .jupyter-widgets-output-area").first
    before = output.inner_html()
    handle = cell.locator(".widget-slider .noUi-handle")
    if handle.count():
        control = handle.first
        label = control.evaluate("h => h.closest('.widget-slider').querySelector('.widget-label').innerText")
        start = control.get_attribute("aria-valuenow")
        control.focus()
        control.press("ArrowLeft")  # one step down (up if already at the minimum)
        if control.get_attribute("aria-valuenow") == start:
            control.press("ArrowRight")
        what = f"slider '{label}' {start} -> {control.get_attribute('aria-valuenow')}"
    else:
        select = cell.locator(".widget-dropdown select").first
        options = select.locator("option").all_inner_texts()
        select.select_option(index=1 if len(options) > 1 else 0)
        what = f"dropdown -> {options[1] if len(options) > 1 else options[0]}"
    deadline = time.time() + 60
    while output.inner_html() == before:
        if time.time() > deadline:
            raise AssertionError(f"widget output did not change after moving the {what}")
        page.wait_for_timeout(250)
    page.wait_for_timeout(1500)  # let the new figure finish drawing before the screenshot
    page.screenshot(path=str(out))
    return what


def check_chapter(page, lab, root, name, out, args):
    """Run the steps of the module docstring on one chapter; return its report row."""
    row = {"chapter": name, "opened": "", "myst": "", "run_s": None, "peak_mib": None,
           "widget": "", "save": "", "problems": []}
    path = f"chapters/{name}.md"
    original = (root / path).read_bytes()
    t_open = time.time()
    # ?reset: start from an empty workspace, as a fresh Binder session does
    page.goto(f"{lab.base}/lab/tree/{path}?token={lab.token}&reset")
    page.wait_for_selector(".jp-NotebookPanel, .jp-FileEditor", timeout=120000)
    if page.locator(".jp-FileEditor").count() and not page.locator(".jp-NotebookPanel").count():
        row["opened"] = "as TEXT"
        row["problems"].append("opened as a text file, not as a notebook")
        return row
    row["opened"] = f"notebook ({time.time() - t_open:.0f} s)"
    page.locator(".jp-NotebookPanel .myst-admonition").first.wait_for(timeout=60000)
    deadline = time.time() + 120
    while (s := lab.session(path)) is None or s["kernel"]["execution_state"] != "idle":
        if time.time() > deadline:
            raise AssertionError("the kernel did not start")
        page.wait_for_timeout(250)
    kernel = s["kernel"]["id"]
    pid = kernel_pid(kernel)

    cpu0, t0 = cpu_seconds(pid), time.time()
    menu(page, "Run", "Run All Cells")
    # Done when every code cell has its reply (Lab sets the execution count from it) and the
    # kernel is idle; Lab stops a Run All at the first error.
    while True:
        state = page.evaluate(JS_STATE)
        if (state["done"] == state["ncode"] and state["kernel"] == "idle") or state["errors"]:
            break
        if time.time() - t0 > args.timeout:
            break
        page.wait_for_timeout(200)
    row["run_s"], row["cpu_s"] = time.time() - t0, cpu_seconds(pid) - cpu0
    row["peak_mib"] = peak_mib(pid)
    if state["errors"]:
        row["problems"].append("error output: " + "; ".join(state["errors"])[:500])
        # the whole traceback (ANSI colours removed), with the cell's source, for the log
        text = re.sub(r"\x1b\[[0-9;]*m", "", "\n\n".join(state["tracebacks"]))
        (out / f"{name}.traceback.txt").write_text(text)
    if state["done"] != state["ncode"]:
        row["problems"].append(f"Run All stopped: {state['done']} of {state['ncode']} code cells ran")
    if state["stderr"]:
        row["problems"].append("stderr output: " + " | ".join(state["stderr"])[:500])
    if row[args.time] > args.max_seconds:
        row["problems"].append(f"Run All took {row[args.time]:.0f} s ({args.time}) > {args.max_seconds:.0f} s")

    md = scroll_through(page)  # ends at the top of the chapter
    page.wait_for_timeout(1000)
    page.screenshot(path=str(out / f"{name}.png"))
    admonitions = page.locator(".jp-NotebookPanel .myst-admonition").count()  # in view at the top
    row["myst"] = "rendered" if not (md["raw"] or md["directives"]) else f"{md['raw']} raw cells"
    row["myst"] += f", {admonitions} admonitions"
    if md["raw"] or md["directives"] or not md["cells"]:
        row["problems"].append(f"MyST not rendered: {md['raw']} raw markdown cells, directive source "
                               f"shown: {sorted(set(md['directives']))}")
    if not admonitions:
        row["problems"].append("no rendered admonition")
    try:
        row["widget"] = move_widget(page, out / f"{name}-widget.png")
    except Exception as err:  # noqa: BLE001 (reported in the table)
        row["widget"] = "FAILED"
        row["problems"].append(f"widget: {err}".splitlines()[0][:300])
    row["peak_mib"] = max(row["peak_mib"], peak_mib(pid))
    if row["peak_mib"] > args.max_mib:
        row["problems"].append(f"peak memory {row['peak_mib']:.0f} MiB > {args.max_mib} MiB")

    # Save from Lab (Ctrl+S in the notebook) and compare the file with what was opened.
    page.locator(".jp-NotebookPanel .jp-Notebook").first.click(position={"x": 5, "y": 5})
    page.keyboard.press("Escape")
    page.keyboard.press("Control+s")
    deadline = time.time() + 30
    while page.evaluate(JS_STATE)["dirty"]:
        if time.time() > deadline:
            raise AssertionError("Save did not complete")
        page.wait_for_timeout(200)
    saved = (root / path).read_bytes()
    if saved == original:
        row["save"] = "byte-identical"
    else:
        row["save"] = "CHANGED"
        (out / f"{name}.saved.md").write_bytes(saved)
        row["problems"].append(f"Lab's save changed the file (saved copy: {name}.saved.md)")

    lab.api("DELETE", f"/api/sessions/{s['id']}")  # shut the kernel down
    return row


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", type=pathlib.Path, required=True, help="the Binder environment")
    parser.add_argument("--home", type=pathlib.Path, required=True, help="its HOME (postBuild ran there)")
    parser.add_argument("--out", type=pathlib.Path, default=REPO / "_build" / "binder-check")
    parser.add_argument("--max-seconds", type=float, default=60.0)
    parser.add_argument("--max-mib", type=float, default=1536.0)
    parser.add_argument("--time", choices=["cpu_s", "run_s"], default="cpu_s",
                        help="what --max-seconds limits: the kernel's CPU time during Run All on its one "
                             "core (default; the wait on an unshared core, robust to other jobs on a "
                             "busy machine) or the wall time from the click (equal on an idle machine)")
    parser.add_argument("--timeout", type=float, default=300.0, help="give up on Run All after this")
    parser.add_argument("chapters", nargs="*", help="chapter names (default: every notebook chapter)")
    args = parser.parse_args()
    if not pathlib.Path(CHROMIUM).exists():
        sys.exit(f"{CHROMIUM} is missing: install Debian's chromium (`make binder-check` does)")
    start = time.time()
    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    for old in out.glob("*.png"):
        old.unlink()
    root = out / "repo"
    copy_tree(root)
    names = args.chapters or notebook_chapters(root)
    rows = []
    with open(out / "lab.log", "w") as log, tempfile.TemporaryDirectory() as profile:
        lab = Lab(args.env.resolve(), args.home.resolve(), root, log)
        try:
            with sync_playwright() as pw:
                browser = pw.chromium.launch_persistent_context(
                    profile, executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS,
                    viewport={"width": 1400, "height": 1000})
                for name in names:
                    page = browser.new_page()
                    try:
                        row = check_chapter(page, lab, root, name, out, args)
                    except Exception as err:  # noqa: BLE001 (one chapter's failure is reported, the rest run)
                        page.screenshot(path=str(out / f"{name}.png"))
                        row = {"chapter": name, "problems": [f"{type(err).__name__}: {err}".splitlines()[0][:300]]}
                        for s in lab.api("GET", "/api/sessions"):
                            lab.api("DELETE", f"/api/sessions/{s['id']}")
                    page.close()
                    rows.append(row)
                    print(f"{name}: run {row.get('run_s') or 0:.1f} s wall, {row.get('cpu_s') or 0:.1f} s CPU, peak {row.get('peak_mib') or 0:.0f} MiB, "
                          f"{'OK' if not row['problems'] else 'FAIL: ' + ' / '.join(row['problems'])}", flush=True)
                browser.close()
        finally:
            lab.stop()
    total = time.time() - start
    write_report(out / "report.md", rows, total, args)
    print(f"binder-check: {len(rows)} chapters in {total:.0f} s; report {out / 'report.md'}")
    failed = [r["chapter"] for r in rows if r["problems"]]
    if failed:
        sys.exit(f"binder-check FAILED: {', '.join(failed)}")


def write_report(path, rows, total, args):
    lines = [
        "# Binder check",
        "",
        f"JupyterLab on one core (`taskset -c 0`), repo2docker's base environment + requirements.txt "
        f"+ postBuild; limits {args.max_seconds:.0f} s for Run All ({'kernel CPU time' if args.time == 'cpu_s' else 'wall time'}) and {args.max_mib:.0f} MiB peak kernel "
        f"memory (VmHWM). Measured {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} on "
        f"{socket.gethostname()} (load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores); "
        f"whole check {total:.0f} s.",
        "",
        "| chapter | opened | MyST | Run All, kernel CPU (s) | Run All, wall (s) | peak kernel memory (MiB) "
        "| widget | Lab save | result |",
        "|---|---|---|---:|---:|---:|---|---|---|",
    ]
    for r in rows:
        run = f"{r['run_s']:.1f}" if r.get("run_s") is not None else "-"
        cpu = f"{r['cpu_s']:.1f}" if r.get("cpu_s") is not None else "-"
        mem = f"{r['peak_mib']:.0f}" if r.get("peak_mib") is not None else "-"
        result = "OK" if not r["problems"] else "FAIL: " + "; ".join(r["problems"]).replace("|", "/")
        lines.append(f"| {r['chapter']} | {r.get('opened', '-')} | {r.get('myst', '-')} | {cpu} | {run} | {mem} | "
                     f"{r.get('widget', '-')} | {r.get('save', '-')} | {result} |")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
