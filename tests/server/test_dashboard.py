"""The dashboard in a real browser (Playwright driving Debian's chromium) against a real team server.

A member logs in through the form, watches a job she submitted appear, run (live log, metric charts)
and succeed, and cancels a second one with the Cancel button; a viewer sees no Cancel button and the
API refuses his cancel. Jobs wait for files the test creates, never for wall-clock time. Screenshots go
to $SUANLI_SCREENSHOTS when it is set (docs/img), else to the test's tmp folder.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

PASSWORD = "correct horse battery"  # every test user's (conftest.py makes the team)
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
WAIT_MS = 120_000  # only a safety net: every wait below is for an event (a loaded machine is slow)
VIEWPORT = {"width": 1280, "height": 800}


def _unavailable(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(reason)
    pytest.skip(reason)


@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).exists():
        _unavailable(f"{CHROMIUM} is missing (apt-get install chromium)")
    try:
        from playwright.sync_api import expect, sync_playwright
    except ImportError:
        _unavailable("playwright is not installed (pip install playwright)")
    expect.set_options(timeout=WAIT_MS)
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    folder = Path(os.environ.get("SUANLI_SCREENSHOTS") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


class Watch:
    """A page's script errors and console errors (a CSP violation is one): none are expected."""

    def __init__(self, page) -> None:
        self.errors: list[str] = []
        page.on("pageerror", lambda e: self.errors.append(f"pageerror: {e}"))
        page.on("console", self._console)

    def _console(self, msg) -> None:
        # A refused request is logged by the browser itself; the page shows its error line.
        if msg.type == "error" and not msg.text.startswith("Failed to load resource"):
            self.errors.append(f"console: {msg.text}")


def new_page(browser):
    context = browser.new_context(viewport=VIEWPORT)
    context.set_default_timeout(WAIT_MS)
    page = context.new_page()
    return context, page, Watch(page)


def log_in(page, url: str, user: str, hash_: str = "#/jobs") -> None:
    from playwright.sync_api import expect

    page.goto(f"{url}/{hash_}")
    page.get_by_test_id("login-user").fill(user)
    page.get_by_test_id("login-password").fill(PASSWORD)
    page.get_by_test_id("login-submit").click()
    expect(page.get_by_test_id("who-user")).to_have_text(user)


def submit(server, user: str, spec: dict) -> int:
    status, doc = server.call("POST", "/api/jobs", server.tokens[user], {"spec": spec})
    assert status == 200, doc
    return doc["id"]


def waits_for(path: Path) -> str:
    """A bash loop that ends when `path` exists (the job's clock, not the test's)."""
    return f"while [ ! -e '{path}' ]; do sleep 0.1; done"


def test_member_watches_a_job_and_cancels_another_viewer_cannot(team_server, browser, shots, tmp_path):
    from playwright.sync_api import expect

    server = team_server
    status, _ = server.call("GET", "/")
    assert status == 200
    context, page, watch = new_page(browser)

    # ---- ana logs in through the form and watches her job in the list -------------------------
    log_in(page, server.url, "ana")
    expect(page.get_by_test_id("who-role")).to_have_text("member")
    expect(page.get_by_test_id("who-project")).to_have_text("vision")
    expect(page.get_by_test_id("jobs")).to_be_visible()

    go = tmp_path / "go"
    train = submit(
        server,
        "ana",
        {
            "name": "dash-train",
            "resources": {"cpus": 1},
            "run": "\n".join(
                [
                    "echo 'hello from the dashboard test'",
                    """echo '{"metric": "loss", "value": 0.9, "step": 1}'""",
                    """echo '{"metrics": {"loss": 0.5, "accuracy": 0.6}, "step": 2}'""",
                    """echo '{"metrics": {"loss": 0.4, "accuracy": 0.7}, "step": 3}'""",
                    waits_for(go),
                    """echo '{"metrics": {"loss": 0.2, "accuracy": 0.9}, "step": 4}'""",
                    "echo 'training done <b>not bold</b>'",
                ]
            ),
        },
    )
    row = page.get_by_test_id(f"job-row-{train}")
    expect(row).to_be_visible()  # the first page follows new jobs by itself
    expect(row).to_contain_text("dash-train")
    row.get_by_test_id("job-link").click()

    # ---- its page: running, the live log, the metric charts, then SUCCEEDED --------------------
    expect(page).to_have_url(re.compile(rf"#/jobs/{train}$"))
    job_status = page.get_by_test_id("job-status")
    expect(job_status).to_have_text("RUNNING")
    log = page.get_by_test_id("job-log")
    expect(log).to_contain_text("hello from the dashboard test")
    expect(page.get_by_test_id("log-state")).to_have_text("live")
    expect(page.get_by_test_id("metric-loss").locator("canvas")).to_be_visible()
    expect(page.get_by_test_id("metric-accuracy").locator("canvas")).to_be_visible()
    expect(page.get_by_test_id("metric-loss")).to_have_attribute("data-points", "3")  # steps 1-3
    expect(page.get_by_test_id("cancel-job")).to_be_visible()  # her own job: she may cancel it
    go.touch()
    expect(job_status).to_have_text("SUCCEEDED")
    expect(log).to_contain_text("training done <b>not bold</b>")  # shown as text, never as markup
    expect(page.get_by_test_id("log-state")).to_have_text(re.compile("ended"))
    expect(page.get_by_test_id("job-reason")).to_have_text("exited with code 0")
    expect(page.get_by_test_id("attempts-table").locator("tbody tr")).to_have_count(1)
    expect(page.get_by_test_id("cancel-job")).to_have_count(0)  # nothing to cancel any more
    expect(page.get_by_test_id("resubmit-job")).to_be_visible()
    expect(page.get_by_test_id("events-table")).to_contain_text("SUCCEEDED")
    expect(page.get_by_test_id("metric-loss")).to_have_attribute("data-points", "4")
    expect(page.get_by_test_id("metric-accuracy")).to_have_attribute("data-points", "3")  # steps 2-4
    assert page.locator("pre b").count() == 0
    page.screenshot(path=str(shots / "dashboard-job.png"), full_page=True)

    page.get_by_test_id("nav-jobs").click()
    expect(row.get_by_test_id("status")).to_have_text("SUCCEEDED")

    # ---- a job that waits forever, and one that waits for the whole node behind it -------------
    never = tmp_path / "never"
    long_job = submit(
        server,
        "ana",
        {"name": "dash-long", "resources": {"cpus": 1}, "run": f"echo waiting; {waits_for(never)}"},
    )
    page.goto(f"{server.url}/#/jobs/{long_job}")
    expect(job_status).to_have_text("RUNNING")
    expect(log).to_contain_text("waiting")

    status, doc = server.call("GET", "/api/nodes", server.tokens["ana"])
    assert status == 200, doc
    node = doc["nodes"][0]
    blocked = submit(
        server,
        "ana",
        {"name": "dash-blocked", "resources": {"cpus": node["cpus"]}, "run": waits_for(never)},
    )
    try:
        page.get_by_test_id("nav-queue").click()
        queued = page.get_by_test_id(f"queue-row-{blocked}")
        expect(queued).to_be_visible()
        expect(queued.get_by_test_id("queue-reason")).not_to_be_empty()
        page.screenshot(path=str(shots / "dashboard-queue.png"), full_page=True)

        page.get_by_test_id("nav-nodes").click()
        node_row = page.get_by_test_id(f"node-{node['name']}")
        expect(node_row.get_by_role("link", name=f"job {long_job}")).to_be_visible()
        expect(page.get_by_test_id("owner-vision")).to_be_visible()  # ana's project is taking CPU-hours
        page.screenshot(path=str(shots / "dashboard-nodes.png"), full_page=True)

        # ---- ana cancels the long job with the button --------------------------------------------
        page.goto(f"{server.url}/#/jobs/{long_job}")
        expect(job_status).to_have_text("RUNNING")
        page.get_by_test_id("cancel-job").click()
        page.get_by_test_id("confirm-cancel").click()
        expect(job_status).to_have_text("CANCELLED")
        expect(page.get_by_test_id("cancel-job")).to_have_count(0)
        status, doc = server.call("GET", f"/api/jobs/{long_job}", server.tokens["ana"])
        assert doc["status"] == "CANCELLED", doc
        page.get_by_test_id("nav-jobs").click()
        expect(page.get_by_test_id(f"job-row-{long_job}").get_by_test_id("status")).to_have_text("CANCELLED")
        expect(page.get_by_test_id("jobs-table").locator("tbody tr")).to_have_count(3)
        page.screenshot(path=str(shots / "dashboard-jobs.png"), full_page=True)

        # ---- vic (viewer) sees the blocked job live but no Cancel button; the API refuses him -----
        page.goto(f"{server.url}/#/jobs/{blocked}")
        expect(page.get_by_test_id("cancel-job")).to_be_visible()  # ana may: the button is there
        vic_context, vic_page, vic_watch = new_page(browser)
        log_in(vic_page, server.url, "vic", f"#/jobs/{blocked}")
        expect(vic_page.get_by_test_id("who-role")).to_have_text("viewer")
        expect(vic_page).to_have_url(re.compile(rf"#/jobs/{blocked}$"))
        expect(vic_page.get_by_test_id("job-status")).to_have_text(re.compile("^(PENDING|RUNNING)$"))
        expect(vic_page.get_by_test_id("job-facts")).to_contain_text("ana")
        expect(vic_page.get_by_test_id("cancel-job")).to_have_count(0)
        expect(vic_page.get_by_test_id("resubmit-job")).to_have_count(0)
        status, doc = server.call("POST", f"/api/jobs/{blocked}/cancel", server.tokens["vic"])
        assert status == 403, doc
        assert "may not" in doc["error"], doc
        assert not vic_watch.errors, vic_watch.errors
        vic_context.close()
    finally:
        status, doc = server.call("POST", f"/api/jobs/{blocked}/cancel?wait=true", server.tokens["ana"])
        assert status == 200, doc

    # ---- usage: charts per user and project, and the quotas against their limits ----------------
    for path, body in [
        ("/api/quotas/user/ana", {"gpu_hours": 100, "period": "month"}),
        ("/api/quotas/project/vision", {"gpus": 8, "gpu_hours": 500, "cost_usd": 1000, "period": "month"}),
    ]:
        status, doc = server.call("PUT", path, server.tokens["root"], body)
        assert status == 200, doc
    page.get_by_test_id("nav-usage").click()
    expect(page.get_by_test_id("quota-user-ana")).to_be_visible()
    expect(page.get_by_test_id("quota-project-vision")).to_contain_text("1000")
    expect(page.get_by_test_id("usage-user-gpu_hours").locator("canvas")).to_be_visible()
    expect(page.get_by_test_id("usage-project-cost_usd").locator("canvas")).to_be_visible()
    expect(page.get_by_test_id("usage-user-totals")).to_contain_text("ana")
    page.screenshot(path=str(shots / "dashboard-usage.png"), full_page=True)

    # ---- log out: the form comes back and the token no longer works -----------------------------
    token = page.evaluate("sessionStorage.getItem('suanli.token')")
    assert token
    page.get_by_test_id("logout").click()
    expect(page.get_by_test_id("login-form")).to_be_visible()
    assert page.evaluate("sessionStorage.getItem('suanli.token')") is None
    assert server.call("GET", "/api/whoami", token)[0] == 401
    assert not watch.errors, watch.errors
    context.close()
