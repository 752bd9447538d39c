"""Helpers for HTTP-level tests of the web app (shared by tests/web and tests/browser).

- ``shared_app()``: one ``create_app`` per test session on a temporary instance folder.
- ``wipe_database(app)``: empty every table (except the bank-version counter) between tests.
- ``Account`` / ``add_user``: users with known passwords.
- ``login(client, account)``: signs in through the real /login form, with its CSRF token.
- ``csrf_cookie(client)``: the token the Dash renderer would send as X-CSRFToken.
- ``dash_post(...)``: a Dash callback POST to /_dash-update-component.
- ``BackgroundJob``: start a background callback and poll it over HTTP, as the renderer does.
- ``callback_context(...)``: call a callback as a plain function with ``dash.ctx`` set (cookies,
  triggered inputs), Dash's own unit-testing recipe (it uses two private Dash names, which only the
  tests import; ``tests/web/test_dash_adapter.py`` pins them).
- ``render_page(client, path)``: the page content Dash's router returns for a path.
- ``add_dataset(...)``: a bare Dataset row (no files) with any visibility, for access tests.
- ``ingest_small(...)``: a real ingest of a small synthetic file with one ROI.
"""

from __future__ import annotations

import atexit
import json
import re
import shutil
import tempfile
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from config import load_settings
from tests.databases import database_overrides

@contextmanager
def callback_context(**values):
    """Run the body with a Dash callback context holding ``values`` (``cookies``, ``triggered_inputs``
    ...), as Dash's testing documentation does for calling callbacks as functions."""
    from dash._callback_context import context_value
    from dash._utils import AttributeDict

    token = context_value.set(AttributeDict(**{**values, "ignore_register_page": False}))
    try:
        yield
    finally:
        context_value.reset(token)


PASSWORD = "correct horse battery"
TEST_SECRET = "test-secret-web"      # the secret key of the test apps
_SHARED: dict = {}


# --------------------------------------------------------------------------------------------
# app

def make_test_settings(root: Path | None = None):
    """Settings on a fresh temporary instance folder, no demo seeding, fixed secret."""
    if root is None:
        root = Path(tempfile.mkdtemp(prefix="nanoorg-web-"))
        atexit.register(shutil.rmtree, root, ignore_errors=True)
    return load_settings(instance_dir=root / "instance", seed_demo=False, secret_key=TEST_SECRET,
                         contact_email="help@nano-org.test", **database_overrides())


def shared_app():
    """The session's app (built once per process: page and callback registries are global)."""
    if "app" not in _SHARED:
        from app import create_app

        settings = make_test_settings()
        _SHARED["settings"] = settings
        _SHARED["app"] = create_app(settings)
    return _SHARED["app"]


def wipe_database(app) -> None:
    from databank.models import BankState, db

    with app.server.app_context():
        db.session.remove()
        for table in reversed(db.metadata.sorted_tables):
            if table.name != BankState.__tablename__:
                db.session.execute(table.delete())
        db.session.commit()
        db.session.remove()


# --------------------------------------------------------------------------------------------
# users and sign-in

def use_fast_password_hashing(monkeypatch) -> None:
    """Hash test passwords with a cheap method: scrypt costs ~0.4 s per hash or check."""
    import functools

    from werkzeug.security import generate_password_hash

    from databank import models

    monkeypatch.setattr(models, "generate_password_hash",
                        functools.partial(generate_password_hash, method="pbkdf2:sha256:1000"))


@dataclass
class Account:
    id: int
    username: str
    email: str
    password: str = PASSWORD


def add_user(app, username: str | None = None, password: str = PASSWORD) -> Account:
    from databank.models import db
    from databank.users import create_user

    username = username or "user_" + uuid.uuid4().hex[:8]
    with app.server.app_context():
        user = create_user(username, f"{username}@example.org", password)
        account = Account(user.id, user.username, user.email, password)
        db.session.remove()
    return account


def form_csrf(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, "no csrf_token field in the form"
    return match.group(1)


def login(client, account: Account, next_url: str | None = None, follow_redirects: bool = False):
    """Sign in through the real form (GET for the CSRF token, then POST)."""
    page = client.get("/login")
    data = {"username": account.username, "password": account.password, "csrf_token": form_csrf(page.text)}
    if next_url is not None:
        data["next"] = next_url
    return client.post("/login", data=data, follow_redirects=follow_redirects)


def csrf_cookie(client) -> str:
    """The signed CSRF token of the client's session, as the Dash renderer sends it."""
    cookie = client.get_cookie("_csrf_token")
    if cookie is None:
        client.get("/")
        cookie = client.get_cookie("_csrf_token")
    return cookie.value


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


# --------------------------------------------------------------------------------------------
# Dash callbacks

def _id_text(component_id) -> str:
    if isinstance(component_id, dict):
        return json.dumps(component_id, sort_keys=True, separators=(",", ":"))
    return component_id


def dash_post(client, outputs, inputs, state=(), changed=None, csrf: bool = True, query=None):
    """POST a callback. ``outputs``: [(id, prop)]; ``inputs``/``state``: [(id, prop, value)] or raw
    dicts / lists of dicts (pattern-matching ALL); ``changed``: prop ids like "btn.n_clicks"."""
    def entry(item):
        if isinstance(item, (dict, list)):
            return item
        component_id, prop, value = item
        return {"id": component_id, "property": prop, "value": value}

    out = [{"id": i, "property": p} for i, p in outputs]
    if len(out) == 1:
        output_key, outputs_field = f"{_id_text(out[0]['id'])}.{out[0]['property']}", out[0]
    else:
        output_key = ".." + "...".join(f"{_id_text(o['id'])}.{o['property']}" for o in out) + ".."
        outputs_field = out
    inputs = [entry(i) for i in inputs]
    if changed is None:
        changed = [f"{_id_text(i['id'])}.{i['property']}" for i in inputs if isinstance(i, dict)][:1]
    body = {"output": output_key, "outputs": outputs_field, "inputs": inputs,
            "state": [entry(s) for s in state], "changedPropIds": changed}
    headers = {"X-CSRFToken": csrf_cookie(client)} if csrf else {}
    return client.post("/_dash-update-component", json=body, headers=headers, query_string=query)


def page_end_id(client, path: str = "/") -> str:
    """The signed per-page-load token (``endId``) Dash puts in the page's config."""
    page = client.get(path).get_data(as_text=True)
    match = re.search(r'<script id="_dash-config" type="application/json">(.*?)</script>', page, re.S)
    assert match, "no Dash config in the page"
    return json.loads(match.group(1))["end_id"]


class BackgroundJob:
    """A background callback started and polled over HTTP the way the renderer does.

    ``start()`` POSTs the inputs with the page load's ``endId`` and keeps the signed ``cacheKey``
    and ``job`` handles of the answer; ``poll()`` POSTs them back (input values nulled) and
    returns (status code, JSON body or None)."""

    def __init__(self, client, outputs, inputs, state=(), changed=None, path: str = "/", csrf: bool = True):
        self.client, self.outputs, self.inputs, self.state, self.changed = client, outputs, inputs, state, changed
        self.csrf = csrf
        self.end_id = page_end_id(client, path)
        self.handles: dict = {}

    def start(self) -> dict:
        response = dash_post(self.client, self.outputs, self.inputs, self.state, self.changed, csrf=self.csrf,
                             query={"endId": self.end_id})
        assert response.status_code in (200, 202), response.get_data(as_text=True)[:500]
        self.handles = response.get_json()
        assert "cacheKey" in self.handles and "job" in self.handles, self.handles
        return self.handles

    @property
    def cache_key(self) -> str:
        """The unsigned result key (the part before the signature)."""
        return self.handles["cacheKey"].rpartition("~")[0]

    @property
    def job_id(self) -> str:
        """The unsigned job id."""
        return self.handles["job"].rpartition("~")[0]

    def poll(self, handles: dict | None = None):
        handles = handles or self.handles
        nulled = [(i, p, None) for i, p, _ in self.inputs]
        response = dash_post(self.client, self.outputs, nulled, [(i, p, None) for i, p, _ in self.state],
                             self.changed or [f"{_id_text(self.inputs[0][0])}.{self.inputs[0][1]}"], csrf=self.csrf,
                             query={"endId": self.end_id, "cacheKey": handles["cacheKey"], "job": handles["job"]})
        body = response.get_json(silent=True) if response.status_code == 200 else None
        return response.status_code, body

    def result(self, timeout: float = 60.0) -> dict:
        """Poll until the callback answers with its outputs (status 200 with a ``response``)."""
        import time

        end = time.monotonic() + timeout
        while time.monotonic() < end:
            status, body = self.poll()
            if status == 200 and body and "response" in body:
                return body["response"]
            assert status in (200, 202, 204), status
            time.sleep(0.05)
        raise AssertionError(f"no result within {timeout} s")


def render_page(client, path: str):
    """(status, text) of the page content Dash's router renders for ``path`` (may include ?query)."""
    pathname, _, query = path.partition("?")
    client.get(pathname)            # the index page: sets the session and CSRF cookies
    response = dash_post(client, [("_pages_content", "children"), ("_pages_store", "data")],
                         [("_pages_location", "pathname", pathname),
                          ("_pages_location", "search", f"?{query}" if query else "")],
                         changed=["_pages_location.pathname"])
    return response.status_code, response.get_data(as_text=True)


def layout_text(client) -> str:
    """The app shell (navbar, footer) as served to this client."""
    return client.get("/_dash-layout").get_data(as_text=True)


# --------------------------------------------------------------------------------------------
# datasets

def add_dataset(app, owner: Account, *, visibility: str = "public", shared_with=(), **fields) -> int:
    """A Dataset row without files (fast access and listing tests); returns its id."""
    from databank.models import Dataset, DatasetShare, db

    values = dict(title=f"Dataset {uuid.uuid4().hex[:8]}", modality="PALM", software="ThunderSTORM",
                  protein="EGFR", cell_type="COS-7", n_files=1, n_locs=1000, n_tiles=2, density=10.0)
    values.update(fields)
    with app.server.app_context():
        dataset = Dataset(owner_id=owner.id, visibility=visibility, storage_key=uuid.uuid4().hex, **values)
        dataset.shares = [DatasetShare(user_id=a.id) for a in shared_with]
        db.session.add(dataset)
        db.session.commit()
        dataset_id = dataset.id
        db.session.remove()
    return dataset_id


def write_small_files(folder: Path, stem: str, *, n: int = 3000, seed: int = 0) -> list[Path]:
    """A ThunderSTORM-style CSV (n uniform points in 10 x 10 um) and one Fiji ROI (X,Y in um)."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    x, y = rng.uniform(0, 10_000, n), rng.uniform(0, 10_000, n)
    detection = folder / f"{stem}.csv"
    detection.write_text('"frame","x [nm]","y [nm]","uncertainty [nm]"\n'
                         + "".join(f"{k + 1},{a:.1f},{b:.1f},12.5\n" for k, (a, b) in enumerate(zip(x, y))))
    roi = folder / f"{stem}_ROI_1.csv"
    roi.write_text("X,Y\n0.5,0.5\n9.6,0.5\n9.6,6.8\n0.5,6.8\n")
    return [detection, roi]


def ingest_small(app, owner: Account, folder: Path, *, visibility: str = "public", shared_with=(),
                 seed: int = 0, **metadata) -> int:
    """Ingest one small dataset through the real pipeline; returns its id."""
    from databank.ingest import StagedFile, ingest_dataset
    from databank.models import User, db

    meta = dict(title=f"Ingested {uuid.uuid4().hex[:8]}", modality="PALM", software="ThunderSTORM",
                protein="EGFR", cell_type="COS-7")
    meta.update(metadata)
    paths = write_small_files(folder / uuid.uuid4().hex[:8], "cell1", seed=seed)
    with app.server.app_context():
        dataset = ingest_dataset([StagedFile(p, p.name) for p in paths], meta, db.session.get(User, owner.id),
                                 visibility=visibility, shared_with=[a.username for a in shared_with])
        dataset_id = dataset.id
        db.session.remove()
    return dataset_id


# JavaScript for browser tests: the header texts of a grid that the browser cuts ('Density (loc/…').
TRUNCATED_HEADERS_JS = """
const grid = document.querySelector(arguments[0]);
return Array.from(grid.querySelectorAll('.ag-header-cell-text, .ag-header-group-text'))
    .filter(e => e.offsetParent !== null && e.textContent.trim()
            && (e.scrollWidth > e.clientWidth + 1 || e.scrollHeight > e.clientHeight + 1))
    .map(e => e.textContent.trim());
"""
