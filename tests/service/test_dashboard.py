"""The dashboard page in a real browser (headless Chromium through Selenium) against the
real app on a real HTTP server and a real redis-server: traffic through HTTP, a learner
step, then the page must show the health JSON's figures, charts holding its series, a
reward drift as an alert, and "Redis unavailable" while Redis is down, without any
error in the browser's console."""
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


@pytest.fixture
def site():
    """The app on werkzeug's threaded server, on a redis-server of its own (the test
    stops it), with one admin key."""
    with RedisServer() as server:
        client = connect(server.url)
        config = make_config()
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


def refreshed(driver) -> int:
    """Run a refresh now (as the 10 s timer does) and wait for it to finish."""
    before = int(driver.find_element(By.TAG_NAME, "body").get_attribute("data-refreshes") or 0)
    driver.execute_script("window.cbserveDashboard.refresh()")
    WebDriverWait(driver, WAIT).until(
        lambda d: int(d.find_element(By.TAG_NAME, "body").get_attribute("data-refreshes") or 0) > before)
    return before + 1


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
