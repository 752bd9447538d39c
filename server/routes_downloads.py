"""Download routes (plain Flask, registered by ``create_app`` through ``register(server)``).

Browser routes::

    GET /download/dataset/<id>/originals.zip   untouched uploaded files (+ original ROI files)
    GET /download/dataset/<id>/gridded.zip     one CSV per 3 x 3 um tile ("x [nm]","y [nm]")
    GET /download/dataset/<id>/images.zip      one density PNG per file
    GET /download/dataset/<id>/rois.zip        ROI polygons, CSV X,Y in um
    GET /download/file/<file_id>/original      one uploaded file
    GET /download/file/<file_id>/image.png     its density PNG (``?inline=1`` to display)

The same for scripts (Bearer API tokens are resolved by the app's request_loader)::

    GET /api/datasets/<id>/download/<originals|gridded|images|rois>
    GET /api/files/<file_id>/download          (``?kind=image`` for the PNG)

Every route: signed-in users only (anonymous -> 401 JSON for API clients, redirect to /login for
browsers), then ``access.get_dataset/get_file(current_user, id, "download")``; missing and
forbidden both answer 404. User file names only ever become sanitised download names.
"""

from __future__ import annotations

import io
from urllib.parse import quote

from flask import Blueprint, Flask, abort, jsonify, redirect, request, send_file
from flask_login import current_user

from databank import exports
from databank.access import AccessDenied, get_dataset, get_file

ARCHIVES = {"originals.zip": "originals", "gridded.zip": "gridded", "images.zip": "images", "rois.zip": "rois"}

blueprint = Blueprint("nanoorg_downloads", __name__)


def _is_api_client() -> bool:
    if request.path.startswith("/api/"):
        return True
    accept = request.accept_mimetypes
    return bool(accept) and not accept.accept_html and accept.accept_json


def _login_required():
    """None when signed in, else the refusal (401 JSON or a redirect to the login page)."""
    if getattr(current_user, "is_authenticated", False):
        return None
    if _is_api_client():
        response = jsonify(error="login required", detail="Sign in or send an API token to download.")
        response.status_code = 401
        response.headers["WWW-Authenticate"] = 'Bearer realm="nano-org"'
        return response
    return redirect("/login?next=" + quote(request.path, safe="/"))


def _not_found():
    if _is_api_client():
        response = jsonify(error="not found")
        response.status_code = 404
        return response
    abort(404)


def _no_store(response):
    response.headers["Cache-Control"] = "private, no-store"
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


def _send_archive(dataset_id, kind: str):
    refusal = _login_required()
    if refusal is not None:
        return refusal
    try:
        dataset = get_dataset(current_user, dataset_id, "download")
    except AccessDenied:
        return _not_found()
    path = exports.dataset_zip(kind, dataset, exports.current_store(), exports.export_dir())
    # Open, then unlink at once: the archive lives only as long as the open handle (POSIX), so it
    # is gone after the response even when the client disconnects half-way.
    handle = open(path, "rb")
    path.unlink(missing_ok=True)
    try:
        response = send_file(handle, mimetype="application/zip", as_attachment=True,
                             download_name=exports.archive_name(dataset, kind), etag=False, max_age=0)
    except BaseException:
        handle.close()
        raise
    return _no_store(response)


def _send_file_original(file_id):
    refusal = _login_required()
    if refusal is not None:
        return refusal
    try:
        data_file = get_file(current_user, file_id, "download")
    except AccessDenied:
        return _not_found()
    path = exports.current_store().original_path(data_file)
    if not path.exists():
        return _not_found()
    name = exports.safe_name(data_file.name, f"file_{data_file.id}")
    response = send_file(path, mimetype="application/octet-stream", as_attachment=True, download_name=name,
                         etag=False, max_age=0)
    return _no_store(response)


def _send_file_image(file_id, inline: bool = False):
    refusal = _login_required()
    if refusal is not None:
        return refusal
    try:
        data_file = get_file(current_user, file_id, "download")
    except AccessDenied:
        return _not_found()
    png = exports.file_png(data_file, exports.current_store())
    name = exports.safe_stem(data_file.name, f"file_{data_file.id}") + ".png"
    response = send_file(io.BytesIO(png), mimetype="image/png", as_attachment=not inline, download_name=name,
                         max_age=0)
    return _no_store(response)


@blueprint.get("/download/dataset/<int:dataset_id>/<archive>")
def download_dataset(dataset_id: int, archive: str):
    if archive not in ARCHIVES:
        return _not_found()
    return _send_archive(dataset_id, ARCHIVES[archive])


@blueprint.get("/download/file/<int:file_id>/original")
def download_file_original(file_id: int):
    return _send_file_original(file_id)


@blueprint.get("/download/file/<int:file_id>/image.png")
def download_file_image(file_id: int):
    return _send_file_image(file_id, inline=request.args.get("inline") in ("1", "true", "yes"))


@blueprint.get("/api/datasets/<int:dataset_id>/download/<kind>")
def api_download_dataset(dataset_id: int, kind: str):
    if kind not in exports.EXPORT_KINDS:
        return _not_found()
    return _send_archive(dataset_id, kind)


@blueprint.get("/api/files/<int:file_id>/download")
def api_download_file(file_id: int):
    kind = request.args.get("kind", "original")
    if kind == "image":
        return _send_file_image(file_id)
    if kind != "original":
        return _not_found()
    return _send_file_original(file_id)


def dataset_download_url(dataset_id: int, kind: str) -> str:
    """Browser URL of a dataset archive ('originals', 'gridded', 'images', 'rois')."""
    return f"/download/dataset/{int(dataset_id)}/{kind}.zip"


def file_download_url(file_id: int, what: str = "original") -> str:
    """Browser URL of one file's original ('original') or density image ('image')."""
    return f"/download/file/{int(file_id)}/" + ("image.png" if what == "image" else "original")


def register(server: Flask) -> None:
    """Add the download routes to the Flask server (idempotent)."""
    if blueprint.name not in server.blueprints:
        server.register_blueprint(blueprint)
