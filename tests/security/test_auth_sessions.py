"""Attacks on sign-in and sessions: racing the login throttle, probing account names, locking the
owner out, reusing a session cookie after logout, the demo owner's password, CSRF-less POSTs, open
redirects, revoked tokens, readable secret files (issue 8 items 3, 4, 5, 12)."""

from __future__ import annotations

import re
import stat
import threading
from datetime import timedelta

import pytest

from config import load_settings
from databank import users
from databank.models import User, db, utcnow
from tests.web import support


def _wrong(account):
    return support.Account(account.id, account.username, account.email, "not the password")


def _post_login(client, username, password):
    page = client.get("/login")
    return client.post("/login", data={"username": username, "password": password,
                                       "csrf_token": support.form_csrf(page.text)})


def _counting_checks(monkeypatch):
    """Count every password hash check (real accounts and the dummy check for unknown names)."""
    calls = []
    lock = threading.Lock()
    real = users.check_password_hash
    real_method = User.check_password

    def counted(*args):
        with lock:
            calls.append(1)
        return real(*args)

    def counted_method(self, password):
        with lock:
            calls.append(1)
        return real_method(self, password)

    monkeypatch.setattr(users, "check_password_hash", counted)
    monkeypatch.setattr(User, "check_password", counted_method)
    return calls


# --------------------------------------------------------------------------------------------
# item 3: the login throttle

@pytest.mark.parametrize("known", [True, False], ids=["known-name", "unknown-name"])
def test_racing_40_wrong_passwords_checks_at_most_the_free_attempts(server, user, monkeypatch, known):
    """40 simultaneous wrong passwords: only FREE_FAILURES are checked, the rest get 429."""
    name = user.username if known else "nobody_at_all"
    clients = [server.test_client() for _ in range(40)]
    tokens = [support.form_csrf(c.get("/login").text) for c in clients]
    calls = _counting_checks(monkeypatch)
    barrier = threading.Barrier(len(clients))
    statuses = [None] * len(clients)

    def attempt(k):
        barrier.wait()
        statuses[k] = clients[k].post("/login", data={"username": name, "password": "wrong guess",
                                                      "csrf_token": tokens[k]}).status_code

    threads = [threading.Thread(target=attempt, args=(k,)) for k in range(len(clients))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(calls) == users.FREE_FAILURES
    assert sorted(statuses) == [200] * users.FREE_FAILURES + [429] * (40 - users.FREE_FAILURES)


def test_unknown_names_are_throttled_exactly_like_known_ones(server, user):
    """The answers for an existing and a made-up name are the same, status and text."""
    def sequence(name):
        client = server.test_client()
        pages = [_post_login(client, name, "wrong guess") for _ in range(users.FREE_FAILURES + 1)]
        return [(p.status_code, re.search(r'id="login-error"[^>]*>([^<]*)<', p.text).group(1)) for p in pages]

    known, unknown = sequence(user.username), sequence("ghost_account")
    assert [status for status, _ in known] == [200] * users.FREE_FAILURES + [429]
    assert known[0][1] == "Wrong user name or password." and known[-1][1].startswith("Too many failed attempts")
    assert [(status, re.sub(r"\d+", "N", text)) for status, text in known] == \
        [(status, re.sub(r"\d+", "N", text)) for status, text in unknown]


def test_one_client_guessing_many_names_is_limited(server, make_user):
    """Spraying one password over many names from one address hits the per-client limit; another
    address is not affected."""
    victim = make_user("victim_user")
    attacker = server.test_client()
    attacker.environ_base["REMOTE_ADDR"] = "203.0.113.7"
    statuses = [_post_login(attacker, f"name_{k}", "Summer2026!").status_code
                for k in range(users.FREE_FAILURES_PER_CLIENT + 1)]
    assert statuses[:users.FREE_FAILURES_PER_CLIENT] == [200] * users.FREE_FAILURES_PER_CLIENT
    assert statuses[-1] == 429
    assert _post_login(attacker, victim.username, victim.password).status_code == 429
    bystander = server.test_client()
    bystander.environ_base["REMOTE_ADDR"] = "198.51.100.9"
    assert _post_login(bystander, victim.username, victim.password).status_code == 302


def test_the_owner_is_not_locked_out_forever(app, user):
    """However many failures, the right password works again after at most MAX_LOCKOUT_SECONDS."""
    with app.server.app_context():
        start = utcnow()
        now = start
        for _ in range(30):                      # an attacker who keeps coming back when allowed
            try:
                users.authenticate(user.username, "wrong guess", now=now)
            except users.LoginThrottled as exc:
                assert exc.seconds <= users.MAX_LOCKOUT_SECONDS
                now += timedelta(seconds=exc.seconds)
        now += timedelta(seconds=users.MAX_LOCKOUT_SECONDS)
        assert users.authenticate(user.username, "wrong guess", now=now) is None     # blocks again
        with pytest.raises(users.LoginThrottled) as throttled:
            users.authenticate(user.username, user.password, now=now)
        assert throttled.value.seconds == users.MAX_LOCKOUT_SECONDS
        later = now + timedelta(seconds=users.MAX_LOCKOUT_SECONDS)
        assert users.authenticate(user.username, user.password, now=later).id == user.id
        # success starts afresh: the free attempts are available again
        for _ in range(users.FREE_FAILURES - 1):
            assert users.authenticate(user.username, "wrong again", now=later) is None
        assert users.authenticate(user.username, user.password, now=later).id == user.id
        db.session.remove()


@pytest.mark.parametrize("failures, expected", [(0, 0), (2, 0), (3, 2), (4, 4), (6, 16), (11, 300), (500, 300)])
def test_lockout_grows_then_stops_at_the_maximum(failures, expected):
    assert users.lockout_seconds(failures) == expected


# --------------------------------------------------------------------------------------------
# item 4: logout ends every session

def test_cookie_copied_before_logout_no_longer_reads_a_private_dataset(server, user, signed_in, make_dataset):
    dataset_id = make_dataset(user, visibility="private")
    browser = signed_in(user)
    stolen = server.test_client()
    stolen.set_cookie("session", browser.get_cookie("session").value)
    assert stolen.get(f"/api/datasets/{dataset_id}").status_code == 200
    token = support.form_csrf(browser.get("/logout").text)
    assert browser.post("/logout", data={"csrf_token": token}).status_code == 302
    after = stolen.get(f"/api/datasets/{dataset_id}")
    assert after.status_code == 404 and after.get_json()["error"]
    assert user.username not in support.layout_text(stolen)


def test_logout_in_one_browser_ends_the_others_and_a_new_login_works(server, user, signed_in, make_dataset):
    dataset_id = make_dataset(user, visibility="private")
    laptop, phone = signed_in(user), signed_in(user)
    laptop.post("/logout", data={"csrf_token": support.form_csrf(laptop.get("/logout").text)})
    assert phone.get(f"/api/datasets/{dataset_id}").status_code == 404
    assert support.login(phone, user).status_code == 302
    assert phone.get(f"/api/datasets/{dataset_id}").status_code == 200


# --------------------------------------------------------------------------------------------
# item 5: the demo owner

def test_demo_owner_gets_a_generated_private_password(app, settings, capsys):
    from databank import demo

    messages = []
    with app.server.app_context():
        owner = demo._demo_owner(settings, messages.append)
        kept = settings.instance_dir / demo.PASSWORD_FILE
        password = kept.read_text().strip()
        assert stat.S_IMODE(kept.stat().st_mode) == 0o600
        assert len(password) >= 20 and password != demo.RETIRED_PASSWORD
        assert owner.check_password(password) and not owner.check_password(demo.RETIRED_PASSWORD)
        assert len(messages) == 1 and password in messages[0]
        assert demo._demo_owner(settings, messages.append).id == owner.id and len(messages) == 1  # shown once
        db.session.remove()


def test_the_documented_demo_password_is_retired_at_start(app, settings, make_user, signed_in):
    from databank import demo

    old = make_user(demo.DEMO_USER, demo.RETIRED_PASSWORD)
    old_session = signed_in(old)
    with app.server.app_context():
        assert demo.retire_documented_password(settings) is True
        assert demo.retire_documented_password(settings) is False          # nothing left to do
        db.session.remove()
    assert _post_login(app.server.test_client(), demo.DEMO_USER, demo.RETIRED_PASSWORD).status_code == 200
    new_password = (settings.instance_dir / demo.PASSWORD_FILE).read_text().strip()
    assert _post_login(app.server.test_client(), demo.DEMO_USER, new_password).status_code == 302
    assert demo.DEMO_USER not in support.layout_text(old_session)           # its sessions ended


def test_no_documented_password_in_config_or_readme():
    from config import PROJECT_ROOT, Settings

    assert Settings.demo_password is None
    for name in ("README.md", "config.py"):
        assert "nanoorg-demo" not in (PROJECT_ROOT / name).read_text(), name


# --------------------------------------------------------------------------------------------
# item 12: secret files

def test_secret_key_is_created_private_and_an_old_readable_one_is_fixed(tmp_path, monkeypatch):
    monkeypatch.delenv("SECRET_KEY", raising=False)
    settings = load_settings(instance_dir=tmp_path / "new")
    key_file = tmp_path / "new" / "secret_key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600 and settings.secret_key == key_file.read_text().strip()
    old = tmp_path / "old"
    old.mkdir()
    (old / "secret_key").write_text("abc123")
    (old / "secret_key").chmod(0o644)
    assert load_settings(instance_dir=old).secret_key == "abc123"
    assert stat.S_IMODE((old / "secret_key").stat().st_mode) == 0o600


def test_sqlite_database_is_private_new_and_old(tmp_path):
    from databank.core import make_data_app

    settings = load_settings(instance_dir=tmp_path / "instance", secret_key="k")
    make_data_app(settings)
    database = tmp_path / "instance" / "nanoorg.sqlite"
    assert database.stat().st_size > 0 and stat.S_IMODE(database.stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "instance").stat().st_mode) == 0o700
    database.chmod(0o644)
    make_data_app(settings)
    assert stat.S_IMODE(database.stat().st_mode) == 0o600
    for suffix in ("-wal", "-shm"):
        journal = database.with_name(database.name + suffix)
        if journal.exists():
            assert stat.S_IMODE(journal.stat().st_mode) == 0o600


def test_an_old_database_gains_the_session_generation_column(tmp_path):
    """A bank at the first schema revision (before session generations) is migrated at start: its
    users get generation 0 and can sign in; the old throttle columns are gone."""
    from sqlalchemy import create_engine, inspect, text

    from databank.core import make_data_app
    from databank.schema import upgrade_schema

    settings = load_settings(instance_dir=tmp_path / "instance", secret_key="k")
    settings.ensure_dirs()
    engine = create_engine(settings.database_url)
    upgrade_schema(engine, target="0001_initial")
    with engine.begin() as connection:
        connection.execute(text("INSERT INTO users (id, username, email, password_hash, created_at, failed_logins) "
                                "VALUES (1, 'olduser', 'old@example.org', 'x', '2026-01-01', 0)"))
    engine.dispose()
    app = make_data_app(settings)
    with app.app_context():
        assert users.find_user("olduser").session_generation == 0
        columns = {c["name"] for c in inspect(db.engine).get_columns("users")}
        assert "session_generation" in columns and "failed_logins" not in columns
        db.session.remove()


# --------------------------------------------------------------------------------------------
# attacks that held: CSRF, open redirects, revoked tokens

@pytest.mark.parametrize("path", ["/login", "/register", "/logout", "/upload/start", "/_dash-update-component"])
def test_posts_without_csrf_token_are_refused(server, user, signed_in, path):
    client = signed_in(user)
    response = client.post(path, data={"username": user.username, "password": user.password})
    assert response.status_code == 400
    assert client.get("/api/datasets").status_code == 200
    assert user.username in support.layout_text(client)               # still signed in: logout refused


@pytest.mark.parametrize("target", ["//evil.example", "https://evil.example/x", "/\\evil.example",
                                    "javascript:alert(1)", " //evil.example"])
def test_next_never_redirects_off_site(server, user, signed_in, target):
    response = support.login(server.test_client(), user, next_url=target)
    assert response.status_code == 302 and response.headers["Location"] == "/"
    already = signed_in(user).get("/login", query_string={"next": target})
    assert already.status_code == 302 and already.headers["Location"] == "/"


def test_revoked_token_reads_nothing(app, server, user, make_dataset):
    dataset_id = make_dataset(user, visibility="private")
    with app.server.app_context():
        owner = db.session.get(User, user.id)
        token = users.create_api_token(owner, "script")
        assert server.test_client().get(f"/api/datasets/{dataset_id}", headers=support.bearer(token)).status_code == 200
        users.revoke_api_token(owner, users.list_api_tokens(owner)[0].id)
        db.session.remove()
    refused = server.test_client().get(f"/api/datasets/{dataset_id}", headers=support.bearer(token))
    assert refused.status_code == 401 and "revoked" in refused.get_json()["error"]
