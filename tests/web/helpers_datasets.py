"""Test helpers for the databank and Dataset Details pages and the download routes.

Synthetic files written here on purpose (independent of the project's writers): a ThunderSTORM
style CSV ``"frame","x [nm]","y [nm]","uncertainty [nm]"`` and a Fiji polygon ROI CSV ``X,Y`` in um.
Datasets are built with the real ingest (``ingest.ingest_dataset``) so tiles, ROIs and the store
are what production makes; bulk listing tests add bare Dataset rows (no files) for speed.
"""

from __future__ import annotations

import contextlib
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from flask_login import login_user, logout_user

from databank.ingest import StagedFile, ingest_dataset
from databank.models import Dataset, db
from databank.users import create_user
from server.auth import SESSION_GENERATION

PASSWORD = "correct horse battery"
# An irregular placement so tile edges are not at round numbers: tiles anchored at (500, 500) nm.
ROI_UM = [(0.5, 0.5), (9.6, 0.5), (9.6, 6.8), (0.5, 6.8)]


def write_thunderstorm(path: Path, x, y, *, seed: int = 0) -> Path:
    """ThunderSTORM-style CSV with frame, x [nm], y [nm], uncertainty [nm] (coordinates to 0.1 nm)."""
    rng = np.random.default_rng(seed)
    n = len(x)
    frames = np.sort(rng.integers(1, 5000, n))
    uncertainty = rng.uniform(5, 25, n)
    lines = ['"frame","x [nm]","y [nm]","uncertainty [nm]"']
    lines += [f"{f},{a:.1f},{b:.1f},{u:.2f}" for f, a, b, u in zip(frames, x, y, uncertainty)]
    path.write_text("\n".join(lines) + "\n")
    return path


def write_roi(path: Path, vertices_um) -> Path:
    """Fiji polygon export: header X,Y, one vertex per row, micrometres."""
    path.write_text("X,Y\n" + "".join(f"{vx},{vy}\n" for vx, vy in vertices_um))
    return path


def read_locs_csv(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """x, y (nm) of a file written by write_thunderstorm, read back independently of the project."""
    data = np.loadtxt(path, delimiter=",", skiprows=1, ndmin=2)
    return data[:, 1], data[:, 2]


def random_points(n: int, size_nm: float = 10_000.0, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return np.round(rng.uniform(0, size_nm, n), 1), np.round(rng.uniform(0, size_nm, n), 1)


@dataclass
class Bank:
    """A small bank: users alice, bob, carol, dave and datasets with every visibility."""
    app: object                                  # the Dash app (create_app)
    settings: object
    folder: Path
    users: dict = field(default_factory=dict)    # name -> user id
    datasets: dict = field(default_factory=dict)  # key -> dataset id
    files: dict = field(default_factory=dict)    # dataset key -> {user's file name: path written}

    @property
    def server(self):
        return self.app.server

    def user(self, name):
        from databank.models import User
        return db.session.get(User, self.users[name])

    def dataset(self, key):
        return db.session.get(Dataset, self.datasets[key])


def make_files(folder: Path, stem: str, *, n: int = 3000, seed: int = 0, roi=ROI_UM) -> list[StagedFile]:
    folder.mkdir(parents=True, exist_ok=True)
    x, y = random_points(n, seed=seed)
    staged = [StagedFile(write_thunderstorm(folder / f"{stem}.csv", x, y, seed=seed), f"{stem}.csv")]
    if roi is not None:
        staged.append(StagedFile(write_roi(folder / f"{stem}_ROI_1.csv", roi), f"{stem}_ROI_1.csv"))
    return staged


def ingest(bank: Bank, key: str, owner: str, *, title: str, visibility: str = "private", shared_with=(),
           files: list[StagedFile], **meta) -> int:
    metadata = dict(title=title, modality="PALM", software="ThunderSTORM", protein="EGFR", cell_type="COS-7",
                    fluorophore="mEos3.2")
    metadata.update(meta)
    dataset = ingest_dataset(files, metadata, bank.user(owner), visibility=visibility, shared_with=shared_with)
    bank.datasets[key] = dataset.id
    bank.files[key] = {f.name: f.path for f in files}
    return dataset.id


def fresh_bank(folder: Path) -> Bank:
    """The session's shared app (tests/web/support.py: one create_app per process) with its tables
    emptied and the users alice, bob, carol and dave created. Returns with no context pushed."""
    from tests.web import support

    app = support.shared_app()
    support.wipe_database(app)
    bank = Bank(app=app, settings=app.nanoorg_settings, folder=folder)
    with app.server.app_context():
        for name in ("alice", "bob", "carol", "dave"):
            bank.users[name] = create_user(name, f"{name}@example.org", PASSWORD).id
    return bank


def build_bank(folder: Path, *, with_files: bool = True) -> Bank:
    """A bank on the session's shared app (tests/web/support.py: one create_app per process), its
    tables emptied first. Returns with no context pushed."""
    bank = fresh_bank(folder)
    with bank.app.server.app_context():
        if with_files:
            src = folder / "uploads"
            # alice: private (2 files, one with a ROI file, one with an automatic ROI), shared with bob, public
            ingest(bank, "private", "alice", title="Alice private EGFR", visibility="private",
                   files=make_files(src / "a1", "cell one", seed=1) + make_files(src / "a1", "cell2", seed=2, roi=None),
                   tags="secret-tag")
            ingest(bank, "shared", "alice", title="Alice shared CD8", visibility="shared", shared_with=["bob"],
                   files=make_files(src / "a2", "cd8_cell", seed=3), protein="CD8", cell_type="Jurkat")
            ingest(bank, "public", "alice", title="Alice public TIGIT", visibility="public",
                   files=make_files(src / "a3", "tigit", seed=4), protein="TIGIT", cell_type="primary CD8 T cell",
                   modality="dSTORM", fluorophore="Alexa Fluor 647", doi="10.1038/s41592-022-01750-6",
                   licence_url="https://creativecommons.org/licenses/by/4.0/")
            ingest(bank, "carol_private", "carol", title="Carol private LAT", visibility="private",
                   files=make_files(src / "c1", "lat", seed=5), protein="LAT")
        db.session.remove()
    return bank


def add_bare_dataset(owner_id: int, title: str, *, visibility="public", **values) -> Dataset:
    """A Dataset row without files (listing, sorting and filtering tests)."""
    row = dict(modality="PALM", software="ThunderSTORM", n_files=1, n_locs=1000, n_tiles=3, density=10.0)
    row.update(values)
    dataset = Dataset(owner_id=owner_id, visibility=visibility, storage_key=uuid.uuid4().hex, title=title, **row)
    db.session.add(dataset)
    return dataset


@contextlib.contextmanager
def as_user(bank: Bank, name: str | None, path: str = "/"):
    """A request context of ``path`` with ``name`` signed in (None: anonymous)."""
    with bank.server.test_request_context(path):
        if name is not None:
            login_user(bank.user(name))
        try:
            yield
        finally:
            if name is not None:
                logout_user()
            db.session.remove()


def client_as(bank: Bank, name: str | None):
    """A Flask test client whose session is signed in as ``name`` (None: anonymous)."""
    client = bank.server.test_client()
    if name is not None:
        with client.session_transaction() as session:
            session["_user_id"] = str(bank.users[name])
            session["_fresh"] = True
            session[SESSION_GENERATION] = 0          # a user who never logged out
    return client


def page_layout(path_template: str):
    """The layout function Dash registered for a page path (or path template)."""
    import dash

    for page in dash.page_registry.values():
        if page.get("path_template") == path_template or page.get("path") == path_template:
            return page["layout"]
    raise LookupError(path_template)


def find_ids(component) -> dict:
    """Every component id in a layout tree -> component (string ids; dict ids as JSON-ish tuples)."""
    found = {}

    def walk(node):
        if node is None or isinstance(node, (str, int, float)):
            return
        if isinstance(node, (list, tuple)):
            for child in node:
                walk(child)
            return
        ident = getattr(node, "id", None)
        if ident is not None:
            key = ident if isinstance(ident, str) else tuple(sorted(ident.items()))
            found[key] = node
        walk(getattr(node, "children", None))
        for prop in ("header", "footer"):
            walk(getattr(node, prop, None))

    walk(component)
    return found


def text_of(component) -> str:
    """All text in a layout tree, space separated (text around a <wbr> is joined, as a browser shows it)."""
    from dash import html

    parts = []

    def walk(node):
        if node is None:
            return
        if isinstance(node, (str, int, float)):
            parts.append(str(node))
            return
        if isinstance(node, (list, tuple)):
            if any(isinstance(child, html.Wbr) for child in node):
                parts.append("".join(str(child) for child in node if isinstance(child, (str, int, float))))
                return
            for child in node:
                walk(child)
            return
        walk(getattr(node, "children", None))

    walk(component)
    return " ".join(parts)


def dash_post(client, output: str, outputs, inputs, state=(), changed=None):
    """POST one callback to /_dash-update-component like the renderer (CSRF cookie -> header).

    ``outputs``: [(id, prop)]; ``inputs``/``state``: [(id, prop, value)]. Returns the response.
    """
    import json

    client.get("/_dash-layout")                       # sets the _csrf_token cookie
    cookie = client.get_cookie("_csrf_token")
    body = {
        "output": output,
        "outputs": [{"id": i, "property": p} for i, p in outputs] if len(outputs) > 1
        else {"id": outputs[0][0], "property": outputs[0][1]},
        "inputs": [{"id": i, "property": p, "value": v} for i, p, v in inputs],
        "state": [{"id": i, "property": p, "value": v} for i, p, v in state],
        "changedPropIds": changed or [f"{inputs[0][0]}.{inputs[0][1]}"],
    }
    return client.post("/_dash-update-component", data=json.dumps(body), content_type="application/json",
                       headers={"X-CSRFToken": cookie.value if cookie else ""})
