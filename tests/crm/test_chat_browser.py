"""crm.support.views, the public chat widget, in a real browser (headless Chromium): a customer
opens it from their signed link, asks about an order and a delivery question; the server answers
each message 202 at once, a real worker writes the reply (the language model for the question) and
the page polls for it, showing the model's answer as it grows, then the answers with their
citations."""

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from crm.support import links
from tests.browser import needs_chromium
from tests.crm.factories import shop

pytestmark = [
    pytest.mark.django_db(transaction=True),
    needs_chromium,
]


def ask(b, text: str, count: int) -> str:
    """Types a question and waits for the `count`-th answer in the log."""
    b.find_element(By.ID, "message").send_keys(text)
    b.find_element(By.CSS_SELECTOR, "#ask button").click()
    WebDriverWait(b, 240).until(
        lambda d: len(d.find_elements(By.CSS_SELECTOR, "p.assistant")) >= count
    )
    return b.find_elements(By.CSS_SELECTOR, "p.assistant")[count - 1].text


def test_customer_asks_the_widget_about_an_order(
    live_server, browser, workspace, live_worker, settings
):
    settings.CHAT_RATE_LIMIT = "1000/min"
    ada, _ = shop(workspace)
    browser.get(f"{live_server.url}/chat/{workspace.slug}/?c={links.customer_chat_token(ada)}")
    assert "How can we help, Ada?" in browser.page_source

    answer = ask(browser, "Where is my order 581001?", 1)
    assert "581001" in answer and "Regency teacup" in answer
    # Every text the answer being written shows, as the page changes it.
    browser.execute_script(
        """window.__writing = [];
        new MutationObserver(function () {
          const p = document.querySelector("#log p.writing");
          const done = document.querySelectorAll("#log p.assistant").length;
          if (p) window.__writing.push([p.textContent, done]);
        }).observe(document.getElementById("log"),
                   {childList: true, subtree: true, characterData: true});"""
    )
    answer = ask(browser, "How much is next day delivery?", 2)
    assert "Delivery costs" in answer  # the citation's link text
    # The text grew over several polls before the reply was complete, then gave way to it.
    seen = browser.execute_script("return window.__writing")
    texts = [text.removeprefix("Assistant: ") for text, done in seen if done == 1]
    assert len({text for text in texts if text}) >= 2, seen
    assert all(len(b) >= len(a) for a, b in zip(texts, texts[1:], strict=False))
    assert not browser.find_elements(By.CSS_SELECTOR, "#log p.writing")
    assert len(browser.find_elements(By.CSS_SELECTOR, "#log p.assistant")) == 2
    link = browser.find_elements(By.CSS_SELECTOR, "p.assistant a")[-1]
    assert link.get_attribute("href").endswith(f"/help/{workspace.slug}/delivery-costs")
    # The answers came by polling, each poll carrying the signed link (the conversation is
    # identified: its token alone reads nothing).
    polls = browser.execute_script(
        "return performance.getEntriesByType('resource').map(e => e.name)"
        ".filter(n => n.includes('/messages?conversation='))"
    )
    assert polls and all("identity=" in url for url in polls)
