"""Dataset queries and owner actions (list, record, edit, visibility, delete).

Every function takes the acting user and goes through ``access``; listing filters in SQL so that
paging stays fast with tens of thousands of datasets.
"""

from __future__ import annotations

from sqlalchemy import String, and_, cast, func, or_, select

from databank.access import get_dataset, readable_clause
from databank.core import settings_of
from databank.metadata import (LONG_TEXT_FIELDS, METADATA_FIELDS, TEXT_SEARCH_FIELDS, MetadataError, clean_metadata,
                               clean_visibility)
from databank.models import Dataset, DatasetShare, User, bump_bank_version, db
from databank.store import FileStore
from databank.users import resolve_share_users

DATASET_COLUMNS: list[tuple[str, str]] = [
    ("id", "ID"), ("title", "Title"), ("protein", "Protein"), ("cell_type", "Cell type"),
    ("modality", "Modality"), ("software", "Software"), ("fluorophore", "Fluorophore"),
    ("uniprot_id", "UniProt ID"), ("tags", "Tags"), ("owner", "Owner"), ("visibility", "Visibility"),
    ("n_files", "Files"), ("n_locs", "Localisations"), ("density", "Density (loc/µm²)"),
    ("n_tiles", "Tiles"), ("created", "Created"),
]
NUMERIC_COLUMNS = ("id", "n_files", "n_locs", "density", "n_tiles", "pixel_size_nm")
BOOLEAN_COLUMNS = ("drift_correction", "blink_correction", "is_simulated")
MAX_PAGE = 1000
MAX_OFFSET = 2 ** 31 - 1            # rows skipped at most (the database's integer range; no bank is larger)
MAX_FILTER_DEPTH = 3                # AG Grid nests one level (column -> conditions); allow a little more
MAX_FILTER_CONDITIONS = 50          # conditions in one filter model, over all columns


GRID_PAGE_SIZE = 100    # rows per request of the databank table (server-side paging)


def _column(key: str):
    """SQL expression for a grid column key (unknown keys -> None)."""
    if key == "owner":
        return User.username
    if key == "created":
        return Dataset.created_at
    if key in dict(DATASET_COLUMNS) or key in {f.name for f in METADATA_FIELDS} or key == "is_simulated":
        return getattr(Dataset, key)
    return None


def _contains(column, text: str):
    """Case-insensitive substring match: SQLite's LIKE already ignores ASCII case (and is 3x faster
    than lower() LIKE); other databases get ILIKE."""
    if db.engine.dialect.name == "sqlite":
        return column.contains(text, autoescape=True)
    return column.icontains(text, autoescape=True)


def _text_condition(column, kind: str, value):
    text = cast(column, String)
    value = str(value)
    lowered = func.lower(text)
    return {
        "contains": _contains(text, value),
        "notContains": ~_contains(text, value),
        "equals": lowered == value.lower(),
        "notEqual": lowered != value.lower(),
        "startsWith": lowered.startswith(value.lower(), autoescape=True),
        "endsWith": lowered.endswith(value.lower(), autoescape=True),
        "blank": or_(column.is_(None), cast(column, String) == ""),
        "notBlank": and_(column.is_not(None), cast(column, String) != ""),
    }.get(kind)


def _number_condition(column, kind: str, value, value_to=None):
    if kind in ("blank", "notBlank"):
        return column.is_(None) if kind == "blank" else column.is_not(None)
    number = float(value)
    return {
        "equals": column == number, "notEqual": column != number, "greaterThan": column > number,
        "greaterThanOrEqual": column >= number, "lessThan": column < number, "lessThanOrEqual": column <= number,
        "inRange": and_(column >= number, column <= float(value_to if value_to is not None else number)),
    }.get(kind)


def _filter_condition(key: str, spec):
    """One AG Grid filter-model entry (or a plain value meaning 'equals') as an SQL condition."""
    column = _column(key)
    if column is None:
        raise ValueError(f"unknown filter column '{key}'")
    if not isinstance(spec, dict):
        spec = {"type": "equals", "filter": spec}
    if "conditions" in spec:
        parts = [_filter_condition(key, c) for c in spec["conditions"]]
        return and_(*parts) if spec.get("operator", "AND").upper() == "AND" else or_(*parts)
    kind = spec.get("type", "contains")
    if spec.get("filterType") == "boolean" or key in BOOLEAN_COLUMNS:
        wanted = spec.get("filter")
        wanted = wanted if isinstance(wanted, bool) else str(wanted).lower() in ("1", "true", "yes")
        if kind not in ("equals", "notEqual"):
            raise ValueError(f"column '{key}' is true/false: use equals or notEqual")
        return column.is_(wanted) if kind == "equals" else column.is_not(wanted)
    numeric = spec.get("filterType") == "number" or key in NUMERIC_COLUMNS
    condition = (_number_condition(column, kind, spec.get("filter"), spec.get("filterTo")) if numeric
                 else _text_condition(column, kind, spec.get("filter", "")))
    if condition is None:
        raise ValueError(f"unsupported filter type '{kind}' for column '{key}'")
    return condition


def _check_filter_size(filters: dict) -> None:
    """ValueError when a filter model nests deeper than MAX_FILTER_DEPTH or holds more than
    MAX_FILTER_CONDITIONS conditions (checked without recursion, before any SQL is built)."""
    pending = [(spec, 1) for spec in filters.values()]
    count = 0
    while pending:
        spec, depth = pending.pop()
        if depth > MAX_FILTER_DEPTH:
            raise ValueError(f"filters may be nested at most {MAX_FILTER_DEPTH} levels deep")
        conditions = spec.get("conditions") if isinstance(spec, dict) else None
        if conditions is None:
            count += 1
        elif not isinstance(conditions, list):
            raise ValueError("a filter's 'conditions' must be a list")
        else:
            count += len(conditions)
            pending.extend((child, depth + 1) for child in conditions)
        if count > MAX_FILTER_CONDITIONS:
            raise ValueError(f"a filter may hold at most {MAX_FILTER_CONDITIONS} conditions")


def filter_conditions(filters: dict | None) -> list:
    """SQL conditions for a filter model {column key: AG Grid filter spec or plain value}, bounded in
    depth and size (ValueError names the problem). Queries using them must join ``User`` on the
    owner (the ``owner`` column is the owner's user name)."""
    filters = filters or {}
    if not isinstance(filters, dict):
        raise ValueError("the filter model must map column names to filters")
    _check_filter_size(filters)
    return [_filter_condition(key, spec) for key, spec in filters.items()]


def _search_condition(search: str):
    """Every word must match some metadata text (case-insensitive substring)."""
    columns = [getattr(Dataset, name) for name in TEXT_SEARCH_FIELDS] + [User.username]
    words = search.split()
    return and_(*[or_(*[_contains(c, w) for c in columns]) for w in words])


def _row(dataset: Dataset, owner_name: str) -> dict:
    """A dataset as a list row: metadata without the long free text (LONG_TEXT_FIELDS), counts."""
    row = {key: value for key, value in dataset.metadata_dict().items() if key not in LONG_TEXT_FIELDS}
    row.update(id=dataset.id, owner=owner_name, visibility=dataset.visibility, n_files=dataset.n_files,
               n_locs=dataset.n_locs, n_tiles=dataset.n_tiles,
               density=None if dataset.density is None else round(dataset.density, 1),
               created=dataset.created_at.date().isoformat() if dataset.created_at else None,
               is_simulated=dataset.is_simulated)
    return row


def _normalise_sort(sort) -> list[tuple[str, str]]:
    pairs = []
    for item in sort or []:
        key, direction = (item.get("colId"), item.get("sort")) if isinstance(item, dict) else item
        pairs.append((key, "desc" if str(direction).lower() == "desc" else "asc"))
    return pairs


def list_datasets(user, *, search: str | None = None, filters: dict | None = None, sort=None,
                  offset: int = 0, limit: int = 100) -> tuple[list[dict], int]:
    """A page of the datasets ``user`` may read, and the total count matching the query."""
    conditions = [readable_clause(user)]
    if search and search.strip():
        conditions.append(_search_condition(search.strip()))
    conditions += filter_conditions(filters)
    offset = int(offset)
    if not 0 <= offset <= MAX_OFFSET:
        raise ValueError(f"the offset must be between 0 and {MAX_OFFSET}")
    base = select(Dataset, User.username).join(User, Dataset.owner_id == User.id).where(*conditions)
    total = db.session.scalar(select(func.count()).select_from(base.subquery()))
    order = []
    for key, direction in _normalise_sort(sort):
        column = _column(key)
        if column is None:
            raise ValueError(f"unknown sort column '{key}'")
        order.append(column.desc() if direction == "desc" else column.asc())
    order.append(Dataset.id.desc())
    limit = max(0, min(int(limit), MAX_PAGE))
    rows = db.session.execute(base.order_by(*order).offset(offset).limit(limit)).all()
    return [_row(dataset, owner) for dataset, owner in rows], int(total)


def file_record(data_file) -> dict:
    stats = data_file.stats
    return dict(id=data_file.id, name=data_file.name, format=data_file.format, n_locs=data_file.n_locs,
                n_dropped=data_file.n_dropped, density=data_file.density, coverage=data_file.coverage,
                precision_median=data_file.precision_median, precision_nena_nm=data_file.precision_nena_nm,
                roi_source=data_file.roi_source,
                n_rois=len(data_file.rois), n_tiles=stats.get("n_tiles"), n_tiles_kept=stats.get("n_tiles_kept"),
                sha256=data_file.sha256, size_bytes=data_file.size_bytes, stats=stats, warnings=data_file.warnings)


def display_record(dataset: Dataset, *, is_owner: bool) -> dict:
    """``dataset_record`` for the dataset page: the share list only for the owner."""
    record = dataset_record(dataset)
    if not is_owner:
        record.pop("shared_with", None)
    return record


def dataset_record(dataset: Dataset) -> dict:
    """Everything about a dataset as JSON-friendly data (metadata, files with statistics)."""
    record = _row(dataset, dataset.owner.username)
    record.update({name: getattr(dataset, name) for name in LONG_TEXT_FIELDS})
    record.update(shared_with=dataset.shared_with, updated=dataset.updated_at.isoformat() if dataset.updated_at else None,
                  files=[file_record(f) for f in dataset.files],
                  n_rois=sum(len(f.rois) for f in dataset.files))
    return record


def title_taken(title: str | None) -> bool:
    """Is a dataset title already used (case-insensitive)? Titles are unique across the bank."""
    if not title or not title.strip():
        return False
    return db.session.scalar(select(Dataset.id).where(func.lower(Dataset.title) == title.strip().lower())) is not None


def update_metadata(user, dataset_id, changes: dict) -> Dataset:
    """Owner edits metadata (validated like the upload form). Raises AccessDenied / MetadataError."""
    dataset = get_dataset(user, dataset_id, "write")
    cleaned = clean_metadata(changes, partial=True)
    if "title" in cleaned and cleaned["title"].lower() != dataset.title.lower():
        if title_taken(cleaned["title"]):
            raise MetadataError({"title": f"a dataset titled '{cleaned['title']}' exists already"})
    for key, value in cleaned.items():
        setattr(dataset, key, value)
    bump_bank_version()
    db.session.commit()
    return dataset


def set_visibility(user, dataset_id, visibility: str, shared_with=()) -> Dataset:
    """Owner sets private / shared (with user names) / public. Raises AccessDenied / MetadataError."""
    dataset = get_dataset(user, dataset_id, "write")
    visibility, names = clean_visibility(visibility, shared_with)
    users = resolve_share_users(names, dataset.owner)
    dataset.visibility = visibility
    current = {share.user_id: share for share in dataset.shares}   # keep rows: avoids a unique clash on flush
    dataset.shares = [current.get(u.id) or DatasetShare(user_id=u.id) for u in users]
    bump_bank_version()
    db.session.commit()
    return dataset


def delete_dataset(user, dataset_id) -> None:
    """Owner deletes a dataset with all its files (database rows and store)."""
    dataset = get_dataset(user, dataset_id, "write")
    key = dataset.storage_key
    db.session.delete(dataset)
    bump_bank_version()
    db.session.commit()
    FileStore(settings_of()).remove_dataset(key)
