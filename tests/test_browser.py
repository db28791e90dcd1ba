"""The example app clicked through in a real headless Chromium, signed in on the stand-in."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from werkzeug.wrappers import Request, Response

from examples.protected_app import create_app
from flask_cf_access import Reason
from flask_cf_access.testing import AccessIssuer, capture_access

from .chromium import headless_chromium
from .support import served_port

if TYPE_CHECKING:
    from _typeshed.wsgi import WSGIApplication

pytestmark = [pytest.mark.browser, pytest.mark.slow]

#: Seconds a page may take to show what the test waits for.
WAIT = 15


def forging_site(target: str) -> WSGIApplication:
    """Another site's page with a form that posts to ``target``."""

    @Request.application
    def page(request: Request) -> Response:
        html = (
            "<!doctype html><title>Win a prize</title>"
            f'<form method="post" action="{target}">'
            '<input name="message" value="forged"><button id="go">Claim</button></form>'
        )
        return Response(html, content_type="text/html")

    return page


@pytest.mark.parametrize(
    ("name", "other_name"), [("127.0.0.1", "localhost"), ("localhost", "127.0.0.1")]
)
def test_sign_in_admin_forged_post_and_logout(artifacts: Path, name: str, other_name: str) -> None:
    """Sign in locally as an Admin, use the admin page, a cross-site post is refused, log out;
    with the app as 127.0.0.1 or as localhost (the stand-in follows the name)."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import WebDriverWait

    issuer = AccessIssuer(team_domain="local-stand-in.invalid")
    with (
        headless_chromium() as browser,
        issuer.serve(sign_in=True) as stand_in,
        capture_access() as captured,
    ):
        app = create_app(stand_in.settings(CF_ACCESS_UNAUTHORIZED="redirect"))
        wait = WebDriverWait(browser, WAIT)
        stand_in_url = f"http://{name}:{stand_in.port}"
        with served_port(app) as app_port:
            app_url = f"http://{name}:{app_port}"
            with served_port(forging_site(f"{app_url}/admin/announce")) as other_port:
                # 1. Not signed in: the app sends the browser to the stand-in's login page,
                #    under the name the browser used for the app.
                browser.get(f"{app_url}/admin/")
                assert browser.current_url.startswith(
                    f"{stand_in_url}/cdn-cgi/access/login/{name}:{app_port}?"
                )
                assert captured.reasons == [Reason.MISSING_TOKEN]
                browser.save_screenshot(str(artifacts / f"sign-in-{name}.png"))

                # 2. Sign in as Ada, in Admins: back on the admin page.
                email = browser.find_element(By.NAME, "email")
                email.clear()
                email.send_keys("ada@example.com")
                groups = browser.find_element(By.NAME, "groups")
                groups.clear()
                groups.send_keys("Admins, Staff")
                browser.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
                wait.until(expected_conditions.url_to_be(f"{app_url}/admin/"))
                wait.until(expected_conditions.title_is("Admin"))
                assert "ada@example.com" in browser.find_element(By.TAG_NAME, "body").text
                browser.save_screenshot(str(artifacts / f"admin-{name}.png"))

                # 3. The admin page's own form posts fine (same origin).
                browser.find_element(By.CSS_SELECTOR, "form button").click()
                wait.until(
                    expected_conditions.text_to_be_present_in_element(
                        (By.CSS_SELECTOR, "p.flash"), "Announced: Hello"
                    )
                )

                # 4. Another site's form (localhost is another site than 127.0.0.1)
                #    makes the browser post with the cookie: refused as cross-site.
                browser.get(f"http://{other_name}:{other_port}/")
                browser.find_element(By.ID, "go").click()
                wait.until(expected_conditions.title_is("Not for you"))
                assert captured.reasons == [Reason.MISSING_TOKEN, Reason.CROSS_SITE_REQUEST]
                browser.save_screenshot(str(artifacts / f"forged-post-refused-{name}.png"))

                # 5. Log out through the app: the stand-in drops the cookie.
                browser.get(f"{app_url}/logout")
                wait.until(expected_conditions.url_to_be(f"{stand_in_url}/cdn-cgi/access/logout"))
                assert browser.get_cookies() == []

                # 6. Signed out: the admin page sends the browser to sign in again.
                browser.get(f"{app_url}/admin/")
                assert browser.current_url.startswith(f"{stand_in_url}/cdn-cgi/access/login/")
                assert captured.reasons[-1] == Reason.MISSING_TOKEN
