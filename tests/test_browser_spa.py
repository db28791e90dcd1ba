"""The example's notes page in a real headless Chromium: its Access session ends while it
is open, and the browser module signs in again in a popup and sends the note once more."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import time_machine

from examples.protected_app import NOTES_KEY, create_app
from flask_cf_access.testing import AccessIssuer

from .chromium import headless_chromium
from .support import served_port

if TYPE_CHECKING:
    from collections.abc import Iterable

    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

pytestmark = [pytest.mark.browser, pytest.mark.slow]

#: Seconds a page may take to show what the test waits for.
WAIT = 15


class Recorded:
    """A WSGI app in front of another, recording each request's method, path and status."""

    def __init__(self, app: WSGIApplication) -> None:
        self.app = app
        self.seen: list[tuple[str, str, int]] = []
        self._lock = threading.Lock()

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        def recording(status: str, headers: Any, exc_info: Any = None) -> Any:
            with self._lock:
                self.seen.append((environ["REQUEST_METHOD"], environ["PATH_INFO"], int(status[:3])))
            return start_response(status, headers, exc_info)

        return self.app(environ, recording)

    def statuses(self, method: str, path: str) -> list[int]:
        """The statuses of the ``method`` requests to ``path``, in order."""
        with self._lock:
            return [status for m, p, status in self.seen if (m, p) == (method, path)]


def sign_in_on_stand_in(browser: Any, email: str) -> None:
    """Fill in and send the stand-in's sign-in form, in the current window."""
    from selenium.webdriver.common.by import By

    field = browser.find_element(By.NAME, "email")
    field.clear()
    field.send_keys(email)
    browser.find_element(By.CSS_SELECTOR, "button[type=submit]").click()


def test_session_ends_mid_use_signs_in_again_and_posts_once(artifacts: Path) -> None:
    """An expired session: one popup sign-in, the note sent again once, stored once; a
    closed popup is an error on the page, with nothing sent again, until "Sign in again"."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as until
    from selenium.webdriver.support.ui import WebDriverWait

    issuer = AccessIssuer(team_domain="local-stand-in.invalid")
    with (
        headless_chromium() as browser,
        # The wall clock of this process (the app's and the stand-in's), not the
        # browser's: shifting it past the token's exp ends the session at once.
        time_machine.travel(time.time(), tick=True) as traveller,
        issuer.serve(sign_in=True) as stand_in,
    ):
        app = create_app(stand_in.settings(CF_ACCESS_UNAUTHORIZED="redirect"))
        recorded = Recorded(app)
        wait = WebDriverWait(browser, WAIT)

        def add_note(text: str) -> None:
            field = browser.find_element(By.NAME, "text")
            field.clear()
            field.send_keys(text)
            browser.find_element(By.CSS_SELECTOR, "#add button").click()

        def notes_shown() -> list[str]:
            return [item.text for item in browser.find_elements(By.CSS_SELECTOR, "#notes li")]

        with served_port(recorded) as port:
            app_url = f"http://127.0.0.1:{port}"
            # 1. Sign in on the stand-in, land on the notes page, add a note.
            browser.get(f"{app_url}/notes/")
            assert browser.current_url.startswith(f"{stand_in.url}/cdn-cgi/access/login/")
            sign_in_on_stand_in(browser, "ada@example.com")
            wait.until(until.title_is("Notes"))
            wait.until(until.text_to_be_present_in_element((By.ID, "session"), "ada@example.com"))
            add_note("first")
            wait.until(until.text_to_be_present_in_element((By.ID, "status"), "Saved."))
            assert notes_shown() == ["first"]
            page = browser.current_window_handle

            # 2. The token expires while the page is open; the next note is refused,
            #    and the module opens the sign-in in a popup.
            traveller.shift(issuer.token_lifetime + 60)
            add_note("second")
            wait.until(until.number_of_windows_to_be(2))
            popup = next(handle for handle in browser.window_handles if handle != page)
            browser.switch_to.window(popup)
            wait.until(until.url_contains("/cdn-cgi/access/login/"))
            assert "redirect_url=%2Fauth%2Fsession%2Fsigned-in" in browser.current_url
            browser.save_screenshot(str(artifacts / "spa-popup-sign-in.png"))

            # 3. Sign in in the popup: it closes itself, the note is sent once more.
            sign_in_on_stand_in(browser, "ada@example.com")
            wait.until(until.number_of_windows_to_be(1))
            browser.switch_to.window(page)
            wait.until(until.text_to_be_present_in_element((By.ID, "status"), "Saved."))
            assert notes_shown() == ["first", "second"]
            browser.save_screenshot(str(artifacts / "spa-note-sent-again.png"))

            # One POST per note, but the refused one: no loop, nothing stored twice.
            assert recorded.statuses("POST", "/api/notes") == [201, 401, 201]
            assert [note["text"] for note in app.extensions[NOTES_KEY]] == ["first", "second"]

            # 4. Ended again, and the popup closed unsigned: the page says so, and
            #    the note is not sent again.
            traveller.shift(issuer.token_lifetime + 60)
            add_note("third")
            wait.until(until.number_of_windows_to_be(2))
            popup = next(handle for handle in browser.window_handles if handle != page)
            browser.switch_to.window(popup)
            browser.close()
            browser.switch_to.window(page)
            wait.until(until.text_to_be_present_in_element((By.ID, "status"), "Nothing was saved"))
            assert browser.find_element(By.ID, "sign-in").is_displayed()
            browser.save_screenshot(str(artifacts / "spa-sign-in-abandoned.png"))
            assert recorded.statuses("POST", "/api/notes") == [201, 401, 201, 401]
            assert notes_shown() == ["first", "second"]
            assert browser.find_element(By.ID, "session").text == "Signed out."

            # 5. "Sign in again" (a click, so the popup may open), then the note goes through.
            browser.find_element(By.ID, "sign-in").click()
            wait.until(until.number_of_windows_to_be(2))
            popup = next(handle for handle in browser.window_handles if handle != page)
            browser.switch_to.window(popup)
            wait.until(until.url_contains("/cdn-cgi/access/login/"))
            sign_in_on_stand_in(browser, "ada@example.com")
            wait.until(until.number_of_windows_to_be(1))
            browser.switch_to.window(page)
            wait.until(until.text_to_be_present_in_element((By.ID, "status"), "Signed in again"))
            add_note("third")
            wait.until(until.text_to_be_present_in_element((By.ID, "status"), "Saved."))
            assert notes_shown() == ["first", "second", "third"]
            assert recorded.statuses("POST", "/api/notes") == [201, 401, 201, 401, 201]
