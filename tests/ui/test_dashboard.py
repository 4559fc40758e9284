"""The dashboard in a real browser (issue 15): Debian's headless chromium, driven by Playwright, signs in
with a token, opens a running multi-scale study and sees its charts and trial table drawn from the
study's REST data, then sees them update as a worker reports more. A screenshot is written to the test's
output folder, or to ``$SCALELADDER_UI_SCREENSHOT`` (``docs/img/dashboard.png`` is made that way)."""

from __future__ import annotations

import contextlib
import math
import os
import shutil
from collections import defaultdict
from pathlib import Path

import pytest

from tests.ui.workload import SPEC, run_trials

pytestmark = pytest.mark.slow

# Debian's package (apt-get install chromium); Playwright's own browser downloads need the internet
CHROMIUM = os.environ.get("SCALELADDER_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (the test extra)")
if not Path(CHROMIUM).exists():
    pytest.skip(f"no chromium at {CHROMIUM}: apt-get install chromium chromium-driver (.ci/run does)",
                allow_module_level=True)

#: how long the page may take to show what the API already has (it polls every 3 s)
WAIT_MS = 30_000


@pytest.fixture
def browser_page():
    with sync_api.sync_playwright() as p:
        # --no-sandbox: CI runs as root, where chromium refuses its sandbox
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("response", lambda r: errors.append(f"{r.status} {r.url}") if r.status >= 400 else None)
        page.errors = errors
        try:
            yield page
        finally:
            browser.close()


def _sign_in(page, url: str, token: str) -> None:
    page.goto(f"{url}/ui")
    page.fill("#token", token)
    page.click("#sign-in-form button[type=submit]")


def _wait_rows(page, n: int) -> None:
    page.wait_for_function(f"document.querySelectorAll('#trial-rows tr').length === {n}", timeout=WAIT_MS)


def test_a_wrong_token_is_refused(sqlite_server, browser_page):
    _sign_in(browser_page, sqlite_server.url, "sl_not-a-token")
    sync_api.expect(browser_page.locator("#sign-in-error")).to_contain_text("Token refused", timeout=WAIT_MS)
    assert browser_page.locator("#studies").is_hidden()


def test_dashboard_draws_a_running_study_from_its_rest_data(sqlite_server, browser_page, tmp_path):
    client = sqlite_server.client("dashboard")
    study = client.create_study(SPEC)
    assert run_trials(client, study.id, 8) == 8
    page = browser_page
    _sign_in(page, sqlite_server.url, sqlite_server.token("dashboard"))

    # the tenant's studies, with state and progress from the REST API's own progress
    row = page.locator(f"#study-rows tr[data-study-id='{study.id}']")
    sync_api.expect(row).to_contain_text("running", timeout=WAIT_MS)
    fraction = study.progress().fraction_done
    sync_api.expect(row).to_contain_text(f"{100 * fraction:.1f}%", timeout=WAIT_MS)
    row.locator("a").click()

    trials = study.trials()
    _wait_rows(page, len(trials))
    measurements = [m for t in trials for m in client.get_trial(t.id).measurements()]
    finite = [m for m in measurements if math.isfinite(m.value)]
    assert finite

    # learning curves: one series per trial that reported, every finite measurement drawn, coloured by size
    curves = page.locator("#chart-curves svg .series")
    assert curves.count() == len({m.trial_id for m in finite})
    assert int(page.locator("#chart-curves svg").get_attribute("data-points")) == len(finite)
    assert set(curves.evaluate_all("gs => gs.map(g => g.dataset.group)")) == {t.size for t in trials if t.last_step}
    sync_api.expect(page.locator("#chart-curves .legend")).to_contain_text("l (target)")

    # budget per size: the cost of each size's measurements
    size_of = {t.id: t.size for t in trials}
    cost: dict[str, float] = defaultdict(float)
    for m in measurements:
        cost[size_of[m.trial_id]] += m.cost
    bars = page.locator("#chart-budget svg .bar")
    drawn = dict(zip(bars.evaluate_all("gs => gs.map(g => g.dataset.series)"),
                     map(float, bars.evaluate_all("gs => gs.map(g => g.dataset.value)"))))
    assert drawn.keys() == {s["name"] for s in SPEC["fidelity"]["sizes"]}
    for size, value in drawn.items():
        assert value == pytest.approx(cost[size], rel=1e-9, abs=1e-12), size

    # the recommendation: predicted value at the target and its uncertainty
    rec = study.recommendation()
    assert rec.predicted is not None and rec.std is not None
    shown = page.locator("#rec-body [data-predicted]")
    assert float(shown.get_attribute("data-predicted")) == pytest.approx(rec.predicted, rel=1e-6)
    sync_api.expect(shown).to_contain_text("±")

    # optimisation history: best at the target over cost, and the prediction with its error bar
    history = page.locator("#chart-history svg")
    progress = study.progress()
    assert int(history.locator(".series").first.get_attribute("data-points")) == len(progress.best_over_cost)
    assert history.locator(".error-bar").count() == 1

    # the trial table: every trial, its size, steps and state
    for t in trials:
        cells = page.locator(f"#trial-rows tr[data-trial-id='{t.id}'] td").all_inner_texts()
        assert cells[2] == t.size and cells[3] == f"{t.last_step or 0} / {t.steps}" and cells[4] == t.state.value

    # live: a worker reports more, and the page catches up by itself
    assert run_trials(client, study.id, 22) == 22
    more, progress = study.trials(), study.progress()
    assert len(more) > len(trials)
    _wait_rows(page, len(more))
    n_finite = sum(math.isfinite(m.value) for t in more for m in client.get_trial(t.id).measurements())
    page.wait_for_function(f"+document.querySelector('#chart-curves svg').dataset.points === {n_finite}",
                           timeout=WAIT_MS)
    page.wait_for_function("+document.querySelector('#chart-history svg .series').dataset.points === "
                           f"{len(progress.best_over_cost)}", timeout=WAIT_MS)
    # the prediction's trace over cost: one point per poll that saw new cost, the last with its error bar
    page.wait_for_function("+document.querySelectorAll('#chart-history svg .series')[1].dataset.points >= 3",
                           timeout=WAIT_MS)

    # the scaling-law fit: fetched at most every 30 s and only with new measurements, since it bootstraps on
    # the server (tens of seconds to minutes on a loaded machine), so only its first answer is waited for
    page.wait_for_function("document.querySelector('#chart-scaling').dataset.measurements !== undefined",
                           timeout=300_000)
    assert page.locator("#chart-scaling svg .series").count() > 0
    assert page.locator("#chart-params svg").count() == len(SPEC["space"])  # one per numeric parameter
    assert not page.errors, page.errors

    if os.environ.get("SCALELADDER_UI_SCREENSHOT"):  # the docs' picture: worth waiting for the latest fit
        with contextlib.suppress(sync_api.TimeoutError):
            page.wait_for_function("+document.querySelector('#chart-scaling').dataset.measurements === "
                                   f"{progress.n_measurements}", timeout=400_000)
    shot = Path(os.environ.get("SCALELADDER_UI_SCREENSHOT") or tmp_path / "dashboard.png")
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 20_000
    print(f"dashboard screenshot: {shot}")


def test_dashboard_shows_a_playbook_rounds_answer(sqlite_server, browser_page):
    from tests.api.test_round import ROUND_SPEC, run_workers

    client = sqlite_server.client("dashboard-round")
    study = client.create_study({**ROUND_SPEC, "name": "round-ui"})
    run_workers(study)
    result = study.round_result()
    page = browser_page
    _sign_in(page, sqlite_server.url, sqlite_server.token("dashboard-round"))
    page.locator(f"#study-rows tr[data-study-id='{study.id}'] a").click()
    sync_api.expect(page.locator("#round")).to_be_visible(timeout=WAIT_MS)
    sync_api.expect(page.locator("#round-body")).to_contain_text("Welch t-test", timeout=WAIT_MS)
    rows = page.locator("#round-body tbody tr")
    assert rows.count() == len(result.points)
    best = result.points[result.best]
    cells = page.locator("#round-body tbody tr[data-best='true'] td").all_inner_texts()
    assert cells[0] == best.values["arch"] and cells[4] == "best"
    assert not page.errors, page.errors
