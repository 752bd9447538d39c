"""Sign-in, registration, sign-out, CSRF, safe redirects, API tokens (HTTP level)."""

from __future__ import annotations

import re

import pytest

from databank import users
from server.auth import safe_next
from tests.web.support import bearer, csrf_cookie, dash_post, form_csrf, layout_text, login


def register(client, username, email=None, password="long enough pw", password2=None, next_url=None):
    page = client.get("/register")
    data = {"username": username, "email": email or f"{username}@example.org", "password": password,
            "password2": password if password2 is None else password2, "csrf_token": form_csrf(page.text)}
    if next_url is not None:
        data["next"] = next_url
    return client.post("/register", data=data)


def signed_in_as(client) -> str | None:
    text = layout_text(client)
    if '"nav-logout"' not in text:
        return None
    return text


# --------------------------------------------------------------------------------------------
# forms render

def test_auth001_login_and_register_forms_render_with_csrf_and_vendored_css(client):
    for path in ("/login", "/register"):
        page = client.get(path)
        assert page.status_code == 200
        assert 'name="csrf_token"' in page.text
        assert "/assets/bootstrap.min.css" in page.text
        assert "cdn" not in page.text.lower()
        assert 'id="nav-login"' in page.text and 'id="nav-register"' in page.text
        assert 'id="footer-legal"' in page.text


# --------------------------------------------------------------------------------------------
# register

def test_auth002_register_signs_in_and_navbar_shows_the_user(client):
    response = register(client, "alice_r")
    assert response.status_code == 302 and response.headers["Location"] == "/"
    text = signed_in_as(client)
    assert text and "alice_r" in text and "Upload Data" in text and '"nav-login"' not in text


def test_auth003_register_errors_are_shown_next_to_the_field(client, make_user):
    make_user("taken_name")
    response = register(client, "taken_name")
    assert response.status_code == 200
    assert 'id="username-error"' in response.text and "is taken" in response.text
    response = register(client, "fresh_name", email="not-an-email")
    assert response.status_code == 200 and 'id="email-error"' in response.text
    response = register(client, "fresh_name", password="short")
    assert response.status_code == 200 and 'id="password-error"' in response.text
    response = register(client, "fresh_name", password="long enough pw", password2="different pw")
    assert response.status_code == 200 and 'id="password2-error"' in response.text
    assert 'value="fresh_name"' in response.text          # what the user typed is kept
    assert signed_in_as(client) is None


def test_auth004_register_without_csrf_is_refused(client):
    response = client.post("/register", data={"username": "mallory", "email": "m@example.org",
                                              "password": "long enough pw", "password2": "long enough pw"})
    assert response.status_code == 400
    with client.application.app_context():
        assert users.find_user("mallory") is None


# --------------------------------------------------------------------------------------------
# login

def test_auth005_login_with_right_and_wrong_passwords(client, user):
    bad = login(client, user.__class__(user.id, user.username, user.email, "wrong password"))
    assert bad.status_code == 200 and "Wrong user name or password." in bad.text
    unknown = login(client, user.__class__(0, "nobody_here", "", "whatever1"))
    assert unknown.status_code == 200 and "Wrong user name or password." in unknown.text
    good = login(client, user)
    assert good.status_code == 302 and good.headers["Location"] == "/"
    assert user.username in signed_in_as(client)


def test_auth006_repeated_failures_are_slowed_down(client, user):
    wrong = user.__class__(user.id, user.username, user.email, "wrong password")
    statuses = [login(client, wrong).status_code for _ in range(users.FREE_FAILURES)]
    assert statuses == [200] * users.FREE_FAILURES
    throttled = login(client, user)            # even the right password waits now
    assert throttled.status_code == 429
    assert "Too many failed attempts. Try again in" in throttled.text and " s." in throttled.text
    assert signed_in_as(client) is None


def test_auth007_login_without_csrf_is_refused(client, user):
    response = client.post("/login", data={"username": user.username, "password": user.password})
    assert response.status_code == 400
    assert signed_in_as(client) is None


@pytest.mark.parametrize("target, expected", [
    ("/databank", "/databank"), ("/dataset/3?tab=files", "/dataset/3?tab=files"),
    ("//evil.com", "/"), ("//evil.com/path", "/"), ("/\\evil.com", "/"), ("https://evil.com/", "/"),
    ("http:/evil.com", "/"), ("javascript:alert(1)", "/"), ("evil.com", "/"), ("", "/"), (None, "/"),
    ("/\tevil", "/"), (" //evil.com", "/"), ("/logout", "/"),
])
def test_auth008_safe_next(target, expected):
    assert safe_next(target) == expected


def test_auth009_login_redirects_to_next_but_never_off_site(server, user):
    for next_url, expected in (("/databank", "/databank"), ("//evil.com", "/"), ("https://evil.com", "/")):
        client = server.test_client()
        response = login(client, user, next_url=next_url)
        assert response.status_code == 302 and response.headers["Location"] == expected
    client = server.test_client()
    page = client.get("/login?next=//evil.com")
    assert "evil.com" not in page.text
    response = register(server.test_client(), "redirect_user", next_url="//evil.com")
    assert response.headers["Location"] == "/"


# --------------------------------------------------------------------------------------------
# logout

def test_auth010_logout_needs_post_with_csrf(signed_in, user):
    client = signed_in(user)
    confirm = client.get("/logout")                       # GET only asks
    assert confirm.status_code == 200 and 'id="logout-submit"' in confirm.text
    assert signed_in_as(client)
    assert client.post("/logout").status_code == 400      # no CSRF token
    assert signed_in_as(client)
    token = form_csrf(confirm.text)
    response = client.post("/logout", data={"csrf_token": token})
    assert response.status_code == 302 and response.headers["Location"] == "/"
    assert signed_in_as(client) is None
    assert client.get("/logout").status_code == 302       # signed out: nothing to confirm


def test_auth011_navbar_logout_form_carries_the_csrf_token(signed_in, user):
    client = signed_in(user)
    text = layout_text(client)
    assert '"action":"\\u002flogout"' in text or '"action":"/logout"' in text
    assert '"name":"csrf_token"' in text


# --------------------------------------------------------------------------------------------
# Dash callbacks and CSRF

def test_auth012_dash_callback_post_needs_the_csrf_header(signed_in, user):
    client = signed_in(user)
    args = dict(outputs=[("account-token-new", "children"), ("account-token-list", "children"),
                         ("account-token-name", "value")],
                inputs=[("account-token-create", "n_clicks", 1), []],
                state=[("account-token-name", "value", "script")],
                changed=["account-token-create.n_clicks"])
    refused = dash_post(client, csrf=False, **args)
    assert refused.status_code == 400
    with client.application.app_context():
        assert users.list_api_tokens(users.find_user(user.username)) == []
    accepted = dash_post(client, **args)
    assert accepted.status_code == 200


def _create_token(client, name="script"):
    response = dash_post(client, [("account-token-new", "children"), ("account-token-list", "children"),
                                  ("account-token-name", "value")],
                         [("account-token-create", "n_clicks", 1), []],
                         state=[("account-token-name", "value", name)],
                         changed=["account-token-create.n_clicks"])
    assert response.status_code == 200
    match = re.search(r'"(no_[A-Za-z0-9_-]{20,})"', response.text)
    assert match, response.text
    return match.group(1), response


def _revoke(client, token_id):
    return dash_post(client, [("account-token-new", "children"), ("account-token-list", "children"),
                              ("account-token-name", "value")],
                     [("account-token-create", "n_clicks", 0),
                      [{"id": {"type": "account-token-revoke", "index": token_id}, "property": "n_clicks", "value": 1}]],
                     state=[("account-token-name", "value", "")],
                     changed=[f'{{"index":{token_id},"type":"account-token-revoke"}}.n_clicks'])


def test_auth013_token_created_on_account_page_works_then_revoked_gets_401(server, signed_in, user, make_dataset):
    client = signed_in(user)
    private_id = make_dataset(user, visibility="private")
    token, _ = _create_token(client)
    api = server.test_client()                                   # no session: the token alone
    listing = api.get("/api/datasets", headers=bearer(token))
    assert listing.status_code == 200 and [d["id"] for d in listing.json["datasets"]] == [private_id]
    assert api.get(f"/api/datasets/{private_id}", headers=bearer(token)).status_code == 200
    assert "_csrf_token" not in (listing.headers.get("Set-Cookie") or "")     # token clients get no cookies
    with server.app_context():
        token_id = users.list_api_tokens(users.find_user(user.username))[0].id
    response = _revoke(client, token_id)
    assert response.status_code == 200 and "Token revoked." in response.text
    revoked = api.get("/api/datasets", headers=bearer(token))
    assert revoked.status_code == 401 and revoked.json["error"] == "Invalid or revoked API token."
    assert api.get(f"/api/datasets/{private_id}", headers=bearer(token)).status_code == 401


def test_auth014_bad_authorization_headers_get_401(client):
    for header in ("Bearer nonsense", "Bearer ", "Basic dXNlcjpwdw==", "no_token_without_scheme"):
        response = client.get("/api/datasets", headers={"Authorization": header})
        assert response.status_code == 401, header
        assert "Bearer" in response.headers["WWW-Authenticate"]
    assert client.get("/api/datasets").status_code == 200        # no header: anonymous


def test_auth015_cannot_revoke_someone_elses_token(server, signed_in, make_user):
    alice, bob = make_user(), make_user()
    token, _ = _create_token(signed_in(alice))
    with server.app_context():
        alice_token_id = users.list_api_tokens(users.find_user(alice.username))[0].id
    response = _revoke(signed_in(bob), alice_token_id)
    assert response.status_code == 200 and "No such token." in response.text
    assert server.test_client().get("/api/datasets", headers=bearer(token)).status_code == 200


def test_auth016_anonymous_token_callback_does_nothing(client):
    client.get("/")
    response = dash_post(client, [("account-token-new", "children"), ("account-token-list", "children"),
                                  ("account-token-name", "value")],
                         [("account-token-create", "n_clicks", 1), []],
                         state=[("account-token-name", "value", "x")], changed=["account-token-create.n_clicks"])
    assert response.status_code == 200 and "log in again" in response.text and "no_" not in response.text


def test_auth017_csrf_cookie_matches_session(client):
    client.get("/")
    assert csrf_cookie(client)
    cookie = client.get_cookie("session")
    assert cookie is not None and cookie.http_only and cookie.same_site == "Lax"
