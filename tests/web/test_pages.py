"""Every page renders for anonymous and signed-in visitors; navbar, footer, guide content; offline."""

from __future__ import annotations

import json
import re

import dash
import pytest

from tests.web.support import layout_text, render_page

OWN_PAGES = ("/", "/guide", "/guide/similarity", "/guide/self-similarity", "/guide/fiji-roi", "/guide/api",
             "/account")


def _concrete_paths(server, dataset_id: int) -> list[str]:
    """Every registered page path, path templates filled with a real public dataset / file."""
    from databank.models import Dataset, db

    with server.app_context():
        file_id = db.session.get(Dataset, dataset_id).files[0].id
        db.session.remove()
    values = {"dataset_id": dataset_id, "file_id": file_id}
    paths = []
    for page in dash.page_registry.values():
        template = page.get("path_template")
        if template:
            paths.append(re.sub(r"<(\w+)>", lambda m: str(values.get(m.group(1), 1)), template))
        else:
            paths.append(page["path"])
    return sorted(set(paths))


def _content(text: str) -> dict:
    return json.loads(text)["response"]


def test_pages001_every_page_renders_for_anonymous_and_signed_in(server, client, signed_in, user, ingest):
    dataset_id = ingest(user, visibility="public", title="A public dataset")
    paths = _concrete_paths(server, dataset_id)
    assert set(OWN_PAGES) <= set(paths)
    assert "/databank" in paths and "/upload" in paths                # pages the navbar links to
    member = signed_in(user)
    for visitor, who in ((client, "anonymous"), (member, "signed in")):
        for path in paths:
            status, text = render_page(visitor, path)
            assert status == 200, f"{path} ({who}): {text[:500]}"
            content = _content(text)
            assert content["_pages_content"]["children"], f"{path} ({who}) is empty"
            assert content["_pages_store"]["data"]["title"], path


def test_pages002_navbar_for_anonymous_visitors(client):
    text = layout_text(client)
    for expected in ('"nav-home"', '"nano-org"', '"User Guide"', '"Databank"', '"nav-compare"', '"nav-login"', '"Log In"',
                     '"nav-register"', '"Register"', '"footer-legal"', '"footer-contact"'):
        assert expected in text, expected
    for absent in ('"nav-upload"', '"nav-logout"', '"nav-account"'):
        assert absent not in text


def test_pages003_navbar_for_signed_in_users(signed_in, user):
    text = layout_text(signed_in(user))
    for expected in ('"nav-upload"', '"Upload Data"', '"nav-account"', f'"{user.username}"', '"nav-logout"',
                     '"Log Out"'):
        assert expected in text, expected
    for absent in ('"nav-login"', '"nav-register"'):
        assert absent not in text


def test_pages004_footer_has_legal_notice_and_contact(client):
    text = layout_text(client)
    assert "belong to the people who uploaded them" in text and "without warranty" in text
    assert "mailto:help@nano-org.test" in text


def test_pages005_account_page_needs_sign_in(client, signed_in, user):
    _, text = render_page(client, "/account")
    assert "account-login" in text and "account-token-create" not in text
    _, text = render_page(signed_in(user), "/account")
    assert user.username in text and "account-token-create" in text and "You have no API tokens." in text


def test_pages006_unknown_path_shows_the_not_found_page(client):
    _, text = render_page(client, "/no/such/page")
    assert "not-found-page" in text and "Page not found" in text


def test_pages007_home_counts_readable_datasets(client, signed_in, user, make_dataset):
    make_dataset(user, visibility="public")
    make_dataset(user, visibility="private")
    _, text = render_page(client, "/")
    assert '"1"' in text and "home-register" in text
    _, text = render_page(signed_in(user), "/")
    assert '"2"' in text and "home-upload" in text and "home-register" not in text


@pytest.mark.parametrize("path, phrases", [
    ("/guide", ["Dataset details", "Data files", "Ripley", "DBSCAN", "Visibility and sharing", "Primary antibody",
                "{DETECTION_FILE_NAME}_ROI*.csv", "help@nano-org.test"]),
    ("/guide/similarity", ["λ = D / D_crit", "λ > 1", "Thinned and unthinned", "270", "900", "standard deviation"]),
    ("/guide/self-similarity", ["Within and between files", "λ = 1", "heterogeneous"]),
    ("/guide/fiji-roi", ["Edit › Selection › Properties", "List coordinates", "X,Y",
                         "COS7_tubulin_cell3_ROI_1.csv", "{DETECTION_FILE_NAME}_ROI*.csv", "micron"]),
    ("/guide/api", ["Authorization: Bearer", "curl", "/api/datasets", "/similar", "401", "404"]),
])
def test_pages008_guide_pages_explain(client, path, phrases):
    status, text = render_page(client, path)
    assert status == 200
    decoded = json.loads(text)
    flat = json.dumps(decoded, ensure_ascii=False)
    for phrase in phrases:
        assert phrase in flat, (path, phrase)


def test_pages009_no_external_css_or_js(client):
    index = client.get("/").get_data(as_text=True)
    for tag in re.findall(r"<(?:link|script)[^>]*>", index):
        assert "http://" not in tag and "https://" not in tag and "//" not in tag.split("src=")[-1][:3], tag
    assert "/assets/bootstrap.min.css" in index and "/assets/nanoorg.css" in index
    assert client.get("/assets/bootstrap.min.css").status_code == 200
    login_page = client.get("/login").get_data(as_text=True)
    assert not re.search(r'(?:href|src)="(?:https?:)?//', login_page)


def test_pages010_contact_route_with_and_without_an_address(server, client, signed_in, user):
    """Issue 12 item 5: 'Contact us' leads to a page with the address (if any) and a form stored for admins."""
    from flask_login import login_user

    from callbacks.contact import send_message
    from databank.contact import list_messages
    from databank.models import db
    from pages import contact

    text = layout_text(client).replace("\\u002f", "/")
    assert '"/contact"' in text and "mailto:help@nano-org.test" in text
    status, text = render_page(client, "/contact")
    assert status == 200 and "mailto:help@nano-org.test" in text and "contact-send" in text
    with server.test_request_context("/contact"):
        server.config["NANOORG_CONTACT_EMAIL"] = None
        try:
            assert "no public contact address" in json.dumps(contact.address_line().to_plotly_json(), default=str)
        finally:
            server.config["NANOORG_CONTACT_EMAIL"] = "help@nano-org.test"
    from databank.users import find_user

    with server.test_request_context("/_dash-update-component", method="POST"):
        login_user(find_user(user.username))
        alert, body = send_message(1, "me@example.org", "short")
        assert "at least 10" in str(alert.children) and body == "short"
        alert, body = send_message(1, "me@example.org", "Where do I find the pixel size?")
        assert "stored for the administrators" in str(alert.children) and body == ""
        (stored,) = list_messages()
        assert stored.user_id == find_user(user.username).id and stored.body == "Where do I find the pixel size?"
        db.session.remove()
    status, text = render_page(client, "/guide")
    assert "guide-contact-form" in text


def test_pages011_public_means_the_same_everywhere(client, signed_in, user, ingest):
    """Issue 12 item 4: the upload form said 'every registered user'; anonymous visitors can browse public data."""
    from databank.metadata import VISIBILITY_LABELS

    public = VISIBILITY_LABELS["public"]
    assert "anonymous" in public and "signed-in users can download" in public
    _, text = render_page(signed_in(user), "/upload")
    assert public in text and "every registered user" not in text
    dataset_id = ingest(user, visibility="public", title="A public dataset for labels")
    _, text = render_page(signed_in(user), f"/dataset/{dataset_id}")
    assert public in text
    _, text = render_page(client, f"/dataset/{dataset_id}")      # and it is true: anonymous visitors see it
    assert "A public dataset for labels" in text
    _, text = render_page(client, "/guide")
    assert "everybody, including anonymous visitors" in text and "every signed-in user" in text


@pytest.mark.parametrize("path, names", [
    ("/guide", ["databank.png", "dataset.png", "viewer.png"]),
    ("/guide/self-similarity", ["self_similarity.png"]),
    ("/guide/similarity", ["similarity_results.png"]),
])
def test_pages012_guide_figures_exist_and_are_small(client, path, names):
    """Issue 12 item 15: illustrated guide (figures made by docs/make_guide_figures.py from the demo bank)."""
    from config import PROJECT_ROOT

    status, text = render_page(client, path)
    assert status == 200
    for name in names:
        assert f"/assets/guide/{name}".replace("/", "\\u002f") in text or f"/assets/guide/{name}" in text, name
        png = PROJECT_ROOT / "assets" / "guide" / name
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size < 150 * 1024, name
        assert client.get(f"/assets/guide/{name}").status_code == 200
