"""The nanoorg command line: JSON output keys (a contract), errors on stderr with exit code 2."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import shapely

from compute import clusters
from cli import main

from .conftest import META, rectangle_um, write_csr_file


@pytest.fixture
def instance_env(monkeypatch, tmp_path):
    monkeypatch.setenv("NANOORG_INSTANCE", str(tmp_path / "instance"))
    monkeypatch.setenv("NANOORG_SEED_DEMO", "0")
    return tmp_path


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_analyse_json_uses_roi_naming_rule(capsys, tmp_path):
    paths = write_csr_file(tmp_path, "cell", rois=[rectangle_um(0.5, 0.5, 9.5, 9.5)])
    code, out, _ = run(capsys, "analyse", str(paths[0]), "--json")
    result = json.loads(out)
    assert code == 0 and result["n_rois"] == 1 and result["roi_source"] == "file"
    assert result["n_tiles"] == 9
    for key in ("n_locs", "n_locs_roi", "density", "coverage", "precision_median", "n_tiles_kept", "n_tiles_dropped"):
        assert key in result
    raw = pd.read_csv(paths[0])
    assert result["n_locs"] == len(raw)


def test_dbscan_and_ripley_match_compute(capsys, tmp_path):
    paths = write_csr_file(tmp_path, "cell", density=100, size_nm=6000, rois=[rectangle_um(0.2, 0.2, 5.8, 5.8)])
    labels_csv = tmp_path / "labels.csv"
    code, out, _ = run(capsys, "dbscan", str(paths[0]), "--eps", "60", "--min-samples", "4", "--labels",
                       str(labels_csv), "--json")
    summary = json.loads(out)
    raw = pd.read_csv(paths[0])
    region = shapely.Polygon(np.array(rectangle_um(0.2, 0.2, 5.8, 5.8)) * 1000)
    inside = shapely.contains_xy(region, raw["x [nm]"], raw["y [nm]"])
    x, y = raw["x [nm]"].to_numpy()[inside], raw["y [nm]"].to_numpy()[inside]
    expected = clusters.cluster_summary(x, y, clusters.dbscan_labels(x, y, 60, 4), region.area / 1e6)
    assert code == 0 and summary["n_clusters"] == expected["n_clusters"]
    assert summary["percent_clustered"] == pytest.approx(expected["percent_clustered"])
    header = labels_csv.read_text().splitlines()[:2]
    assert header[0].startswith("# nano-org") and "sha256" in header[1]

    code, out, _ = run(capsys, "ripley", str(paths[0]), "--r-max", "200", "--dr", "50", "--edge", "none", "--json")
    curve = json.loads(out)
    assert code == 0 and curve["r"] == [50.0, 100.0, 150.0, 200.0]
    reference = clusters.ripley(x, y, np.array(curve["r"]), window=region, edge="none")
    np.testing.assert_allclose(curve["H"], reference.H)


def test_errors_go_to_stderr_with_exit_code(capsys, tmp_path):
    code, out, err = run(capsys, "analyse", str(tmp_path / "missing.csv"))
    assert code == 2 and out == "" and "missing.csv" in err
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    code, _, err = run(capsys, "analyse", str(empty))
    assert code == 2 and "empty.csv" in err


def test_users_ingest_similar_compare(capsys, instance_env, tmp_path):
    assert run(capsys, "create-user", "alice", "--email", "a@example.org", "--password", "long enough pw")[0] == 0
    code, _, err = run(capsys, "create-user", "alice", "--email", "a@example.org", "--password", "long enough pw")
    assert code == 2 and "taken" in err
    ids = []
    for k in range(2):
        folder = tmp_path / f"ds{k}"
        write_csr_file(folder, f"cell{k}", density=150, seed=k, rois=[rectangle_um(0.5, 0.5, 9.5, 9.5)])
        meta = tmp_path / f"meta{k}.json"
        meta.write_text(json.dumps(dict(META, title=f"Dataset {k}", visibility="public")))
        code, out, _ = run(capsys, "ingest", str(folder), "--metadata", str(meta), "--owner", "alice", "--json", "--quiet")
        assert code == 0
        result = json.loads(out)
        assert result["n_files"] == 1 and result["n_tiles"] == 9
        ids.append(result["id"])
    code, out, _ = run(capsys, "similar", str(ids[0]), "--json")
    results = json.loads(out)["results"]
    assert code == 0 and [r["dataset_id"] for r in results] == [ids[1]]
    assert results[0]["unthinned_n_pairs"] == 81 and results[0]["thinned_mean"] < 1
    code, out, _ = run(capsys, "compare", str(ids[0]), str(ids[1]), "--json")
    compared = json.loads(out)
    assert compared["unthinned"]["n_pairs"] == 81 and set(compared) >= {"thinned_30", "thinned_100"}
    code, out, _ = run(capsys, "token", "alice", "--json")
    assert code == 0 and json.loads(out)["token"].startswith("no_")
    bad_meta = tmp_path / "bad.json"
    bad_meta.write_text(json.dumps(dict(META, title="Bad", doi="nope")))
    code, _, err = run(capsys, "ingest", str(tmp_path / "ds0"), "--metadata", str(bad_meta), "--owner", "alice")
    assert code == 2 and "DOI" in err


def test_migrate_creates_then_keeps_the_schema(capsys, instance_env, monkeypatch):
    from databank.schema import head_revision

    monkeypatch.delenv("DATABASE_URL", raising=False)
    code, out, _ = run(capsys, "migrate", "--json")
    assert code == 0 and json.loads(out) == dict(previous=None, revision=head_revision())
    code, out, _ = run(capsys, "migrate", "--json")
    assert code == 0 and json.loads(out) == dict(previous=head_revision(), revision=head_revision())


def test_contact_messages_are_stored_and_listed(capsys, instance_env):
    """Issue 12 item 5: the contact form's messages reach the administrators through `nanoorg messages`."""
    from config import load_settings
    from databank.contact import ContactError, store_message
    from databank.core import make_data_app

    app = make_data_app(load_settings())
    with app.app_context():
        with pytest.raises(ContactError, match="email address"):
            store_message(None, "not-an-address", "The viewer shows nothing for my file.")
        with pytest.raises(ContactError, match="at least 10"):
            store_message(None, "a@example.org", "hi")
        store_message(None, "a@example.org", "The viewer shows nothing for my file.")
        store_message(None, "b@example.org", "Second message, please answer.")
    code, out, _ = run(capsys, "messages", "--json")
    messages = json.loads(out)["messages"]
    assert code == 0 and [m["reply_to"] for m in messages] == ["b@example.org", "a@example.org"]
    assert messages[1]["body"] == "The viewer shows nothing for my file." and messages[1]["user_id"] is None
    code, out, _ = run(capsys, "messages", "--limit", "1")
    assert code == 0 and "b@example.org" in out and "a@example.org" not in out
