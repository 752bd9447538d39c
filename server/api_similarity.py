"""Similarity-search results over HTTP (JSON API and CSV download). ``register(server)``.

    GET /api/datasets/<id>/similar                  the ranked table (JSON; ``format=csv`` for CSV)
    GET /download/dataset/<id>/similar.csv          the same CSV for browsers (anonymous -> /login)

Query parameters (all optional):
  target=30|100                 thinning target in loc/um² (default: the instance's default, 30)
  sort=thinned|unthinned        which mean lambda orders the rows (default thinned)
  limit=N                       at most N rows in the JSON answer (default all)
  format=json|csv               JSON (default) or CSV (signed-in users and API tokens only)
  <field>[__<op>]=<value>       metadata filters applied before ranking, e.g. protein=EGFR,
                                cell_type=HeLa, modality=dSTORM, tags__contains=treated,
                                density__gte=100: the same filter language as GET /api/datasets
                                (text: eq, ne, contains, startswith, endswith, case-insensitive;
                                numbers: eq, ne, gt, gte, lt, lte; true/false fields: eq, ne).

JSON: {"dataset_id", "target", "bank_version", "lambda_mode", "sort", "filters", "total",
"results": [row, ...]}; rows as ``databank.search.similar_datasets``. Authorisation as everywhere:
the session or a Bearer API token; anonymous callers may read public datasets (JSON only).
Missing and unreadable datasets both answer 404; a bad parameter answers 400 with the reason.
Private datasets of other users never appear in the results (the data layer filters before ranking).
"""

from __future__ import annotations

from urllib.parse import quote

from flask import Blueprint, Response, jsonify, redirect, request
from flask_login import current_user

from databank import search
from databank.access import AccessDenied, get_dataset
from databank.core import settings_of
from databank.models import bank_version
from server.api import BadRequest as ApiBadRequest, query_filters

bp = Blueprint("nanoorg_api_similarity", __name__)

RESERVED = ("target", "sort", "limit", "format")


class BadParameter(ValueError):
    """A query parameter that cannot be used (answered 400)."""


def _error(status: int, message: str):
    response = jsonify(error=message, status=status)
    response.status_code = status
    response.headers["Cache-Control"] = "no-store"
    return response


def parse_target(raw) -> int:
    settings = settings_of()
    if raw is None or raw == "":
        return settings.default_thinning
    try:
        target = int(raw)
    except (TypeError, ValueError):
        target = None
    if target not in settings.thinning_targets:
        raise BadParameter(f"'target' must be one of {', '.join(map(str, settings.thinning_targets))} (loc/µm²), "
                           f"got '{raw}'.")
    return target


def parse_filters(args) -> dict:
    """Metadata filters from query parameters ``field[__op]=value``, as for /api/datasets."""
    try:
        return query_filters(args, RESERVED)
    except ApiBadRequest as exc:
        raise BadParameter(str(exc)) from None


def _parse_sort(raw) -> str:
    raw = (raw or "thinned").strip().lower()
    if raw not in ("thinned", "unthinned"):
        raise BadParameter(f"'sort' must be thinned or unthinned, got '{raw}'.")
    return raw


def _parse_limit(raw) -> int | None:
    if raw is None or raw == "":
        return None
    try:
        limit = int(raw)
    except ValueError:
        limit = -1
    if limit < 0:
        raise BadParameter(f"'limit' must be a whole number >= 0, got '{raw}'.")
    return limit


def csv_filename(dataset_id: int, target: int, sort: str = "thinned") -> str:
    return f"nano-org_dataset-{int(dataset_id)}_similar_{sort}_{int(target)}.csv"


def csv_response(rows: list[dict], filename: str) -> Response:
    response = Response(search.results_csv(rows), mimetype="text/csv")
    response.headers["Content-Disposition"] = f"attachment; filename=\"{filename}\""
    response.headers["Cache-Control"] = "private, no-store"
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


def _signed_in() -> bool:
    return bool(getattr(current_user, "is_authenticated", False))


def _results(dataset_id):
    """(dataset, target, sort, filters, rows) for the request, or raises AccessDenied / BadParameter."""
    dataset = get_dataset(current_user, dataset_id, "read")
    target = parse_target(request.args.get("target"))
    sort = _parse_sort(request.args.get("sort"))
    filters = parse_filters(request.args)
    try:
        rows = search.similar_datasets(current_user, dataset.id, target=target, filters=filters)
    except ValueError as exc:
        raise BadParameter(str(exc)) from None
    return dataset, target, sort, filters, search.sort_rows(rows, sort)


@bp.get("/api/datasets/<dataset_id>/similar")
def similar(dataset_id):
    fmt = (request.args.get("format") or "json").strip().lower()
    try:
        if fmt not in ("json", "csv"):
            raise BadParameter(f"'format' must be json or csv, got '{fmt}'.")
        limit = _parse_limit(request.args.get("limit"))
        get_dataset(current_user, dataset_id, "read")            # 404 before anything else
        if fmt == "csv" and not _signed_in():
            response = _error(401, "Sign in (or send an API token) to download results as CSV.")
            response.headers["WWW-Authenticate"] = 'Bearer realm="nano-org"'
            return response
        dataset, target, sort, filters, rows = _results(dataset_id)
    except AccessDenied:
        return _error(404, "No such dataset (or you may not read it).")
    except BadParameter as exc:
        return _error(400, str(exc))
    if fmt == "csv":
        return csv_response(rows, csv_filename(dataset.id, target, sort))
    response = jsonify(dataset_id=dataset.id, target=target, bank_version=bank_version(),
                       lambda_mode=settings_of().lambda_mode, sort=sort, filters=filters, total=len(rows),
                       no_scores_reason=search.dataset_no_scores_reason(current_user, dataset.id, target),
                       results=rows if limit is None else rows[:limit])
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/download/dataset/<int:dataset_id>/similar.csv")
def similar_csv(dataset_id):
    """Browser download of the results table (signed-in users; others are sent to the login page)."""
    if not _signed_in():
        return redirect("/login?next=" + quote(request.full_path.rstrip("?"), safe="/?=&"))
    try:
        dataset, target, sort, _, rows = _results(dataset_id)
    except AccessDenied:
        return _error(404, "No such dataset (or you may not read it).")
    except BadParameter as exc:
        return _error(400, str(exc))
    return csv_response(rows, csv_filename(dataset.id, target, sort))


def register(server) -> None:
    server.register_blueprint(bp)
