"""Register, see the navbar change, log out, log in again, create an API token (real browser)."""

from __future__ import annotations

import pytest
from selenium.webdriver.common.by import By

pytestmark = pytest.mark.browser


def _fill(dash_duo, values: dict) -> None:
    for field, value in values.items():
        element = dash_duo.driver.find_element(By.ID, field)
        element.clear()
        element.send_keys(value)


def test_bauth001_register_logout_login(dash_duo, nanoorg_app):
    dash_duo.start_server(nanoorg_app)
    dash_duo.wait_for_text_to_equal("#nav-login", "Log In")
    assert not dash_duo.find_elements("#nav-upload")

    dash_duo.find_element("#nav-register").click()                # Flask form: full page load
    dash_duo.wait_for_element("#register-form")
    _fill(dash_duo, {"username": "carla", "email": "carla@example.org", "password": "long enough pw",
                     "password2": "long enough pw"})
    dash_duo.find_element("#register-submit").click()
    dash_duo.wait_for_text_to_equal("#nav-account", "carla")       # back on the Dash home page, signed in
    assert dash_duo.find_element("#nav-upload").text == "Upload Data"
    assert not dash_duo.find_elements("#nav-login")

    dash_duo.find_element("#nav-logout").click()                  # POST form with the CSRF token
    dash_duo.wait_for_text_to_equal("#nav-login", "Log In")
    assert not dash_duo.find_elements("#nav-account")

    dash_duo.find_element("#nav-guide").click()                   # client-side page change
    dash_duo.wait_for_element("#guide-page")
    dash_duo.find_element("#nav-login").click()                   # Log In returns to this page
    dash_duo.wait_for_element("#login-form")
    assert "next=%2Fguide" in dash_duo.driver.current_url
    _fill(dash_duo, {"username": "carla", "password": "long enough pw"})
    dash_duo.find_element("#login-submit").click()
    dash_duo.wait_for_element("#guide-page")
    dash_duo.wait_for_text_to_equal("#nav-account", "carla")

    assert dash_duo.get_logs() == []


def test_bauth002_account_page_creates_and_revokes_a_token(dash_duo, nanoorg_app, browser_user):
    dash_duo.start_server(nanoorg_app)
    dash_duo.driver.get(dash_duo.server_url + "/login?next=/account")
    dash_duo.wait_for_element("#login-form")
    _fill(dash_duo, {"username": browser_user.username, "password": browser_user.password})
    dash_duo.find_element("#login-submit").click()
    dash_duo.wait_for_text_to_equal("#account-username", browser_user.username)

    _fill(dash_duo, {"account-token-name": "notebook"})
    dash_duo.find_element("#account-token-create").click()         # Dash callback POST with X-CSRFToken
    token = dash_duo.wait_for_element("#account-token-value").text
    assert token.startswith("no_")
    dash_duo.wait_for_text_to_equal("#account-token-table td", "notebook")

    dash_duo.find_element("#account-token-table button").click()
    dash_duo.wait_for_text_to_equal("#account-token-message", "Token revoked.")
    dash_duo.wait_for_element("#account-no-tokens")

    assert dash_duo.get_logs() == []
