"""Messages to the administrators: the contact form stores them, ``nanoorg messages`` lists them."""

from __future__ import annotations

import re

from sqlalchemy import select

from databank.models import ContactMessage, db

MAX_MESSAGE_CHARS = 5000
MIN_MESSAGE_CHARS = 10
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


class ContactError(ValueError):
    """A message that cannot be stored; ``field`` is 'reply_to' or 'body'."""

    def __init__(self, field: str, message: str):
        self.field = field
        super().__init__(message)


def store_message(user, reply_to: str | None, body: str | None) -> ContactMessage:
    """Keep a message for the administrators. ``user`` may be anonymous (None or not authenticated)."""
    reply_to = (reply_to or "").strip()
    body = (body or "").strip()
    if not _EMAIL.match(reply_to) or len(reply_to) > 255:
        raise ContactError("reply_to", "Enter the email address the answer should go to.")
    if len(body) < MIN_MESSAGE_CHARS:
        raise ContactError("body", f"Write your message (at least {MIN_MESSAGE_CHARS} characters).")
    if len(body) > MAX_MESSAGE_CHARS:
        raise ContactError("body", f"The message has {len(body):,} characters; at most {MAX_MESSAGE_CHARS:,} fit.")
    signed_in = getattr(user, "is_authenticated", False)
    message = ContactMessage(user_id=user.id if signed_in else None, reply_to=reply_to, body=body)
    db.session.add(message)
    db.session.commit()
    return message


def list_messages(limit: int | None = None) -> list[ContactMessage]:
    """Stored messages, newest first."""
    query = select(ContactMessage).order_by(ContactMessage.id.desc())
    return list(db.session.scalars(query if limit is None else query.limit(limit)))
