"""Access control: the one authorisation function every layout, callback, route and job calls.

Visibility: private (owner only), shared (owner and named users), public (anyone may browse and
analyse; only signed-in users may download). Ids from the browser are never trusted: callers pass
the id they were given and get back the object only if the user may use it for that action.
"""

from __future__ import annotations

from sqlalchemy import or_, select

from databank.models import DataFile, Dataset, DatasetShare, db

ACTIONS = ("read", "download", "write")
MAX_ID = 2 ** 31 - 1     # largest Integer primary key on PostgreSQL (SQLite allows 2^63 - 1)


class AccessDenied(LookupError):
    """Raised for missing and forbidden objects alike, so ids of private datasets do not leak."""


def user_id_of(user) -> int | None:
    """The database id of a signed-in user, None for anonymous visitors (None or AnonymousUser)."""
    if user is None or not getattr(user, "is_authenticated", False):
        return None
    return int(user.get_id())


def authorise(user, dataset: Dataset | None, action: str = "read") -> bool:
    """May ``user`` perform ``action`` ('read', 'download' or 'write') on ``dataset``?"""
    if action not in ACTIONS:
        raise ValueError(f"unknown action {action!r}")
    if dataset is None:
        return False
    uid = user_id_of(user)
    if uid is not None and dataset.owner_id == uid:
        return True
    if action == "write":
        return False
    if dataset.visibility == "public":
        return action == "read" or uid is not None
    if dataset.visibility == "shared" and uid is not None:
        return any(share.user_id == uid for share in dataset.shares)
    return False


def readable_clause(user):
    """SQL condition selecting the datasets ``user`` may read (same rule as ``authorise``)."""
    uid = user_id_of(user)
    if uid is None:
        return Dataset.visibility == "public"
    shared_ids = select(DatasetShare.dataset_id).where(DatasetShare.user_id == uid)
    return or_(Dataset.visibility == "public", Dataset.owner_id == uid,
               (Dataset.visibility == "shared") & Dataset.id.in_(shared_ids))


def parse_id(value) -> int | None:
    """A database id from the browser or a URL (text or number), or None unless 1 <= id <= MAX_ID.

    Ids past the column's range would make the database driver fail (a 500), so they are refused
    here like any other id that names nothing."""
    if isinstance(value, bool):
        return None
    try:
        number = int(value)
    except (TypeError, ValueError, OverflowError):
        return None
    if isinstance(value, float) and value != number:
        return None
    return number if 1 <= number <= MAX_ID else None


def get_dataset(user, dataset_id, action: str = "read") -> Dataset:
    """The dataset if ``user`` may perform ``action`` on it, else AccessDenied (also when missing)."""
    number = parse_id(dataset_id)
    dataset = None if number is None else db.session.get(Dataset, number)
    if not authorise(user, dataset, action):
        raise AccessDenied(f"no dataset {dataset_id!r}")
    return dataset


def get_file(user, file_id, action: str = "read") -> DataFile:
    """The data file if ``user`` may perform ``action`` on its dataset, else AccessDenied."""
    number = parse_id(file_id)
    data_file = None if number is None else db.session.get(DataFile, number)
    if data_file is None or not authorise(user, data_file.dataset, action):
        raise AccessDenied(f"no file {file_id!r}")
    return data_file
