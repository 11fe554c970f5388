"""End to end in a real browser: JupyterLab opens 07_inspector, runs it, and the chart follows the session.

Starts ``jupyter lab`` on 127.0.0.1 (a free port, a token, no browser) on the work folder
``make lab`` makes (:func:`mcrl_kit.lab.workspace`, copies of the series) in a temporary root, drives it with Python
playwright in headless Chromium (``/usr/bin/chromium``; never ``playwright install``),
runs all cells, picks another session in the inspector's dropdown and checks that the
plotly chart's title now names that session. A screenshot goes to
``build/screenshots/`` (ignored). Without Chromium the test skips — or fails, when
``MCRL_REQUIRE_BROWSER=1`` (CI installs Chromium and sets it).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from mcrl_kit import paths
from mcrl_kit.lab import lab_command, workspace

pytestmark = [pytest.mark.browser, pytest.mark.slow]

CHROMIUM_ARGS = ["--no-sandbox", "--headless", "--disable-background-networking", "--disable-component-update",
                 "--disable-gpu", "--no-first-run"]
NOTEBOOK = "07_inspector.ipynb"


def _chromium() -> str:
    path = shutil.which("chromium") or ("/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None)
    problem = None
    if path is None:
        problem = "chromium is not installed (apt-get install -y chromium)"
    else:
        try:
            import playwright.sync_api  # noqa: F401
        except ImportError:
            problem = "python playwright is not installed"
    if problem:
        if os.environ.get("MCRL_REQUIRE_BROWSER") == "1":
            pytest.fail(f"MCRL_REQUIRE_BROWSER=1 but {problem}")
        pytest.skip(problem)
    return path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str, token: str):
    req = urllib.request.Request(url, headers={"Authorization": f"token {token}"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        return json.loads(resp.read())


def _wait(predicate, timeout: float, what: str, interval: float = 0.5):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(Exception):
            value = predicate()
            if value:
                return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


@pytest.fixture
def lab(tmp_path):
    """A JupyterLab server over the work folder ``make lab`` makes, in a temporary root."""
    root, _, _ = workspace(tmp_path / "root")
    port, token = _free_port(), secrets.token_hex(16)
    env = {
        **os.environ,
        "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime"),
        "JUPYTERLAB_SETTINGS_DIR": str(tmp_path / "settings"),
        "JUPYTERLAB_WORKSPACES_DIR": str(tmp_path / "workspaces"),
    }
    # no "get notified about Jupyter news?" toast over the screenshots
    news = tmp_path / "settings" / "@jupyterlab" / "apputils-extension" / "notification.jupyterlab-settings"
    news.parent.mkdir(parents=True)
    news.write_text(json.dumps({"fetchNews": "false"}))
    log = open(tmp_path / "lab.log", "w")
    proc = subprocess.Popen(  # make lab's command line, with a token and without news or update checks
        [*lab_command(root, port, browser=False), f"--IdentityProvider.token={token}", "--ServerApp.port_retries=0",
         "--allow-root", "--LabApp.news_url=", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"],
        cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        _wait(lambda: proc.poll() is None and _get(f"{base}/api/status", token), 90, "the JupyterLab server")
        yield base, token, tmp_path / "lab.log"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
        if proc.returncode not in (0, -15, None) and os.environ.get("MCRL_BROWSER_LOG"):
            print((tmp_path / "lab.log").read_text())


def _kernel_idle(base: str, token: str) -> bool:
    kernels = _get(f"{base}/api/kernels", token)
    return bool(kernels) and all(k["execution_state"] == "idle" for k in kernels)


def test_inspector_in_jupyterlab(lab):
    from playwright.sync_api import expect, sync_playwright

    chromium = _chromium()
    base, token, log = lab
    tracked = {p.name: p.read_bytes() for p in paths.notebooks_dir().glob("*.ipynb")}
    shots = paths.build_dir() / "screenshots"
    shots.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS, headless=True)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.set_default_timeout(60_000)
        try:
            page.goto(f"{base}/lab/tree/notebooks/{NOTEBOOK}?token={token}")
            page.locator(".jp-Notebook").first.wait_for()
            _wait(lambda: _kernel_idle(base, token), 120, "the python3 kernel to be idle")

            # Run → Run All Cells
            page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(r"^Run$")).click()
            page.locator(".lm-Menu-itemLabel", has_text=re.compile(r"^Run All Cells$")).click()

            # the panel's chart (inside the widget), once every cell has run
            chart_title = page.locator(".widget-output .js-plotly-plot .gtitle").first
            chart_title.wait_for(timeout=600_000)
            _wait(lambda: page.locator(".jp-InputArea-prompt", has_text="[*]").count() == 0 and _kernel_idle(base, token),
                  600, "Run All to finish")
            errors = page.locator(".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']")
            assert page.locator(".jp-RenderedText", has_text="Traceback").count() == 0, errors.all_inner_texts()

            before = chart_title.text_content()
            assert before.startswith("session "), before
            select = page.locator(".widget-dropdown select").first
            select.evaluate("e => e.scrollIntoView({block: 'start'})")  # the panel's top in the screenshot
            page.screenshot(path=str(shots / "07_inspector_before.png"), full_page=False)
            options = select.locator("option").all_text_contents()
            current = select.input_value()
            target = next(o for o in options if not before.startswith(f"session {o}:"))
            values = select.locator("option").evaluate_all("os => os.map(o => [o.value, o.textContent])")
            target_value = next(v for v, text in values if text == target)
            assert target_value != current
            select.select_option(value=target_value)

            expect(chart_title).to_have_text(re.compile(rf"^session {target}:"), timeout=60_000)
            assert chart_title.text_content() != before
            # the table below the chart follows too
            expect(page.locator(".widget-html-content").filter(has_text=f"session {target} (")).to_have_count(1)

            # the slider (1-based, like the status line) moves the panel to the next session of the list
            position = options.index(target) + 1
            page.locator(".widget-slider .noUi-handle").first.focus()
            page.keyboard.press("ArrowRight")
            following = options[position]  # the 0-based index of the next session
            expect(chart_title).to_have_text(re.compile(rf"^session {following}:"), timeout=60_000)
            expect(page.locator(".widget-html-content").filter(has_text=f"({position + 1} of {len(options)} ")).to_have_count(1)
            select.evaluate("e => e.scrollIntoView({block: 'start'})")
            page.screenshot(path=str(shots / "07_inspector_after.png"), full_page=False)
        except Exception:
            page.screenshot(path=str(shots / "07_inspector_failure.png"))
            raise
        finally:
            browser.close()
    # running (and JupyterLab's autosave) wrote into the work copies only
    assert {p.name: p.read_bytes() for p in paths.notebooks_dir().glob("*.ipynb")} == tracked
    # the kernel's messages were encrypted (make lab provisions CurveZMQ keys): no plain-TCP warning in the server log
    text = log.read_text()
    assert "Kernel started" in text and "without encryption" not in text, text[-2000:]
