"""Accounts: creation, password checks with slow-down after repeated failures, API tokens."""

from __future__ import annotations

import hashlib
import math
import re
import secrets
from datetime import datetime, timedelta, timezone

from sqlalchemy import case, delete, func, or_, select, update

from werkzeug.security import check_password_hash, generate_password_hash

from databank.metadata import MetadataError
from databank.models import ApiToken, LoginThrottle, User, db, utcnow

USERNAME_RE = re.compile(r"^[A-Za-z0-9_.-]{3,64}$")
MIN_PASSWORD_LENGTH = 8
FREE_FAILURES = 3               # failed logins per account name before the slow-down starts
FREE_FAILURES_PER_CLIENT = 20   # failed logins per client address (any names) before it starts
MAX_LOCKOUT_SECONDS = 300       # the longest wait: the owner is never locked out for longer
THROTTLE_WINDOW = timedelta(minutes=15)   # a key idle this long starts counting afresh
THROTTLE_MEMORY = timedelta(days=1)       # rows idle this long are deleted
_DUMMY_HASH = generate_password_hash("not a password")


class AccountError(ValueError):
    """Invalid account data; ``field`` names the offending form field."""

    def __init__(self, field: str, message: str):
        self.field = field
        super().__init__(message)


class LoginThrottled(Exception):
    """Too many failed logins for this name or client: wait ``seconds`` before trying again."""

    def __init__(self, seconds: int):
        self.seconds = seconds
        super().__init__(f"Too many failed attempts. Try again in {seconds} s.")


def get_user(user_id) -> User | None:
    """The user with this database id (None if there is none or the id is malformed)."""
    try:
        return db.session.get(User, int(user_id))
    except (TypeError, ValueError):
        return None


def find_user(username: str) -> User | None:
    return db.session.scalar(select(User).where(func.lower(User.username) == (username or "").strip().lower()))


def create_user(username: str, email: str, password: str) -> User:
    """Create and commit a user; raises AccountError naming the field at fault."""
    username = (username or "").strip()
    if not USERNAME_RE.match(username):
        raise AccountError("username", "Use 3-64 letters, digits, '.', '_' or '-'.")
    if find_user(username):
        raise AccountError("username", f"The user name '{username}' is taken.")
    if not re.match(r"^[^@\s]+@[^@\s]+\.[^@\s]+$", (email or "").strip()):
        raise AccountError("email", "Enter a valid email address.")
    if len(password or "") < MIN_PASSWORD_LENGTH:
        raise AccountError("password", f"Use at least {MIN_PASSWORD_LENGTH} characters.")
    user = User(username=username, email=email.strip())
    user.set_password(password)
    db.session.add(user)
    db.session.commit()
    return user


def lockout_seconds(failures: int, free: int = FREE_FAILURES) -> int:
    """Wait imposed after ``failures`` failed attempts in a row: none for the first ``free - 1``,
    then 2, 4, 8 ... seconds, never more than MAX_LOCKOUT_SECONDS."""
    if failures < free:
        return 0
    return min(MAX_LOCKOUT_SECONDS, 2 ** min(failures - free + 1, 16))


def _insert_ignoring_duplicates(values: dict):
    """INSERT ... ON CONFLICT DO NOTHING for the login-throttle table (SQLite and PostgreSQL)."""
    dialect = db.engine.dialect.name
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    elif dialect == "sqlite":
        from sqlalchemy.dialects.sqlite import insert
    else:
        raise RuntimeError(f"the login throttle supports SQLite and PostgreSQL, not {dialect}")
    return insert(LoginThrottle).values(**values).on_conflict_do_nothing(index_elements=["key"])


def _count_attempt(key: str, free: int, now: datetime) -> int:
    """Count one login attempt on ``key`` inside the caller's transaction; 0 if it may go ahead,
    else the seconds to wait. The counting UPDATE is a single statement guarded by the block, so
    concurrent attempts serialise on the row (SQLite: the write lock; PostgreSQL: the row lock) and
    no more than ``free`` of them ever reach the password check."""
    table = LoginThrottle
    inserted = db.session.execute(_insert_ignoring_duplicates(dict(key=key, failures=0, last_attempt_at=now)))
    if inserted.rowcount:                                   # a new key: forget long-idle ones
        db.session.execute(delete(table).where(table.last_attempt_at < now - THROTTLE_MEMORY))
    fresh_start = or_(table.last_attempt_at.is_(None), table.last_attempt_at < now - THROTTLE_WINDOW)
    counted = db.session.execute(
        update(table).where(table.key == key, or_(table.blocked_until.is_(None), table.blocked_until <= now))
        .values(failures=case((fresh_start, 1), else_=table.failures + 1), last_attempt_at=now))
    if counted.rowcount == 0:
        blocked_until = db.session.scalar(select(table.blocked_until).where(table.key == key))
        return max(1, math.ceil((_aware(blocked_until) - now).total_seconds())) if blocked_until else 1
    failures = db.session.scalar(select(table.failures).where(table.key == key))
    wait = lockout_seconds(failures, free)
    if wait:                 # block the next attempts now, before this one's password is checked
        db.session.execute(update(table).where(table.key == key).values(blocked_until=now + timedelta(seconds=wait)))
    return 0


def authenticate(username: str, password: str, *, client: str | None = None,
                 now: datetime | None = None) -> User | None:
    """The user if the password is right, else None. Raises LoginThrottled while the account name
    (known or unknown alike: a 429 does not reveal which accounts exist) or the client address
    (``client``, e.g. the request's remote address) is blocked after repeated failures."""
    now = now or utcnow()
    name_key = "user:" + (username or "").strip().lower()[:128]
    keys = [(name_key, FREE_FAILURES)]
    if client:
        keys.append(("ip:" + client[:128], FREE_FAILURES_PER_CLIENT))
    waits = [_count_attempt(key, free, now) for key, free in keys]
    if any(waits):
        db.session.rollback()                 # a refused attempt counts nowhere
        raise LoginThrottled(max(waits))
    db.session.commit()
    user = find_user(username)
    if user is None:
        check_password_hash(_DUMMY_HASH, password or "")  # same work whether or not the name exists
        return None
    if not user.check_password(password or ""):
        return None
    db.session.execute(update(LoginThrottle).where(LoginThrottle.key == name_key)
                       .values(failures=0, blocked_until=None))
    db.session.commit()
    return user


def end_sessions(user: User) -> None:
    """Invalidate every session of ``user`` (logout): sessions carry the generation they were
    signed in at, and the user loader refuses any other."""
    db.session.execute(update(User).where(User.id == user.id)
                       .values(session_generation=User.session_generation + 1))
    db.session.commit()
    db.session.expire(user)


def _token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_api_token(user: User, name: str = "token") -> str:
    """Create a personal API token and return its text (shown once; only a hash is stored)."""
    token = "no_" + secrets.token_urlsafe(32)
    db.session.add(ApiToken(user_id=user.id, name=(name or "token")[:100], token_sha256=_token_digest(token),
                            prefix=token[:10]))
    db.session.commit()
    return token


def list_api_tokens(user: User) -> list[ApiToken]:
    return list(db.session.scalars(select(ApiToken).where(ApiToken.user_id == user.id, ApiToken.revoked.is_(False))
                                   .order_by(ApiToken.id)))


def revoke_api_token(user: User, token_id: int) -> bool:
    """Revoke one of ``user``'s own tokens; False if no such token of theirs."""
    token = db.session.get(ApiToken, int(token_id))
    if token is None or token.user_id != user.id:
        return False
    token.revoked = True
    db.session.commit()
    return True


def user_for_token(token: str) -> User | None:
    """The user owning a valid, unrevoked token."""
    if not token:
        return None
    row = db.session.scalar(select(ApiToken).where(ApiToken.token_sha256 == _token_digest(token.strip())))
    if row is None or row.revoked:
        return None
    if row.last_used_at is None or utcnow() - _aware(row.last_used_at) > timedelta(minutes=5):
        row.last_used_at = utcnow()
        db.session.commit()
    return row.user


def _aware(moment: datetime) -> datetime:
    """A database time as an aware UTC datetime (SQLite gives naive ones back)."""
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def resolve_share_users(names, owner: User) -> list[User]:
    """Users named for sharing (the owner is skipped); MetadataError for an unknown name."""
    users = []
    for name in names:
        user = find_user(name)
        if user is None:
            raise MetadataError({"shared_with": f"no user named '{name}'"})
        if user.id != owner.id:
            users.append(user)
    return users
