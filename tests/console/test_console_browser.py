"""The console's acceptance in a browser: Playwright driving Debian's headless Chromium against a running stack
(sandbox over HTTP, receiver, a real worker process, a push target). Log in, the overview's numbers equal
`exact-pipeline status --json`, a sink outage makes a dead letter, its Replay button delivers it. Screenshots go to
$TEST_ARTIFACTS (default tests/artifacts/)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, sync_playwright
from sqlalchemy import select

from delivery.models import Delivery, DeliveryState
from tests.console.support import TOKEN, console_settings, serve_console
from tests.pipeline.harness import Pipeline
from tests.pipeline.push_support import await_true

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = Path(os.environ.get("TEST_ARTIFACTS") or Path(__file__).parents[1] / "artifacts") / "console"


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: run scripts/install (it installs Debian's chromium)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(30_000)
    yield page
    context.close()


def shot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def status_json(pipeline: Pipeline) -> dict[str, Any]:
    done = subprocess.run(
        [str(Path(sys.executable).parent / "exact-pipeline"), "status", "--json"],
        env=pipeline.settings.child_environment(os.environ),
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    report: dict[str, Any] = json.loads(done.stdout)
    return report


def at(report: Any, path: str) -> Any:
    for part in path.split("/"):
        report = report[int(part)] if isinstance(report, list) and part.isdigit() else report[part]
    return report


def shown_numbers(page: Page) -> dict[str, str]:
    cells = page.locator("[data-status]")
    return {cells.nth(i).get_attribute("data-status") or "": cells.nth(i).inner_text() for i in range(cells.count())}


def expected(report: dict[str, Any], path: str) -> str:
    if path == "subscriptions/count":
        return str(len(report["subscriptions"]))
    if path == "subscriptions/silent":
        return str(sum(1 for s in report["subscriptions"] if s["silent"]))
    return str(at(report, path))


def test_log_in_read_the_overview_and_replay_a_dead_letter_from_its_page(pipeline: Pipeline, page: Page) -> None:
    # One attempt, so the outage makes a dead letter at once.
    pipeline.settings = console_settings(pipeline.settings).model_copy(update={"delivery_max_attempts": 1})
    pipeline.service.register([101], ["Accounts"])
    pipeline.start_worker()
    # The first webhook's walk reads the division's seeded accounts too: all delivered before the sink goes down.
    made = pipeline.control("POST", "records/101/crm/Accounts", json={"Name": "console"}).json()["record"]["ID"]
    key = made.lower()
    pipeline.await_level([(101, "Accounts")])
    pipeline.push.down = True
    changed = pipeline.control("PUT", f"records/101/crm/Accounts/{made}", json={"Name": "console, changed"})
    assert changed.status_code == 200

    def dead() -> list[Delivery]:
        with pipeline.sessions() as session:
            query = select(Delivery).where(Delivery.key == key, Delivery.state == DeliveryState.DEAD)
            return list(session.scalars(query))

    await_true(lambda: bool(dead()), what="a dead letter")
    [letter] = dead()

    with serve_console(pipeline.settings) as console:
        page.goto(f"{console.url}/console")
        assert page.url.endswith("/console/login")  # no cookie: the login
        page.fill("#token", TOKEN)
        page.click("#login")
        page.wait_for_url(f"{console.url}/console")
        shot(page, "overview")

        shown = shown_numbers(page)
        report = status_json(pipeline)
        assert "dead_letters/count" in shown
        assert "budgets/0/day_used" in shown
        assert {path: expected(report, path) for path in shown} == shown
        assert shown["dead_letters/count"] == "1"
        assert report["needs_attention"] is True
        assert page.inner_text("#needs-attention") == "needs attention"
        assert "1 dead letter(s)" in page.inner_text("#attention")

        page.click("nav >> text=Dead letters")
        row = page.locator(f'[data-dead-letter="{letter.id}"]')
        assert "503" in row.inner_text()
        shot(page, "dead-letters")
        pipeline.push.down = False  # the sink is back
        page.click(f"#replay-{letter.id}")
        assert page.inner_text("#replayed") == "Replayed 1 dead letter(s)."

        await_true(lambda: letter.event_id in pipeline.push.ids(), what="the push of the replayed version")
        assert pipeline.push.latest()[(101, "Accounts", key)]["Name"] == "console, changed"  # type: ignore[index]

        def delivered() -> bool:
            with pipeline.sessions() as session:
                row = session.get(Delivery, letter.id)
                return row is not None and row.state == DeliveryState.DELIVERED

        await_true(delivered, what="the delivery row delivered")
        page.goto(f"{console.url}/console/deadletters")
        assert page.is_visible("#no-dead-letters")
        shot(page, "dead-letters-replayed")

        page.goto(f"{console.url}/console/records?division=101&topic=Accounts&key={key}")
        kinds = page.locator("#trace [data-kind]")
        summaries = [kinds.nth(i).inner_text() for i in range(kinds.count())]
        assert any(f"http: version {letter.version} delivered" in s for s in summaries), summaries
        shot(page, "record-trace")
