"""Read-only JSON API (documented in docs/API.md; the keys are a contract).

  GET /api/datasets                         readable datasets, filtered, sorted and paged
  GET /api/datasets/<id>                    one dataset: metadata, counts, files with statistics
  GET /api/datasets/<id>/self-similarity    self-similarity lambdas and summaries

(``GET /api/datasets/<id>/similar``, the similarity-search table, is served by ``api_similarity``.)

Authentication: the browser session, or ``Authorization: Bearer <token>`` (tokens are made on the
account page); anonymous callers see public datasets. A bad or revoked token is refused with 401
by the app factory before any view runs. Missing and forbidden datasets both answer 404.
"""

from __future__ import annotations

from flask import Blueprint, jsonify, request
from flask_login import current_user
from werkzeug.exceptions import HTTPException

from databank import access, datasets, search
from databank.core import settings_of
from databank.metadata import METADATA_FIELDS

bp = Blueprint("api", __name__, url_prefix="/api")

DEFAULT_LIMIT = 100
MAX_LIMIT = datasets.MAX_PAGE
# ?field__op=value -> AG Grid filter type used by datasets.list_datasets
OPERATORS = {
    "": "equals", "eq": "equals", "ne": "notEqual", "contains": "contains", "startswith": "startsWith",
    "endswith": "endsWith", "gt": "greaterThan", "gte": "greaterThanOrEqual", "lt": "lessThan",
    "lte": "lessThanOrEqual",
}
NUMBER_OPERATORS = ("equals", "notEqual", "greaterThan", "greaterThanOrEqual", "lessThan", "lessThanOrEqual")
BOOL_FIELDS = tuple(f.name for f in METADATA_FIELDS if f.kind == "bool") + ("is_simulated",)
FILTER_FIELDS = tuple(dict.fromkeys([key for key, _ in datasets.DATASET_COLUMNS]
                                    + [f.name for f in METADATA_FIELDS] + ["is_simulated"]))
LIST_PARAMS = ("q", "limit", "offset", "sort")


class BadRequest(ValueError):
    """A query parameter the API cannot use; answered with 400 and the message."""


def error(status: int, message: str):
    response = jsonify(error=message, status=status)
    response.status_code = status
    return response


@bp.after_request
def _no_store(response):
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.errorhandler(BadRequest)
def _bad_request(exc):
    return error(400, str(exc))


@bp.errorhandler(access.AccessDenied)
def _not_found(_exc):
    return error(404, "No such dataset (or you may not read it).")


@bp.errorhandler(HTTPException)
def _http_error(exc):
    return error(exc.code or 500, exc.description or exc.name)


# --------------------------------------------------------------------------------------------
# query-string parsing

def _int_param(name: str, default: int, low: int, high: int | None = None) -> int:
    raw = request.args.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise BadRequest(f"'{name}' must be an integer, got '{raw}'.") from None
    if value < low or (high is not None and value > high):
        raise BadRequest(f"'{name}' must be between {low} and {high}." if high is not None
                         else f"'{name}' must be at least {low}.")
    return value


def _bool_value(name: str, raw: str) -> bool:
    text = raw.strip().lower()
    if text in ("1", "true", "yes", "y", "on"):
        return True
    if text in ("0", "false", "no", "n", "off"):
        return False
    raise BadRequest(f"'{name}' must be true or false, got '{raw}'.")


def query_filters(args, allowed_extra: tuple[str, ...]) -> dict:
    """Every query parameter that is not one of ``allowed_extra`` is a filter ``field[__op]=value``
    (the API's one filter language; also used by /api/datasets/<id>/similar). Raises BadRequest."""
    filters: dict[str, dict] = {}
    for key in args:
        if key in allowed_extra:
            continue
        values = args.getlist(key)
        if len(values) != 1:
            raise BadRequest(f"give '{key}' once.")
        field, _, op = key.partition("__")
        if field not in FILTER_FIELDS:
            raise BadRequest(f"unknown parameter '{key}'. Filters: {', '.join(FILTER_FIELDS)}; "
                             f"other parameters: {', '.join(allowed_extra)}.")
        if op not in OPERATORS:
            raise BadRequest(f"unknown operator '__{op}' in '{key}'. Operators: "
                             f"{', '.join('__' + o for o in OPERATORS if o)}.")
        if field in filters:
            raise BadRequest(f"give one condition per field ('{field}').")
        kind, value = OPERATORS[op], values[0]
        if field in BOOL_FIELDS:
            if kind not in ("equals", "notEqual"):
                raise BadRequest(f"'{field}' is true/false: use {field}=true or {field}=false.")
            filters[field] = {"filterType": "boolean", "type": kind, "filter": _bool_value(key, value)}
        elif field in datasets.NUMERIC_COLUMNS:
            if kind not in NUMBER_OPERATORS:
                raise BadRequest(f"'{field}' is a number: use =, __ne, __gt, __gte, __lt or __lte.")
            try:
                number = float(value)
            except ValueError:
                raise BadRequest(f"'{key}' must be a number, got '{value}'.") from None
            filters[field] = {"filterType": "number", "type": kind, "filter": number}
        else:
            if kind in NUMBER_OPERATORS[2:]:
                raise BadRequest(f"'{field}' is text: use =, __ne, __contains, __startswith or __endswith.")
            filters[field] = {"filterType": "text", "type": kind, "filter": value}
    return filters


def _sort() -> list[tuple[str, str]]:
    raw = request.args.get("sort") or ""
    pairs = []
    for part in (p.strip() for p in raw.split(",")):
        if not part:
            continue
        key = part.lstrip("-+")
        if key not in dict(datasets.DATASET_COLUMNS) and key not in FILTER_FIELDS:
            raise BadRequest(f"cannot sort by '{key}'.")
        pairs.append((key, "desc" if part.startswith("-") else "asc"))
    return pairs


# --------------------------------------------------------------------------------------------
# routes

@bp.get("/datasets")
def list_datasets():
    limit = _int_param("limit", DEFAULT_LIMIT, 0, MAX_LIMIT)
    offset = _int_param("offset", 0, 0, datasets.MAX_OFFSET)
    filters = query_filters(request.args, LIST_PARAMS)
    try:
        rows, total = datasets.list_datasets(current_user, search=request.args.get("q") or None,
                                             filters=filters, sort=_sort(), offset=offset, limit=limit)
    except ValueError as exc:
        raise BadRequest(str(exc)) from None
    return jsonify(total=total, offset=offset, limit=limit, datasets=rows)


@bp.get("/datasets/<dataset_id>")
def get_dataset(dataset_id):
    dataset = access.get_dataset(current_user, dataset_id, "read")
    return jsonify(datasets.dataset_record(dataset))


def _target() -> int:
    settings = settings_of()
    target = _int_param("target", settings.default_thinning, 0)
    if target not in settings.thinning_targets:
        raise BadRequest(f"'target' must be one of {', '.join(map(str, settings.thinning_targets))} (loc/µm²).")
    return target


@bp.get("/datasets/<dataset_id>/self-similarity")
def self_similarity(dataset_id):
    dataset = access.get_dataset(current_user, dataset_id, "read")
    target = _target()
    for key in request.args:
        if key != "target":
            raise BadRequest(f"unknown parameter '{key}'.")
    result = search.self_similarity(current_user, dataset.id, target=target)
    return jsonify(dict(result, lambda_mode=settings_of().lambda_mode))


@bp.route("/", defaults={"rest": ""})
@bp.route("/<path:rest>")
def unknown(rest):
    """Anything else under /api/ is a JSON 404 (not the Dash catch-all page)."""
    return error(404, f"no API endpoint /api/{rest}")


def register(server) -> None:
    server.register_blueprint(bp)
