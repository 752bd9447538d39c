"""The databank page: server-side rows for the AG Grid infinite row model, only readable datasets."""

from __future__ import annotations

import pytest

from databank.metadata import LONG_TEXT_FIELDS, METADATA_FIELDS
from databank.models import DatasetShare, db
from callbacks import databank as cb

from .helpers_datasets import add_bare_dataset, as_user, build_bank, client_as, dash_post, find_ids, page_layout
import ids

N_PUBLIC = 25


@pytest.fixture(scope="module")
def bank(tmp_path_factory):
    bank = build_bank(tmp_path_factory.mktemp("databank"), with_files=False)
    with bank.server.app_context():
        alice, bob, carol = (bank.users[n] for n in ("alice", "bob", "carol"))
        for k in range(N_PUBLIC):
            add_bare_dataset(alice if k % 2 else carol, f"Public set {k:02d}", protein=f"P{k:02d}",
                             cell_type="HeLa" if k < 10 else "Jurkat", n_locs=1000 * (k + 1), density=float(k),
                             tags="membrane" if k == 7 else None)
        add_bare_dataset(alice, "Alice private LAT", visibility="private", protein="LAT", tags="secret-tag")
        shared = add_bare_dataset(alice, "Alice shared ZAP70", visibility="shared", protein="ZAP70")
        add_bare_dataset(carol, "Carol private CD3", visibility="private", protein="CD3", n_locs=10 ** 9)
        db.session.flush()
        db.session.add(DatasetShare(dataset_id=shared.id, user_id=bob))
        db.session.commit()
        db.session.remove()
    return bank


def request(start=0, end=100, sort=None, filters=None):
    return {"startRow": start, "endRow": end, "sortModel": sort or [], "filterModel": filters or {}}


def rows_for(bank, user, search=None, **kw):
    with as_user(bank, user):
        response, count = cb.grid_rows(request(**kw), search)
    return response["rowData"], response["rowCount"], count


def titles(rows):
    return {r["title"] for r in rows}


def test_anonymous_sees_only_public(bank):
    rows, total, count = rows_for(bank, None)
    assert total == N_PUBLIC and len(rows) == N_PUBLIC
    assert all(r["visibility"] == "public" for r in rows)
    assert count == f"{N_PUBLIC} datasets"


def test_private_datasets_of_others_never_appear(bank):
    rows, total, _ = rows_for(bank, "bob")
    assert "Alice shared ZAP70" in titles(rows)                     # shared with bob
    assert not titles(rows) & {"Alice private LAT", "Carol private CD3"}
    assert total == N_PUBLIC + 1
    rows, total, _ = rows_for(bank, "dave")                          # signed in, nothing shared
    assert total == N_PUBLIC and "Alice shared ZAP70" not in titles(rows)
    rows, total, _ = rows_for(bank, "alice")
    assert {"Alice private LAT", "Alice shared ZAP70"} <= titles(rows)
    assert "Carol private CD3" not in titles(rows) and total == N_PUBLIC + 2
    rows, _, _ = rows_for(bank, "carol")
    assert "Carol private CD3" in titles(rows) and "Alice private LAT" not in titles(rows)


def test_search_matches_metadata_text_and_respects_access(bank):
    rows, total, count = rows_for(bank, None, search="membrane")
    assert titles(rows) == {"Public set 07"} and "matching “membrane”" in count
    rows, total, _ = rows_for(bank, None, search="jurkat P2")        # every word must match
    assert titles(rows) == {f"Public set {k}" for k in range(20, 25)}
    assert rows_for(bank, None, search="secret-tag")[1] == 0         # private text is not searchable
    assert rows_for(bank, "carol", search="secret-tag")[1] == 0
    assert titles(rows_for(bank, "alice", search="SECRET-tag")[0]) == {"Alice private LAT"}
    assert rows_for(bank, None, search="carol")[1] == 13             # owner name is searchable


def test_server_side_sort(bank):
    rows, _, _ = rows_for(bank, None, sort=[{"colId": "n_locs", "sort": "desc"}], end=5)
    assert [r["n_locs"] for r in rows] == [25000, 24000, 23000, 22000, 21000]
    rows, _, _ = rows_for(bank, None, sort=[{"colId": "title", "sort": "asc"}])
    assert [r["title"] for r in rows] == sorted(r["title"] for r in rows)
    rows, _, _ = rows_for(bank, None, sort=[{"colId": "owner", "sort": "asc"}, {"colId": "density", "sort": "desc"}])
    assert [r["owner"] for r in rows][:1] == ["alice"] and rows[0]["density"] == 23.0
    # every metadata column is sortable on the server
    for field in METADATA_FIELDS:
        rows_for(bank, None, sort=[{"colId": field.name, "sort": "desc"}], end=3)
    # unknown columns are ignored rather than reaching SQL
    rows, total, _ = rows_for(bank, None, sort=[{"colId": "password_hash", "sort": "asc"}])
    assert total == N_PUBLIC


def test_server_side_filters(bank):
    text = {"protein": {"filterType": "text", "type": "contains", "filter": "p1"}}
    rows, total, count = rows_for(bank, None, filters=text)
    assert titles(rows) == {f"Public set {k}" for k in range(10, 20)} and "column filters" in count
    number = {"n_locs": {"filterType": "number", "type": "greaterThan", "filter": 22000}}
    assert titles(rows_for(bank, None, filters=number)[0]) == {"Public set 22", "Public set 23", "Public set 24"}
    both = {**number, "cell_type": {"filterType": "text", "type": "equals", "filter": "jurkat"}}
    assert rows_for(bank, None, filters=both)[1] == 3
    in_range = {"density": {"filterType": "number", "type": "inRange", "filter": 3, "filterTo": 5}}
    assert rows_for(bank, None, filters=in_range)[1] == 3
    # a filter can't reveal private datasets (carol's CD3 has 1e9 localisations)
    huge = {"n_locs": {"filterType": "number", "type": "greaterThan", "filter": 10 ** 8}}
    assert rows_for(bank, "bob", filters=huge)[1] == 0
    assert rows_for(bank, "carol", filters=huge)[1] == 1
    # malformed filters: unknown columns dropped, bad numbers give an empty answer (no error)
    assert rows_for(bank, None, filters={"password_hash": {"type": "contains", "filter": "x"}})[1] == N_PUBLIC
    rows, total, count = rows_for(bank, None, filters={"n_locs": {"filterType": "number", "type": "equals",
                                                                  "filter": "lots"}})
    assert rows == [] and total == 0 and count.startswith("No datasets")


def test_paging(bank):
    seen = []
    for start in range(0, N_PUBLIC, 10):
        rows, total, _ = rows_for(bank, None, start=start, end=start + 10, sort=[{"colId": "title", "sort": "asc"}])
        assert total == N_PUBLIC
        seen += [r["title"] for r in rows]
    assert seen == sorted(f"Public set {k:02d}" for k in range(N_PUBLIC))
    rows, _, _ = rows_for(bank, None, start=0, end=100_000)          # block size is capped
    assert len(rows) == N_PUBLIC


def test_rows_carry_grid_columns(bank):
    rows, _, _ = rows_for(bank, None, end=1)
    row = rows[0]
    for key in ("id", "title", "protein", "cell_type", "modality", "software", "fluorophore", "density",
                "n_files", "n_locs", "n_tiles", "owner", "visibility", "created", "simulated"):
        assert key in row
    for field in METADATA_FIELDS:      # long free text stays on the dataset page, out of the list
        assert (field.name in row) == (field.name not in LONG_TEXT_FIELDS), field.name


def test_layout_is_an_infinite_grid_with_every_column(bank):
    with as_user(bank, None, "/databank"):
        layout = page_layout("/databank")(q="tigit")
    found = find_ids(layout)
    grid = found[ids.Databank.GRID]
    assert grid.rowModelType == "infinite"
    assert grid.defaultColDef["sortable"] is True
    fields = {c["field"]: c for c in grid.columnDefs}
    for name in ("title", "protein", "cell_type", "modality", "software", "fluorophore", "density", "n_files",
                 "n_locs", "n_tiles", "owner", "visibility", "created"):
        assert not fields[name].get("hide"), name
    for field in METADATA_FIELDS:
        assert (field.name in fields) == (field.name not in LONG_TEXT_FIELDS), field.name
    assert fields["n_locs"]["filter"] == "agNumberColumnFilter"
    assert fields["protein"]["filter"] == "agTextColumnFilter"
    assert fields["title"]["cellRenderer"] == "NanoorgDatasetLink"
    assert found[ids.Databank.SEARCH].value == "tigit" and found[ids.Databank.SEARCH].debounce
    assert ids.Databank.COUNT in found


def test_column_chooser_hides_and_shows():
    columns = [{"field": "title"}, {"field": "protein"}, {"field": "doi", "hide": True}]
    result = cb.visible_columns(["doi"], columns)
    assert [c.get("hide") for c in result] == [None, True, False]


def test_grid_callback_over_http(bank):
    """The real Dash endpoint (with CSRF) answers the grid with readable rows only."""
    outputs = [(ids.Databank.GRID, "getRowsResponse"), (ids.Databank.COUNT, "children")]
    args = dict(output=f"..{ids.Databank.GRID}.getRowsResponse...{ids.Databank.COUNT}.children..", outputs=outputs,
                inputs=[(ids.Databank.GRID, "getRowsRequest", request(sort=[{"colId": "title", "sort": "desc"}]))],
                state=[(ids.Databank.SEARCH, "value", "")])
    anonymous = dash_post(client_as(bank, None), **args)
    assert anonymous.status_code == 200, anonymous.data
    data = anonymous.get_json()["response"][ids.Databank.GRID]["getRowsResponse"]
    assert data["rowCount"] == N_PUBLIC and all(r["visibility"] == "public" for r in data["rowData"])
    bob = dash_post(client_as(bank, "bob"), **args).get_json()["response"][ids.Databank.GRID]["getRowsResponse"]
    assert "Alice shared ZAP70" in {r["title"] for r in bob["rowData"]}
    assert "Alice private LAT" not in {r["title"] for r in bob["rowData"]}


def test_databank_page_is_served(bank):
    client = client_as(bank, None)
    assert client.get("/databank").status_code == 200
    script = client.get("/assets/databank_grid.js")
    assert script.status_code == 200 and b"NanoorgDatasetLink" in script.data


def test_layout_restores_search_sort_and_filters_from_the_url():
    """Issue 12 item 7: /databank?q=&sort=&f= rebuilds the same grid; junk in the URL is ignored."""
    import json

    from pages import databank as page

    grid_filter = {"density": {"filterType": "number", "type": "greaterThan", "filter": 10},
                   "fluorophore": {"filterType": "text", "type": "contains", "filter": "647"},
                   "password_hash": {"filterType": "text", "type": "contains", "filter": "x"}}
    view = page.layout(q="EGFR", sort="density:desc,title:asc,nope:asc,n_locs:sideways", f=json.dumps(grid_filter))
    grid = next(c for c in _walk(view) if getattr(c, "id", None) == ids.Databank.GRID)
    search = next(c for c in _walk(view) if getattr(c, "id", None) == ids.Databank.SEARCH)
    assert search.value == "EGFR"
    by_field = {c["field"]: c for c in grid.columnDefs}
    assert (by_field["density"]["sort"], by_field["density"]["sortIndex"]) == ("desc", 0)
    assert (by_field["title"]["sort"], by_field["title"]["sortIndex"]) == ("asc", 1)
    assert "sort" not in by_field["n_locs"]
    assert set(grid.filterModel) == {"density", "fluorophore"}
    assert by_field["fluorophore"]["hide"] is False            # a filtered column is shown
    assert page.layout(f="{not json").children[-1].filterModel == {}


def _walk(component):
    yield component
    children = getattr(component, "children", None)
    for child in children if isinstance(children, (list, tuple)) else [children] if children is not None else []:
        if hasattr(child, "to_plotly_json"):
            yield from _walk(child)
