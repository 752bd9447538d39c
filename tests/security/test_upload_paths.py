"""Path traversal through upload file names: the user's name is kept as data, never used as a path."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.web import support


@pytest.mark.parametrize("name", ["../../../../tmp/evil.csv", "..\\..\\evil.csv", "/etc/passwd", "a/../../b.csv",
                                  "\x00evil.csv"])
def test_upload_names_never_become_paths(app, settings, user, signed_in, name):
    client = signed_in(user)
    headers = {"X-CSRFToken": support.csrf_cookie(client)}
    upload_id = client.post("/upload/start", headers=headers).get_json()["upload_id"]
    response = client.post(f"/upload/chunk/{upload_id}", query_string=dict(index=0, offset=0, last=1, name=name),
                           data=b"x,y\n1,2\n", headers=headers)
    assert response.status_code in (200, 400), response.text
    staging = Path(settings.staging_dir).resolve()
    written = [p for p in staging.rglob("*") if p.is_file()]
    assert all(p.resolve().is_relative_to(staging) for p in written)
    assert {p.name for p in written} <= {"0.part", "0.json"}
    status = client.get(f"/upload/status/{upload_id}").get_json()
    for entry in status.get("files", []):
        assert "/" not in entry["name"] and "\\" not in entry["name"] and ".." != entry["name"][:2]
