"""Dataset Details page (layout, owner callbacks) and the download routes."""

from __future__ import annotations

import ids

import io
import re
import zipfile

import numpy as np
import pytest
from PIL import Image

from databank.access import authorise
from databank.metadata import METADATA_FIELDS
from databank.models import Dataset, db
from databank.users import create_api_token
from callbacks import dataset as cb

from .helpers_datasets import (add_bare_dataset, as_user, build_bank, client_as, find_ids, page_layout,
                               read_locs_csv, text_of)

TILE = 3000.0


@pytest.fixture(scope="module")
def bank(tmp_path_factory):
    return build_bank(tmp_path_factory.mktemp("dataset-page"))


@pytest.fixture
def ctx(bank):
    with bank.server.app_context():
        yield bank
        db.session.remove()


def view(bank, user, dataset_id):
    with as_user(bank, user, f"/dataset/{dataset_id}"):
        return page_layout("/dataset/<dataset_id>")(dataset_id=str(dataset_id))


def path_of(bank, key):
    return f"/dataset/{bank.datasets[key]}"


# --------------------------------------------------------------------------------------------
# layout


def test_layout_refuses_foreign_private_without_leaking(bank):
    missing = view(bank, "carol", 999_999)
    assert "dataset-not-found" in find_ids(missing)
    for user in ("carol", "bob", "dave", None):
        page = view(bank, user, bank.datasets["private"])
        found = find_ids(page)
        assert "dataset-not-found" in found and "dataset-info" not in found, user
        assert "Alice private EGFR" not in text_of(page)
        assert text_of(page) == text_of(view(bank, user, 999_999)).replace("999999", str(bank.datasets["private"]))
    assert "dataset-not-found" in find_ids(view(bank, None, "not-a-number"))
    assert "dataset-not-found" in find_ids(view(bank, "dave", bank.datasets["shared"]))


def test_layout_for_readers(bank):
    page = view(bank, "bob", bank.datasets["shared"])             # shared with bob
    found = find_ids(page)
    assert "dataset-info" in found and "dataset-owner-tools" not in found
    assert "dataset-similarity-section" in found
    assert "Alice shared CD8" in text_of(page)


def test_public_layout_anonymous_and_signed_in(bank):
    public_id = bank.datasets["public"]
    anonymous = find_ids(view(bank, None, public_id))
    assert "dataset-login-to-download" in anonymous
    assert not any(isinstance(k, tuple) and ("type", "file-download") in k for k in anonymous)
    assert not any(str(k).startswith("dataset-download-") for k in anonymous)
    views = [k for k in anonymous if isinstance(k, tuple) and ("type", "file-view") in k]
    assert len(views) == 1 and anonymous[views[0]].href.startswith("/file/")

    signed_in = find_ids(view(bank, "dave", public_id))
    assert "dataset-login-to-download" not in signed_in and "dataset-owner-tools" not in signed_in
    for kind in ("originals", "gridded", "images", "rois"):
        assert signed_in[f"dataset-download-{kind}"].href == f"/download/dataset/{public_id}/{kind}.zip"
    downloads = [v for k, v in signed_in.items() if isinstance(k, tuple) and ("type", "file-download") in k]
    assert len(downloads) == 1 and re.fullmatch(r"/download/file/\d+/original", downloads[0].href)


def test_metadata_table_links_and_owner_tools(bank):
    page = view(bank, "alice", bank.datasets["public"])
    found = find_ids(page)
    text = text_of(found["dataset-metadata-table"])
    for field in METADATA_FIELDS:
        assert field.label in text, field.label
    assert "Owner" in text and "alice" in text and "Created" in text
    assert found["dataset-link-doi"].href == "https://doi.org/10.1038/s41592-022-01750-6"
    assert found["dataset-link-licence"].href.startswith("https://creativecommons.org/")
    assert {"dataset-owner-tools", "dataset-edit-modal", "dataset-visibility-modal", "dataset-delete-modal"} <= set(found)
    files = text_of(found["dataset-file-table"])
    for header in ("Localisations", "Density", "Coverage", "Precision", "ROIs", "Tiles kept / dropped"):
        assert header in files
    assert "tigit.csv" in files


# --------------------------------------------------------------------------------------------
# owner callbacks


def edit_form(**values):
    names = [f.name for f in METADATA_FIELDS if f.kind != "bool"]
    field_ids = [{"type": ids.Dataset.FIELD_TYPE, "name": n} for n in names]
    flags = [f.name for f in METADATA_FIELDS if f.kind == "bool"]
    flag_ids = [{"type": ids.Dataset.FLAG_TYPE, "name": n} for n in flags]
    return ([values.get(n, "") for n in names], field_ids, [values.get(n, False) for n in flags], flag_ids)


def base_values(dataset) -> dict:
    return {k: ("" if v is None else v) for k, v in dataset.metadata_dict().items()}


def test_edit_refuses_non_owners_even_with_forged_paths(bank, ctx):
    target = bank.dataset("private")
    values = base_values(target) | {"title": "Hijacked"}
    for user in ("carol", "bob", "dave", None):
        with as_user(bank, user):
            result = cb.save_metadata(1, *edit_form(**values), path_of(bank, "private"))
        assert cb.DENIED in text_of(result[2])
    with as_user(bank, "carol"):               # any path naming alice's dataset is refused
        assert cb.DENIED in text_of(cb.save_metadata(1, *edit_form(**values), path_of(bank, "shared"))[2])
    with as_user(bank, "alice"):               # the owner cannot reach carol's dataset by editing the path
        result = cb.save_metadata(1, *edit_form(**values), path_of(bank, "carol_private"))
        assert cb.DENIED in text_of(result[2])
    assert bank.dataset("private").title == "Alice private EGFR"
    assert bank.dataset("shared").title == "Alice shared CD8"
    assert bank.dataset("carol_private").title == "Carol private LAT"


def test_owner_edits_metadata_with_validation(bank, ctx):
    values = base_values(bank.dataset("shared"))
    with as_user(bank, "alice"):
        invalid, messages, feedback, is_open, info = cb.save_metadata(
            1, *edit_form(**values | {"doi": "not a doi", "title": ""}), path_of(bank, "shared"))
    names = [f.name for f in METADATA_FIELDS if f.kind != "bool"]
    flagged = {n for n, bad in zip(names, invalid) if bad}
    assert flagged == {"doi", "title"}
    assert "DOI" in messages[names.index("doi")] or "doi" in messages[names.index("doi")].lower()
    assert "correct" in text_of(feedback).lower()
    assert bank.dataset("shared").doi is None

    with as_user(bank, "alice"):
        invalid, messages, feedback, is_open, info = cb.save_metadata(
            1, *edit_form(**values | {"cell_type": "Jurkat E6.1", "drift_correction": True}), path_of(bank, "shared"))
    assert not any(invalid) and is_open is False and "Jurkat E6.1" in text_of(info)
    dataset = bank.dataset("shared")
    assert dataset.cell_type == "Jurkat E6.1" and dataset.drift_correction is True


def test_visibility_refuses_non_owners(bank, ctx):
    path = path_of(bank, "shared")
    for user in ("bob", "carol", None):         # bob can read it but not change it
        with as_user(bank, user):
            feedback, is_open, info = cb.save_visibility(1, "public", "", path)
        assert cb.DENIED in text_of(feedback) and is_open is cb.no_update
    assert bank.dataset("shared").visibility == "shared"
    with as_user(bank, "alice"):
        feedback, _, _ = cb.save_visibility(1, "shared", "nobody_here", path)
    assert "nobody_here" in text_of(feedback)
    with as_user(bank, "alice"):
        feedback, _, _ = cb.save_visibility(1, "shared", "", path)
    assert "at least one user" in text_of(feedback)


def test_owner_changes_visibility(bank, ctx):
    victim = add_bare_dataset(bank.users["alice"], "Visibility test", visibility="private")
    db.session.commit()
    path = f"/dataset/{victim.id}"
    with as_user(bank, "alice"):
        feedback, is_open, info = cb.save_visibility(1, "shared", "dave", path)
    assert is_open is False and "Shared" in text_of(info)
    assert authorise(bank.user("dave"), db.session.get(Dataset, victim.id), "download")
    assert not authorise(bank.user("bob"), db.session.get(Dataset, victim.id), "read")
    with as_user(bank, "alice"):
        cb.save_visibility(1, "public", "dave", path)
    dataset = db.session.get(Dataset, victim.id)
    assert dataset.visibility == "public" and dataset.shared_with == []


def test_owner_edits_an_existing_share_list(bank, ctx):
    path = path_of(bank, "shared")             # shared with bob
    with as_user(bank, "alice"):
        feedback, is_open, info = cb.save_visibility(1, "shared", "bob, dave", path)
    assert is_open is False and bank.dataset("shared").shared_with == ["bob", "dave"]
    with as_user(bank, "alice"):
        cb.save_visibility(1, "shared", "bob", path)
    assert bank.dataset("shared").shared_with == ["bob"]


def test_delete_refuses_non_owners_and_owner_deletes(bank, ctx):
    victim = add_bare_dataset(bank.users["alice"], "To be deleted", visibility="public")
    db.session.commit()
    victim_id = victim.id
    for user in ("carol", "bob", None):
        with as_user(bank, user):
            feedback, href = cb.delete_dataset(1, f"/dataset/{victim_id}")
        assert cb.DENIED in text_of(feedback) and href is cb.no_update
    assert db.session.get(Dataset, victim_id) is not None
    with as_user(bank, "alice"):
        feedback, href = cb.delete_dataset(1, f"/dataset/{victim_id}")
    assert href == "/databank"
    db.session.expire_all()
    assert db.session.get(Dataset, victim_id) is None
    assert cb.dataset_id_from_path("/dataset/12/") == 12 and cb.dataset_id_from_path("/dataset/x") is None


# --------------------------------------------------------------------------------------------
# download routes


def file_ids(bank, key):
    with bank.server.app_context():
        return [f.id for f in bank.dataset(key).files]


def dataset_urls(dataset_id):
    urls = [f"/download/dataset/{dataset_id}/{k}.zip" for k in ("originals", "gridded", "images", "rois")]
    return urls + [f"/api/datasets/{dataset_id}/download/{k}" for k in ("originals", "gridded", "images", "rois")]


def file_urls(file_id):
    return [f"/download/file/{file_id}/original", f"/download/file/{file_id}/image.png",
            f"/api/files/{file_id}/download", f"/api/files/{file_id}/download?kind=image"]


def all_urls(bank, key):
    return dataset_urls(bank.datasets[key]) + [u for fid in file_ids(bank, key) for u in file_urls(fid)]


def test_downloads_refuse_anonymous(bank):
    client = client_as(bank, None)
    for url in all_urls(bank, "public"):
        response = client.get(url, headers={"Accept": "text/html"})
        if url.startswith("/api/"):
            assert response.status_code == 401 and response.get_json()["error"], url
        else:
            assert response.status_code == 302 and response.headers["Location"].startswith("/login?next="), url
    json_client = client.get(f"/download/dataset/{bank.datasets['public']}/gridded.zip",
                             headers={"Accept": "application/json"})
    assert json_client.status_code == 401


def test_downloads_refuse_foreign_private_as_not_found(bank):
    for user, key in (("carol", "private"), ("bob", "private"), ("dave", "shared"), ("alice", "carol_private")):
        client = client_as(bank, user)
        for url in all_urls(bank, key):
            assert client.get(url).status_code == 404, (user, url)
    client = client_as(bank, "alice")
    assert client.get("/download/dataset/999999/originals.zip").status_code == 404
    assert client.get(f"/download/dataset/{bank.datasets['private']}/secrets.zip").status_code == 404
    assert client.get(f"/api/datasets/{bank.datasets['private']}/download/passwords").status_code == 404


@pytest.mark.parametrize("user,key", [("alice", "private"), ("bob", "shared"), ("dave", "public")])
def test_downloads_work_for_readers(bank, user, key):
    client = client_as(bank, user)
    for url in all_urls(bank, key):
        response = client.get(url)
        assert response.status_code == 200, (user, url)
        body = response.data
        if url.endswith("image.png") or url.endswith("kind=image"):
            assert body.startswith(b"\x89PNG")
        elif "download/file" in url or url.endswith("/download"):
            assert body.startswith(b'"frame","x [nm]"')
        else:
            assert zipfile.is_zipfile(io.BytesIO(body))
        assert "attachment" in response.headers["Content-Disposition"]
        assert response.headers["Cache-Control"].startswith("private")
    export_dir = bank.settings.cache_dir / "exports"
    assert not export_dir.exists() or not list(export_dir.iterdir())   # temp archives removed


def test_api_token_download(bank):
    with bank.server.app_context():
        token = create_api_token(bank.user("dave"), "script")
    client = bank.server.test_client()
    url = f"/api/datasets/{bank.datasets['public']}/download/rois"
    assert client.get(url, headers={"Authorization": f"Bearer {token}"}).status_code == 200
    assert client.get(url, headers={"Authorization": "Bearer wrong"}).status_code == 401
    private = f"/api/datasets/{bank.datasets['private']}/download/rois"
    assert client.get(private, headers={"Authorization": f"Bearer {token}"}).status_code == 404


def test_file_download_name_is_sanitised(bank):
    fid = file_ids(bank, "private")[0]
    response = client_as(bank, "alice").get(f"/download/file/{fid}/original")
    assert 'filename=cell_one.csv' in response.headers["Content-Disposition"]
    assert response.data == bank.files["private"]["cell one.csv"].read_bytes()


def test_originals_zip_holds_the_uploaded_bytes(bank):
    data = client_as(bank, "alice").get(f"/download/dataset/{bank.datasets['private']}/originals.zip").data
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        assert zf.read("cell_one.csv") == bank.files["private"]["cell one.csv"].read_bytes()
        assert zf.read("cell2.csv") == bank.files["private"]["cell2.csv"].read_bytes()
        assert zf.read("rois/cell_one_ROI_1.csv") == bank.files["private"]["cell one_ROI_1.csv"].read_bytes()


def test_gridded_zip_matches_an_independent_count(bank):
    """Kept tiles only, named by file, ROI and tile, with a manifest of every tile (issue 12 item 8)."""
    import pandas as pd

    data = client_as(bank, "alice").get(f"/download/dataset/{bank.datasets['private']}/gridded.zip").data
    with bank.server.app_context():
        files = [(f.name, [(t.index, t.roi_index, t.x0_nm, t.y0_nm, t.kept) for t in f.tiles])
                 for f in bank.dataset("private").files]
    stems = {"cell one.csv": "cell_one", "cell2.csv": "cell2"}
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        names = set(zf.namelist())
        n_kept = sum(kept for _, tiles in files for *_, kept in tiles)
        assert len(names) == n_kept + 1 and "manifest.csv" in names
        manifest = pd.read_csv(io.BytesIO(zf.read("manifest.csv")), comment="#", keep_default_na=False)
        assert len(manifest) == sum(len(tiles) for _, tiles in files)
        total = 0
        for name, tiles in files:
            x, y = read_locs_csv(bank.files["private"][name])
            for index, roi, x0, y0, kept in tiles:
                mask = (x >= x0) & (x < x0 + TILE) & (y >= y0) & (y < y0 + TILE)
                row = manifest[(manifest.file == name) & (manifest.tile_index == index)].iloc[0]
                assert row.n_locs == mask.sum() and row.roi == roi and row.kept == ("yes" if kept else "no")
                member = f"{stems[name]}_ROI{roi}_tile{index:03d}.csv"
                if not kept:
                    assert member not in names and row.csv == ""
                    continue
                assert row.csv == member
                text = zf.read(member).decode()
                assert text.splitlines()[0] == '"x [nm]","y [nm]"'
                rows = np.loadtxt(io.StringIO(text), delimiter=",", skiprows=1, ndmin=2).reshape(-1, 2)
                assert rows.shape[0] == mask.sum() >= 270, member
                assert np.allclose(np.sort(rows[:, 0]), np.sort(x[mask]), atol=0.01)
                assert np.allclose(np.sort(rows[:, 1]), np.sort(y[mask]), atol=0.01)
                total += rows.shape[0]
        assert total > 1000


def test_rois_zip_round_trips_vertices(bank):
    data = client_as(bank, "alice").get(f"/download/dataset/{bank.datasets['private']}/rois.zip").data
    with bank.server.app_context():
        rois = {f.name: [(r.index, r.vertices_nm, r.has_original) for r in f.rois]
                for f in bank.dataset("private").files}
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        assert sorted(zf.namelist()) == ["cell2_ROI_1.csv", "cell_one_ROI_1.csv"]
        # uploaded ROI file: returned untouched, and it matches the stored vertices
        assert zf.read("cell_one_ROI_1.csv") == bank.files["private"]["cell one_ROI_1.csv"].read_bytes()
        for member, file_name in (("cell_one_ROI_1.csv", "cell one.csv"), ("cell2_ROI_1.csv", "cell2.csv")):
            text = zf.read(member).decode()
            assert text.splitlines()[0] == "X,Y"
            um = np.loadtxt(io.StringIO(text), delimiter=",", skiprows=1, ndmin=2)
            (_, vertices_nm, _), = rois[file_name]
            assert np.allclose(um * 1000.0, np.asarray(vertices_nm), atol=1e-6), member
    assert not rois["cell2.csv"][0][2]            # the automatic ROI was regenerated


def test_images_zip_has_one_png_per_file(bank):
    data = client_as(bank, "alice").get(f"/download/dataset/{bank.datasets['private']}/images.zip").data
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        assert sorted(zf.namelist()) == ["cell2.png", "cell_one.png"]
        image = Image.open(io.BytesIO(zf.read("cell_one.png")))
        assert image.size == (1024, 1024) and image.mode == "RGB"
        pixels = np.asarray(image)
        assert pixels.std() > 5                       # not a blank picture
        assert ((pixels[..., 0] < 40) & (pixels[..., 1] > 200) & (pixels[..., 2] > 200)).any()  # cyan ROI



def test_file_names_break_only_between_words():
    """Issue 12 item 13: 'COS7_tubulin_cell3.csv' wrapped mid-word in Data Files."""
    from dash import html

    from components.file_table import breakable, file_row

    parts = breakable("COS7_tubulin_cell3-final.v2 copy.csv")
    assert [p for p in parts if isinstance(p, str)] == ["COS7_", "tubulin_", "cell3-", "final.", "v2 ", "copy.", "csv"]
    assert sum(isinstance(p, html.Wbr) for p in parts) == 6
    row = file_row({"id": 1, "name": "cell_one.csv"}, can_download=False)
    name = row.children[0].children[0]
    assert name.className == "fw-semibold nanoorg-file-name" and "text-break" not in name.className
    assert "".join(p for p in name.children if isinstance(p, str)) == "cell_one.csv"
