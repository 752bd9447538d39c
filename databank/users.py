"""Accounts: creation, password checks with slow-down after repeated failures, API tokens."""

from __future__ import annotations

import hashlib
import re
import secrets
from datetime import datetime, timedelta, timezone

from sqlalchemy import func, select

from werkzeug.security import check_password_hash, generate_password_hash

from databank.metadata import MetadataError
from databank.models import ApiToken, User, db, utcnow

USERNAME_RE = re.compile(r"^[A-Za-z0-9_.-]{3,64}$")
MIN_PASSWORD_LENGTH = 8
FREE_FAILURES = 3               # failed logins allowed before the slow-down starts
MAX_LOCKOUT_SECONDS = 300
_DUMMY_HASH = generate_password_hash("not a password")


class AccountError(ValueError):
    """Invalid account data; ``field`` names the offending form field."""

    def __init__(self, field: str, message: str):
        self.field = field
        super().__init__(message)


class LoginThrottled(Exception):
    """Too many failed logins for this account: wait ``seconds`` before trying again."""

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


def lockout_seconds(failures: int) -> int:
    """Wait imposed after ``failures`` consecutive failures: none for the first few, then doubling."""
    if failures < FREE_FAILURES:
        return 0
    return min(MAX_LOCKOUT_SECONDS, 2 ** (failures - FREE_FAILURES + 1))


def authenticate(username: str, password: str, *, now: datetime | None = None) -> User | None:
    """The user if the password is right, else None. Raises LoginThrottled while locked out."""
    now = now or utcnow()
    user = find_user(username)
    if user is None:
        check_password_hash(_DUMMY_HASH, password or "")  # same work whether or not the name exists
        return None
    if user.last_failed_at is not None:
        last = user.last_failed_at if user.last_failed_at.tzinfo else user.last_failed_at.replace(tzinfo=timezone.utc)
        remaining = lockout_seconds(user.failed_logins) - (now - last).total_seconds()
        if remaining > 0:
            raise LoginThrottled(int(remaining) + 1)
    if user.check_password(password or ""):
        user.failed_logins, user.last_failed_at = 0, None
        db.session.commit()
        return user
    user.failed_logins += 1
    user.last_failed_at = now
    db.session.commit()
    return None


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


def usernames(*, exclude=None) -> list[str]:
    """All user names, sorted case-insensitively (``exclude``: a user to leave out)."""
    query = select(User.username).order_by(func.lower(User.username))
    if exclude is not None and getattr(exclude, "is_authenticated", False):
        query = query.where(User.id != int(exclude.get_id()))
    return list(db.session.scalars(query))
