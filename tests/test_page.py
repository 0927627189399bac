"""The dashboard page (engine/server/page/) in headless chromium against the real `serve` on a free port."""

from __future__ import annotations

import json
import re
import textwrap
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, expect, sync_playwright

from .conftest import CHAINS
from .server_process import Server

CHROMIUM = "/usr/bin/chromium"
HOSTILE = "<img src=x onerror=window.__pwned=1>"
WAIT_MS = 15_000  # how long a page may take to show what the server sends (a ceiling, not a measured time)

HOSTILE_CHAIN = f"""\
name: hostile
description: A chain whose tenant and payload hold markup, which the page must show as text.
weight: 1
envelope:
  tenant_id: '{HOSTILE}'
steps:
  - id: markup_sent
    event_type: test.hostile.sent.v1
    payload:
      note: '{HOSTILE}'
  - id: markup_echoed
    delay: [10, 20]
    event_type: test.hostile.echoed.v1
    outcome: echoed
    payload:
      note: 'echo {HOSTILE}'
"""


def serve(*flags: str, chains: Path = CHAINS, store: str = "memory", seed: int = 1, port: int = 0) -> Server:
    """`python -m engine serve` on loopback (a free port unless given), seeded, on a throwaway store by default."""
    return Server("--host", "127.0.0.1", "--store", store, "--seed", str(seed), "--port", str(port), *flags,
                  chains=chains)


def port_of(server: Server) -> int:
    return int(urllib.parse.urlsplit(server.url).port or 0)


def get(server: Server, path: str) -> Any:
    with urllib.request.urlopen(f"{server.api}/{path}", timeout=5) as response:
        return json.loads(response.read())


class Dashboard:
    """An open page with the errors it raised (uncaught exceptions and console errors) collected."""

    def __init__(self, browser: Browser, url: str) -> None:
        self.page: Page = browser.new_page(viewport={"width": 1400, "height": 850})
        self.errors: list[str] = []
        self.sockets: list[str] = []
        self.page.on("pageerror", lambda error: self.errors.append(f"pageerror: {error}"))
        self.page.on("console", self._console)
        self.page.on("websocket", lambda ws: self.sockets.append(ws.url))
        self.page.goto(url)
        self.rows = self.page.get_by_test_id("event-row")

    def __enter__(self) -> Dashboard:
        return self

    def __exit__(self, *exc: object) -> None:
        self.page.close()

    def _console(self, message: ConsoleMessage) -> None:
        if message.type == "error":
            self.errors.append(f"console: {message.text}")

    def unexpected_errors(self) -> list[str]:
        """The errors but those a browser logs while the server is down (refused connections, failed handshakes)."""
        return [error for error in self.errors
                if not re.search(r"ERR_CONNECTION_REFUSED|WebSocket connection to .* failed", error)]

    def wait_rows(self, count: int) -> None:
        self.page.wait_for_function(
            "n => document.querySelectorAll('[data-testid=event-row]').length >= n", arg=count, timeout=WAIT_MS)

    def first_id(self) -> str | None:
        return self.rows.first.get_attribute("data-event-id")

    def number(self, test_id: str) -> int:
        return int(self.page.get_by_test_id(test_id).inner_text().replace(",", ""))


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    with serve("--interval", "200ms", "--initial", "5") as running:
        yield running


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
        yield launched
        launched.close()


@pytest.fixture
def dashboard(browser: Browser, server: Server) -> Iterator[Dashboard]:
    with Dashboard(browser, server.url) as opened:
        yield opened


def test_events_appear_live_newest_first(dashboard: Dashboard) -> None:
    """Rows arrive from the stream while the page is open, the newest on top, and the status says connected."""
    expect(dashboard.page.get_by_test_id("connection")).to_have_attribute("data-state", "connected", timeout=WAIT_MS)
    dashboard.wait_rows(3)
    first = dashboard.first_id()
    expect(dashboard.rows.first).not_to_have_attribute("data-event-id", first or "", timeout=WAIT_MS)
    times = dashboard.page.eval_on_selector_all("[data-testid=event-row] td.time", "cells => cells.map(c => c.title)")
    assert sorted(times, reverse=True) == times
    assert [] == dashboard.errors


def test_a_chain_filter_shows_only_that_chain(dashboard: Dashboard) -> None:
    """The chain select holds the catalog; choosing one reconnects with chain=NAME and only its events show."""
    options = dashboard.page.get_by_test_id("filter-chain").locator("option")
    expect(options).to_have_count(1 + len(list(CHAINS.glob("*.yaml"))), timeout=WAIT_MS)
    dashboard.wait_rows(1)
    dashboard.page.get_by_test_id("filter-chain").select_option("agent_execution")  # applies at once
    dashboard.wait_rows(8)
    chains = dashboard.page.eval_on_selector_all("[data-testid=event-row]", "rows => rows.map(r => r.dataset.chain)")
    assert {"agent_execution"} == set(chains)
    assert "chain=agent_execution" in dashboard.sockets[-1]
    assert [] == dashboard.errors


def test_a_filter_the_server_refuses_shows_its_message(dashboard: Dashboard) -> None:
    """An event type glob too long for the server: the page shows the API's message and does not stream."""
    dashboard.wait_rows(1)
    dashboard.page.get_by_test_id("filter-event-type").fill("omninode." + "x" * 300)
    dashboard.page.get_by_test_id("filter-apply").click()
    expect(dashboard.page.get_by_test_id("error")).to_have_text(
        "event_type: the value is 309 characters long (allowed: at most 256)")
    expect(dashboard.page.get_by_test_id("connection")).to_have_attribute("data-state", "disconnected")
    expect(dashboard.rows).to_have_count(0)
    assert [e for e in dashboard.errors if "status of 400" not in e] == []  # the refused request, logged
    dashboard.page.get_by_test_id("filter-clear").click()
    expect(dashboard.page.get_by_test_id("connection")).to_have_attribute("data-state", "connected", timeout=WAIT_MS)
    expect(dashboard.page.get_by_test_id("error")).to_be_hidden()
    dashboard.wait_rows(1)


def test_pause_holds_new_rows_and_resume_shows_them(dashboard: Dashboard) -> None:
    """Paused, the page counts new events without adding rows; resumed, the held events are shown."""
    dashboard.wait_rows(3)
    dashboard.page.get_by_test_id("pause").click()
    first, count = dashboard.first_id(), dashboard.rows.count()
    expect(dashboard.page.get_by_test_id("counts")).to_have_text(re.compile(r"paused: ([3-9]|\d\d+) new"),
                                                                 timeout=WAIT_MS)
    held = int(re.findall(r"paused: (\d+) new", dashboard.page.get_by_test_id("counts").inner_text())[0])
    assert (first, count) == (dashboard.first_id(), dashboard.rows.count())
    dashboard.page.get_by_test_id("pause").click()
    expect(dashboard.rows.first).not_to_have_attribute("data-event-id", first or "", timeout=WAIT_MS)
    assert dashboard.rows.count() >= count + held
    assert [] == dashboard.errors


def test_clicking_a_row_shows_its_chain_in_causal_order(dashboard: Dashboard, server: Server) -> None:
    """A finished agent_execution row opens its chain: name, status, outcome and the four steps in causal order."""
    newest = dashboard.page.locator("[data-event-type='omninode.agent.execution.completed.v1']").first
    newest.wait_for(timeout=WAIT_MS)
    row = dashboard.page.locator(f"[data-event-id='{newest.get_attribute('data-event-id')}']")  # not a later one
    correlation_id = row.get_attribute("data-correlation-id")
    row.click()
    detail = dashboard.page.get_by_test_id("chain-detail")
    expect(detail).to_be_visible()
    expect(dashboard.page.get_by_test_id("detail-id")).to_have_text(correlation_id or "")
    expect(dashboard.page.get_by_test_id("detail-name")).to_have_text("agent_execution")
    expect(dashboard.page.get_by_test_id("detail-status")).to_have_text("finished")
    expect(dashboard.page.get_by_test_id("detail-outcome")).to_have_text("completed")
    steps = dashboard.page.get_by_test_id("detail-event")
    expect(steps).to_have_count(4)
    shown = [steps.nth(i).get_attribute("data-event-id") for i in range(4)]
    events = get(server, f"chains/{correlation_id}")["events"]
    assert [event["event_id"] for event in events] == shown
    assert [None, *shown[:-1]] == [event["causation_id"] for event in events]
    assert ["routing_requested", "routing_completed", "execution_started", "execution_completed"] == [
        steps.nth(i).get_attribute("data-step") for i in range(4)]
    expect(steps.first.locator(".offset")).to_have_text("+0 ms")
    assert [] == dashboard.errors


def test_statistics_appear_and_grow(dashboard: Dashboard) -> None:
    """The statistics panel shows the totals and per-chain figures, and its event count goes up as events come."""
    total = dashboard.page.get_by_test_id("stat-total-events")
    expect(total).to_have_text(re.compile(r"^[1-9][\d,]*$"), timeout=WAIT_MS)
    before = dashboard.number("stat-total-events")
    dashboard.page.wait_for_function(
        "n => Number(document.querySelector('[data-testid=stat-total-events]').textContent.replace(/,/g, '')) > n",
        arg=before, timeout=WAIT_MS)
    expect(dashboard.page.get_by_test_id("stat-total-chains")).to_have_text(re.compile(r"^[1-9][\d,]*$"))
    expect(dashboard.page.get_by_test_id("stat-eps-1m")).to_have_text(re.compile(r"^\d+\.\d$"))
    agent = dashboard.page.locator("[data-testid=stat-chain][data-chain=agent_execution]")
    expect(agent).to_contain_text(re.compile(r"completed [1-9]"), timeout=WAIT_MS)
    expect(agent.locator("td.num").nth(1)).to_have_text(re.compile(r"^\d+(\.\d+)? m?s$"))  # p50
    assert [] == dashboard.errors


def test_stopping_and_starting_the_generator_changes_its_status(dashboard: Dashboard) -> None:
    """Stop turns the generator's status to stopped, start (with the page's interval and initial) back to running."""
    status = dashboard.page.get_by_test_id("generator-status")
    expect(status).to_have_attribute("data-state", "running", timeout=WAIT_MS)
    expect(dashboard.page.get_by_test_id("interval-ms")).to_have_value("200")  # the server's --interval
    dashboard.page.get_by_test_id("generator-stop").click()
    expect(status).to_have_attribute("data-state", "stopped", timeout=WAIT_MS)
    expect(status).to_have_text("generator: stopped")
    dashboard.page.get_by_test_id("interval-ms").fill("200")
    dashboard.page.get_by_test_id("initial-chains").fill("5")
    dashboard.page.get_by_test_id("generator-start").click()
    expect(status).to_have_attribute("data-state", "running", timeout=WAIT_MS)
    expect(dashboard.page.get_by_test_id("error")).to_be_hidden()
    assert [] == dashboard.errors


def test_the_token_field_is_sent_to_a_server_that_needs_one(browser: Browser) -> None:
    """Without the token, stop shows the server's message and the generator runs on; with it, stop works."""
    with serve("--interval", "200ms", "--initial", "5", "--token", "s3cret") as guarded, \
            Dashboard(browser, guarded.url) as dashboard:
        status = dashboard.page.get_by_test_id("generator-status")
        expect(status).to_have_attribute("data-state", "running", timeout=WAIT_MS)
        expect(dashboard.page.get_by_test_id("token")).to_have_attribute("placeholder", "token (required)")
        dashboard.page.get_by_test_id("generator-stop").click()
        expect(dashboard.page.get_by_test_id("error")).to_contain_text("this server's control endpoints need its token")
        expect(status).to_have_attribute("data-state", "running")
        dashboard.page.get_by_test_id("token").fill("s3cret")
        dashboard.page.get_by_test_id("generator-stop").click()
        expect(status).to_have_attribute("data-state", "stopped", timeout=WAIT_MS)
        expect(dashboard.page.get_by_test_id("error")).to_be_hidden()
        assert [e for e in dashboard.errors if "401" not in e] == []  # the refused POST is logged by the browser


def test_markup_in_events_is_shown_as_text(browser: Browser, tmp_path: Path) -> None:
    """A tenant and a payload holding an <img onerror> tag appear as text: no element is made, no script runs."""
    chains = tmp_path / "chains"
    chains.mkdir()
    (chains / "hostile.yaml").write_text(textwrap.dedent(HOSTILE_CHAIN), encoding="utf-8")
    with serve("--interval", "200ms", "--initial", "2", chains=chains) as hostile, \
            Dashboard(browser, hostile.url) as dashboard:
        dashboard.wait_rows(2)
        expect(dashboard.rows.first.locator("td").nth(4)).to_have_text(HOSTILE)
        dashboard.rows.first.click()
        expect(dashboard.page.get_by_test_id("detail-payload").first).to_contain_text(HOSTILE)
        assert 0 == dashboard.page.locator("img").count()
        assert dashboard.page.evaluate("window.__pwned") is None
        dashboard.page.get_by_test_id("filter-tenant").fill(HOSTILE)
        dashboard.page.get_by_test_id("filter-apply").click()
        dashboard.wait_rows(2)
        assert {HOSTILE} == set(dashboard.page.eval_on_selector_all(
            "[data-testid=event-row]", "rows => rows.map(r => r.dataset.tenant)"))
        assert 0 == dashboard.page.locator("img").count()
        assert [] == dashboard.errors


def test_a_page_too_slow_to_read_is_told_how_many_events_it_lost(browser: Browser) -> None:
    """A page whose script is busy for seconds at 2,000 events/s falls behind its 50-message queue on the server:
    it shows the dropped count from the control messages."""
    with serve("--rate", "2000 events/s", "--client-queue", "50") as fast, Dashboard(browser, fast.url) as dashboard:
        dashboard.wait_rows(50)
        dashboard.page.evaluate("() => { const until = Date.now() + 3000; while (Date.now() < until); }")
        expect(dashboard.page.get_by_test_id("dropped")).to_have_text(
            re.compile(r"^[1-9][\d,]* events dropped \(too slow\)$"), timeout=WAIT_MS)
        assert [] == dashboard.unexpected_errors()


def test_a_dropped_connection_resumes_after_the_last_event(browser: Browser, tmp_path: Path) -> None:
    """The server goes away and comes back on the same store: the page says reconnecting, then reconnects with
    since=<the last event_id it got> and goes on with no event twice."""
    store = f"sqlite:{tmp_path / 'events.db'}"
    with serve("--interval", "200ms", "--initial", "5", store=store) as first, \
            Dashboard(browser, first.url) as dashboard:
        connection = dashboard.page.get_by_test_id("connection")
        expect(connection).to_have_attribute("data-state", "connected", timeout=WAIT_MS)
        dashboard.wait_rows(5)
        first.stop()
        expect(connection).to_have_attribute("data-state", "reconnecting", timeout=WAIT_MS)
        last = dashboard.first_id()
        # another seed: the same one would make the same event ids again
        with serve("--interval", "200ms", "--initial", "5", store=store, port=port_of(first), seed=2):
            expect(connection).to_have_attribute("data-state", "connected", timeout=WAIT_MS)
            expect(dashboard.rows.first).not_to_have_attribute("data-event-id", last or "", timeout=WAIT_MS)
            assert f"since={last}" in dashboard.sockets[-1]
            shown = dashboard.page.eval_on_selector_all("[data-testid=event-row]",
                                                        "rows => rows.map(r => r.dataset.eventId)")
            assert len(set(shown)) == len(shown)
            assert 0 == dashboard.page.get_by_test_id("note-row").count()
        assert [] == dashboard.unexpected_errors()


def test_a_server_that_cannot_resume_is_followed_live(browser: Browser) -> None:
    """A server restarted on a fresh memory store does not know the last event: the page notes it and goes live."""
    with serve("--interval", "200ms", "--initial", "5") as first, Dashboard(browser, first.url) as dashboard:
        connection = dashboard.page.get_by_test_id("connection")
        dashboard.wait_rows(5)
        first.stop()
        expect(connection).to_have_attribute("data-state", "reconnecting", timeout=WAIT_MS)
        with serve("--interval", "200ms", "--initial", "5", port=port_of(first), seed=2):
            expect(dashboard.page.get_by_test_id("note-row")).to_have_text(
                "could not resume after the last event received: live events from now on", timeout=WAIT_MS)
            expect(connection).to_have_attribute("data-state", "connected", timeout=WAIT_MS)
            expect(dashboard.rows.first).to_be_visible()
            assert "since=" not in dashboard.sockets[-1]
        assert [] == dashboard.unexpected_errors()


def test_the_page_looks_right(dashboard: Dashboard) -> None:
    """A screenshot of a busy page with a chain opened, for a person to look at (/tmp/page.png)."""
    dashboard.wait_rows(20)
    dashboard.rows.nth(2).click()
    expect(dashboard.page.get_by_test_id("detail-event").first).to_be_visible()
    expect(dashboard.page.get_by_test_id("stat-chain").first).to_be_visible(timeout=WAIT_MS)
    dashboard.page.screenshot(path="/tmp/page.png")
    assert [] == dashboard.errors
