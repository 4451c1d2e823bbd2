"""The dashboard page in a real browser (headless Chromium through Selenium) against the
real app on a real HTTP server and a real redis-server: traffic through HTTP, a learner
step, then the page must show the health JSON's figures, charts holding its series, a
reward drift as an alert, and "Redis unavailable" while Redis is down, without any
error in the browser's console."""
import dataclasses
import json
import math
import shutil
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass

import pytest
from werkzeug.serving import make_server

from service.api.auth import load_keys
from service.app import create_app
from service.learner import LoopLearner
from service.store import connect
from service.testing.redis_server import RedisServer

from tests.conftest import RECS_ITEMS, make_config

try:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select, WebDriverWait
except ImportError:  # the dev extra installs it
    webdriver = None

CHROMIUM, DRIVER = shutil.which("chromium"), shutil.which("chromedriver")
needs_browser = pytest.mark.skipif(
    webdriver is None or not (CHROMIUM and DRIVER),
    reason="needs selenium, chromium and chromedriver (Debian: apt-get install chromium "
           "chromium-driver; .ci/run installs them)")
KEY = "dashboard-test-admin-key"
KEYS = json.dumps([{"key": KEY, "role": "admin", "name": "ops"}])
#: Seconds the page may take to show what a refresh fetched.
WAIT = 15


@dataclass
class Site:
    url: str
    redis: RedisServer
    client: object
    config: object

    def get(self, path):
        req = urllib.request.Request(self.url + path, headers={"X-API-Key": KEY})
        with urllib.request.urlopen(req, timeout=10) as res:
            return json.loads(res.read())

    def post(self, path, body):
        req = urllib.request.Request(self.url + path, data=json.dumps(body).encode(), method="POST",
                                     headers={"X-API-Key": KEY, "Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=10) as res:
            return json.loads(res.read())

    def traffic(self, n, reward):
        """``n`` ranks of the recs loop through HTTP, each rewarded with ``reward(i, chosen)``."""
        for i in range(n):
            res = self.post("/v1/loops/recs/rank", {"context": {"user": {"age": i % 7}},
                                                    "actions": RECS_ITEMS[:5]})
            self.post(f"/v1/loops/recs/events/{res['event_id']}/reward",
                      {"value": reward(i, res["chosen"])})

    def learn(self):
        learner = LoopLearner(self.client, self.config.loops["recs"], self.config)
        while learner.step():
            pass
        learner.publish()
        learner.release()


def dashboard_config():
    """The tests' two loops; recs answers a reward drift with more exploration."""
    config = make_config()
    recs = config.loops["recs"]
    recs = dataclasses.replace(recs, drift={**recs.drift, "on_reward_drift": "explore"})
    return dataclasses.replace(config, loops={**config.loops, "recs": recs})


@pytest.fixture
def site():
    """The app on werkzeug's threaded server, on a redis-server of its own (the test
    stops it), with one admin key."""
    with RedisServer() as server:
        client = connect(server.url)
        config = dashboard_config()
        app = create_app(config, client, keys=load_keys({"CBSERVE_API_KEYS": KEYS}))
        http = make_server("127.0.0.1", 0, app, threaded=True)
        thread = threading.Thread(target=http.serve_forever, daemon=True)
        thread.start()
        try:
            yield Site(f"http://127.0.0.1:{http.server_port}", server, client, config)
        finally:
            http.shutdown()
            thread.join()


@pytest.fixture
def browser():
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                "--window-size=1280,2300"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(DRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def severe(driver) -> list:
    return [e["message"] for e in driver.get_log("browser") if e["level"] == "SEVERE"]


def refreshed(driver) -> None:
    """Run a refresh now (as the 10 s timer does) and wait until none is running."""
    state = "window.cbserveDashboard.state"
    before = driver.execute_script(f"return {state}.refreshes")
    driver.execute_script("window.cbserveDashboard.refresh()")
    WebDriverWait(driver, WAIT).until(lambda d: d.execute_script(
        f"return {state}.refreshes > {before} && {state}.running === 0"))


def settled(driver, site, path="/v1/loops/recs/health?window=1h") -> dict:
    """The health JSON, and a page refresh that saw the same minutes (a minute that
    turns between the two would add a point to the series)."""
    for _ in range(3):
        before = site.get(path)
        refreshed(driver)
        after = site.get(path)
        if before["series"]["minute"] == after["series"]["minute"]:
            return after
    raise AssertionError("the minutes kept turning")


def open_dashboard(driver, site):
    driver.get(site.url + "/dashboard")
    driver.find_element(By.ID, "key").send_keys(KEY)
    driver.find_element(By.CSS_SELECTOR, "#key-form button").click()
    WebDriverWait(driver, WAIT).until(lambda d: d.find_element(By.ID, "main").is_displayed())
    Select(driver.find_element(By.ID, "loop")).select_by_value("recs")
    refreshed(driver)


def shown_figures(driver) -> dict:
    return {dd.get_attribute("data-field"): json.loads(dd.get_attribute("data-value"))
            for dd in driver.find_elements(By.CSS_SELECTOR, "#figures dd")}


def pick(report, path):
    for key in path.split("."):
        report = report[key]
    return report


def test_the_page_and_its_files_need_no_key_and_load_nothing_from_elsewhere(config, r):
    client = create_app(config, r, keys=load_keys({"CBSERVE_API_KEYS": KEYS})).test_client()
    page = client.get("/dashboard")
    assert page.status_code == 200 and page.mimetype == "text/html"
    assert "default-src 'none'" in page.headers["Content-Security-Policy"]
    html = page.get_data(as_text=True)
    assert "http" not in html.replace('<meta name="viewport"', "")  # no other origin
    for asset in ("main.js", "api.js", "uPlot.esm.js", "uPlot.min.css", "dashboard.css"):
        res = client.get(f"/dashboard/{asset}")
        assert res.status_code == 200, asset
        assert res.mimetype == ("text/css" if asset.endswith(".css") else "text/javascript")
    assert client.get("/dashboard/LICENSE").status_code == 404
    assert client.get("/dashboard/..%2Fapp.py").status_code in (401, 404)  # no route: 401
    assert client.get("/v1/loops").status_code == 401  # the data still needs the key


@needs_browser
def test_the_page_shows_the_health_figures_charts_and_tables(site, browser):
    site.traffic(40, lambda i, chosen: float(chosen in ("item-1", "item-2")))
    site.learn()
    site.traffic(30, lambda i, chosen: float(chosen in ("item-1", "item-2")))
    open_dashboard(browser, site)
    health = settled(browser, site)
    assert health["decisions"] == 70 and health["rewards"] == 70

    for field, value in shown_figures(browser).items():
        expected = pick(health, field)
        if field == "staleness_s":  # grows with the clock
            assert value == pytest.approx(expected, abs=30), field
        else:
            assert value == expected, field
    assert browser.find_element(By.ID, "badge").text.lower() == health["status"]
    decisions = browser.find_element(By.CSS_SELECTOR, '#figures dd[data-field="decisions"]')
    assert decisions.text == "70"
    join = browser.find_element(By.CSS_SELECTOR, '#figures dd[data-field="join_rate"]')
    assert join.text == f"{100 * health['join_rate']:.1f} %"

    charts = browser.execute_script(
        "return Object.fromEntries(Object.entries(window.cbserveCharts)"
        ".map(([name, c]) => [name, {data: c.data, labels: c.series.map(s => s.label)}]))")
    series = health["series"]
    for name in ("reward", "rates", "actions"):
        assert charts[name]["data"][0] == series["minute"], name
    reward = charts["reward"]
    versions = sorted(series["by_version"])
    assert reward["labels"][1::3] == [f"v{v}" for v in versions]
    for i, v in enumerate(versions):
        assert reward["data"][1 + 3 * i] == series["by_version"][v]["mean_reward"]
        assert reward["data"][2 + 3 * i] == series["by_version"][v]["low"]
    points = [x for line in reward["data"][1::3] for x in line if x is not None]
    assert points and all(math.isfinite(x) for x in points)
    assert charts["rates"]["data"][1:] == [series["join_rate"], series["exploration_share"]]
    ids = sorted(series["by_action"])
    assert charts["actions"]["labels"][1:] == ids
    assert charts["actions"]["data"][1:] == [series["by_action"][a]["share"] for a in ids]
    assert any(x for line in charts["actions"]["data"][1:] for x in line)

    models = site.get("/v1/loops/recs/models")
    serving = browser.find_elements(By.CSS_SELECTOR, "#versions tbody tr.serving")
    assert [row.text.split()[0] for row in serving] == [f"v{models['serving']}"]
    rows = browser.find_elements(By.CSS_SELECTOR, "#actions tbody tr")
    assert len(rows) == len(health["actions"])

    explained = site.get(f"/v1/loops/recs/models/{models['serving']}/explain?top=10")
    weights = browser.find_elements(By.CSS_SELECTOR, "#weights tbody tr")
    rows = explained["summary"].get("global") or [w for ws in explained["summary"]["actions"].values()
                                                   for w in ws[:5]]
    assert len(weights) == len(rows) and any("user.age" in tr.text for tr in weights)
    recent = browser.find_elements(By.CSS_SELECTOR, "#recent tbody tr")
    assert [tr.find_element(By.TAG_NAME, "td").text for tr in recent] == [
        a["id"] for a in explained["recent"]["actions"]]
    assert explained["recent"]["event_id"] in browser.find_element(By.ID, "recent-caption").text

    # the key stays out of the URL and the page; the tab's session storage holds it
    assert KEY not in browser.current_url and KEY not in browser.page_source
    assert browser.execute_script("return sessionStorage.getItem('cbserve.adminKey')") == KEY

    Select(browser.find_element(By.ID, "window")).select_by_value("15m")
    WebDriverWait(browser, WAIT).until(lambda d: d.execute_script(
        "return window.cbserveDashboard.state.last.health.window") == 900)
    assert severe(browser) == []


@needs_browser
def test_a_reward_drift_shows_as_an_alert(site, browser, tmp_path):
    site.traffic(60, lambda i, chosen: 1.0)
    site.learn()
    open_dashboard(browser, site)
    assert browser.find_element(By.ID, "badge").text.lower() == "ok"

    site.traffic(100, lambda i, chosen: 0.0)  # the reward falls: the learner's detector sees it
    site.learn()
    health = site.get("/v1/loops/recs/health?window=1h")
    if health["drift"].get("reward", {}).get("state") != "drift":
        pytest.fail(f"the reward detector did not flag the drop: {health['drift']}")
    refreshed(browser)
    assert browser.find_element(By.ID, "badge").text.lower() == "alert"
    codes = [li.get_attribute("data-code") for li in browser.find_elements(By.CSS_SELECTOR, "#reasons li")]
    assert "reward_drift" in codes
    row = browser.find_element(By.XPATH, '//table[@id="drift"]//tr[td[1]="Reward"]')
    assert row.find_elements(By.TAG_NAME, "td")[1].text == "drift"
    correction = health["drift"]["correction"]
    assert correction["mode"] == "explore" and correction["active"]
    row = browser.find_element(By.XPATH, '//table[@id="drift"]//tr[td[1]="Correction"]')
    assert row.find_elements(By.TAG_NAME, "td")[1].text == "active"
    assert f"until decision {correction['until']}" in row.text
    assert severe(browser) == []
    browser.execute_script("window.scrollTo(0, 0)")
    browser.save_screenshot(str(tmp_path / "dashboard.png"))


@needs_browser
def test_redis_down_shows_redis_unavailable_and_the_page_recovers(site, browser):
    site.traffic(10, lambda i, chosen: 1.0)
    open_dashboard(browser, site)
    assert severe(browser) == []
    banner = browser.find_element(By.ID, "banner")
    assert not banner.is_displayed()

    site.redis.kill()
    refreshed(browser)
    assert banner.is_displayed() and banner.text.startswith("Redis unavailable")
    errors = severe(browser)  # the browser logs each 503 answer it got, and nothing else
    assert errors and all("503" in e for e in errors), errors
    assert browser.execute_script("return window.cbserveDashboard.state.timer") is not None

    site.redis.start()
    refreshed(browser)
    assert not banner.is_displayed()
    assert browser.find_element(By.ID, "badge").text
    assert severe(browser) == []
