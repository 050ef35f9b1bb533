"""The explorer page in a real browser: Debian's chromium, headless, through Selenium.

CI (SIMDEX_REQUIRE_BROWSER=1, set by .ci/run) fails when the browser is missing; a developer
machine without one skips with the reason (`make setup` installs it where it can)."""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
from pathlib import Path

import pytest

from simdex.web.app import create_app

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
SCREENSHOT = Path(__file__).resolve().parent.parent / "docs" / "explorer.png"

if not (CHROMIUM and CHROMEDRIVER):
    reason = "no chromium / chromedriver on this machine (make setup installs Debian's as root)"
    if os.environ.get("SIMDEX_REQUIRE_BROWSER"):
        raise RuntimeError(f"the browser test is required here: {reason}")
    pytest.skip(reason, allow_module_level=True)


@pytest.fixture(scope="module")
def server(glove_store):
    import uvicorn

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(create_app(str(glove_store.path)), host="127.0.0.1", port=port,
                                           log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline, "the server did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(10)


@pytest.fixture(scope="module")
def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1100,900"):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    yield driver
    driver.quit()


def wait_for(browser, condition, timeout=15):
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(browser, timeout).until(lambda _: condition())


def neighbour_words(browser):
    from selenium.webdriver.common.by import By

    return [e.text for e in browser.find_elements(By.CSS_SELECTOR, "#neighbors li a")]


def test_explore_neighbours_analogy_map_and_shared_url(server, browser):
    from selenium.webdriver.common.by import By

    browser.get(server + "/")
    wait_for(browser, lambda: "serving" in browser.find_element(By.ID, "served").text)
    box = browser.find_element(By.ID, "q")
    box.send_keys("frog")
    browser.find_element(By.CSS_SELECTOR, "#query-form button").click()
    wait_for(browser, lambda: "toad" in neighbour_words(browser))
    assert "#q=frog" in browser.current_url

    for field, word in (("a", "man"), ("b", "king"), ("c", "woman")):
        browser.find_element(By.ID, field).send_keys(word)
    browser.find_element(By.CSS_SELECTOR, "#analogy-form button").click()
    wait_for(browser, lambda: browser.find_elements(By.CSS_SELECTOR, "#analogy-answers li a"))
    assert browser.find_element(By.CSS_SELECTOR, "#analogy-answers li a").text == "queen"

    SCREENSHOT.parent.mkdir(exist_ok=True)
    browser.save_screenshot(str(SCREENSHOT))

    # click the map's point for "toad": its position comes from the page's own layout
    canvas = browser.find_element(By.ID, "map")
    x, y = browser.execute_script("""
        const point = points.find(p => p.word === 'toad');
        const [x, y] = place(point, arguments[0]);
        const box = arguments[0].getBoundingClientRect();
        return [x * box.width / arguments[0].width - box.width / 2,
                y * box.height / arguments[0].height - box.height / 2];
    """, canvas)
    from selenium.webdriver.common.action_chains import ActionChains

    ActionChains(browser).move_to_element_with_offset(canvas, int(x), int(y)).click().perform()
    wait_for(browser, lambda: browser.find_element(By.ID, "q").get_attribute("value") == "toad")
    wait_for(browser, lambda: "frog" in neighbour_words(browser))
    assert "#q=toad" in browser.current_url

    browser.get(server + "/#q=paris&k=5")
    browser.refresh()
    wait_for(browser, lambda: len(neighbour_words(browser)) == 5)
    assert browser.find_element(By.ID, "q").get_attribute("value") == "paris"
    assert "france" in neighbour_words(browser)


def test_unknown_word_offers_clickable_spellings(server, browser):
    from selenium.webdriver.common.by import By

    browser.get(server + "/#q=frgo")
    wait_for(browser, lambda: browser.find_elements(By.CSS_SELECTOR, "#message a.suggestion"))
    assert "unknown word 'frgo'" in browser.find_element(By.ID, "message").text
    browser.find_element(By.CSS_SELECTOR, "#message a.suggestion").click()
    wait_for(browser, lambda: len(neighbour_words(browser)) > 0)
    assert not browser.find_element(By.ID, "message").is_displayed()


def test_phone_width_keeps_the_page_usable(server, browser):
    from selenium.webdriver.common.by import By

    browser.set_window_size(390, 844)
    try:
        browser.get(server + "/#q=frog&k=10")
        wait_for(browser, lambda: len(neighbour_words(browser)) == 10)
        width = browser.execute_script("return document.documentElement.scrollWidth")
        assert width <= 390  # no sideways scrolling
        assert browser.find_element(By.ID, "map").size["width"] <= 390
    finally:
        browser.set_window_size(1100, 900)


def test_a_sentence_store_is_searched_from_the_page(browser, tmp_path):
    import uvicorn
    from click.testing import CliRunner
    from selenium.webdriver.common.by import By

    from simdex.cli import cli

    texts = tmp_path / "texts.csv"
    texts.write_text("text,source\na gripping thriller with a twist,rt\na dull and lifeless comedy,imdb\n"
                     "the soup was cold,menu\na tense thriller at sea,imdb\n")
    store = tmp_path / "sentences"
    assert CliRunner().invoke(cli, ["encode", str(texts), "--fields", "source", "--store", str(store)]).exit_code == 0
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(create_app(str(store)), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        while not server.started:
            time.sleep(0.05)
        browser.get(f"http://127.0.0.1:{port}/")
        wait_for(browser, lambda: "sentences" in browser.find_element(By.ID, "served").text)
        browser.find_element(By.ID, "q").send_keys("an exciting suspense film")
        browser.find_element(By.CSS_SELECTOR, "#query-form button").click()
        wait_for(browser, lambda: len(neighbour_words(browser)) == 4)
        assert neighbour_words(browser)[0] == "a gripping thriller with a twist"
        assert not browser.find_element(By.ID, "map").is_displayed()
        # the field chooser starts a filter; the mode and the filter go into the URL
        from selenium.webdriver.support.ui import Select

        Select(browser.find_element(By.ID, "field")).select_by_value("source")
        where = browser.find_element(By.ID, "where")
        assert where.get_attribute("value") == "source = ''"
        where.send_keys("\b" + "imdb'")  # inside the quotes
        Select(browser.find_element(By.ID, "mode")).select_by_value("hybrid")
        wait_for(browser, lambda: "mode=hybrid" in browser.current_url)
        query = browser.find_element(By.ID, "q")
        query.clear()
        query.send_keys("thriller at sea")
        browser.find_element(By.CSS_SELECTOR, "#query-form button").click()
        wait_for(browser, lambda: "thriller" in browser.current_url and len(neighbour_words(browser)) == 2)
        assert neighbour_words(browser) == ["a tense thriller at sea", "a dull and lifeless comedy"]
        assert "where=source" in browser.current_url
        tags = [e.text for e in browser.find_elements(By.CSS_SELECTOR, "#neighbors li .fields")]
        assert tags == ["source: imdb", "source: imdb"]
        assert [e.text for e in browser.find_elements(By.CSS_SELECTOR, "#neighbors li .lists")] == \
            ["vector + keyword", "vector"]  # found by its words too
        shared = browser.current_url
        browser.get("about:blank")
        browser.get(shared)  # the shared URL shows the same filtered answers
        wait_for(browser, lambda: neighbour_words(browser) == ["a tense thriller at sea", "a dull and lifeless comedy"])
        assert browser.find_element(By.ID, "where").get_attribute("value") == "source = 'imdb'"
    finally:
        server.should_exit = True
        thread.join(10)
