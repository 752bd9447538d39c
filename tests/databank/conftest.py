"""Fixtures for the data layer: a fresh instance folder and app context per test, synthetic files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from compute import simulate
from config import load_settings
from databank.core import make_data_app
from databank.demo import write_fiji_roi, write_thunderstorm_csv
from databank.models import db
from databank.users import create_user
from tests.databases import database_overrides



@pytest.fixture
def settings(tmp_path):
    return load_settings(instance_dir=tmp_path / "instance", seed_demo=False, secret_key="test-secret",
                         **database_overrides())


@pytest.fixture
def app(settings):
    app = make_data_app(settings)
    with app.app_context():
        yield app
        db.session.remove()
        db.engine.dispose()


@pytest.fixture
def users(app):
    return {name: create_user(name, f"{name}@example.org", "correct horse battery") for name in ("alice", "bob", "carol")}


def write_csr_file(folder: Path, stem: str, *, density=200.0, size_nm=12_000.0, seed=1, rois=()) -> list[Path]:
    """A ThunderSTORM CSV of a CSR pattern plus Fiji ROI files (vertices in um); returns the paths."""
    folder.mkdir(parents=True, exist_ok=True)
    detection = folder / f"{stem}.csv"
    write_thunderstorm_csv(detection, simulate.simulate_csr(density, size_nm, size_nm, seed=seed))
    paths = [detection]
    for k, vertices in enumerate(rois, start=1):
        roi = folder / f"{stem}_ROI_{k}.csv"
        write_fiji_roi(roi, np.asarray(vertices, dtype=float))
        paths.append(roi)
    return paths


def rectangle_um(x0, y0, x1, y1):
    return [(x0, y0), (x1, y0), (x1, y1), (x0, y1)]


META = dict(title="Test dataset", modality="dSTORM", software="ThunderSTORM", protein="EGFR", cell_type="COS-7",
            fluorophore="Alexa Fluor 647", primary_antibody="anti-EGFR")
