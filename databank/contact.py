"""Messages to the administrators: the contact form stores them, ``nanoorg messages`` lists them."""

from __future__ import annotations

import math
import re
from datetime import timedelta

from sqlalchemy import func, or_, select

from databank.models import ContactMessage, db, utcnow

MAX_MESSAGE_CHARS = 5000
MIN_MESSAGE_CHARS = 10
# Rate limit: a form any visitor can post must not let one sender (or a crowd) fill the table.
SENDER_MESSAGES_PER_HOUR = 5          # per network address, and per account when signed in
ALL_MESSAGES_PER_DAY = 500            # everybody together: the administrators' inbox stays readable
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


class ContactError(ValueError):
    """A message that cannot be stored; ``field`` is 'reply_to' or 'body'."""

    def __init__(self, field: str, message: str):
        self.field = field
        super().__init__(message)


def _sent_since(since, *conditions) -> list:
    """Send times since ``since`` of the messages matching any of ``conditions`` (all, if none)."""
    query = select(ContactMessage.created_at).where(ContactMessage.created_at >= since)
    if conditions:
        query = query.where(or_(*conditions))
    return list(db.session.scalars(query.order_by(ContactMessage.created_at)))


def _minutes_until(oldest, window, now) -> int:
    oldest = oldest if oldest.tzinfo else oldest.replace(tzinfo=now.tzinfo)
    return max(1, math.ceil((oldest + window - now).total_seconds() / 60))


def check_rate(user_id: int | None, client: str | None, now=None) -> None:
    """Raise ContactError('body') when this sender (network address ``client`` or account
    ``user_id``) has sent SENDER_MESSAGES_PER_HOUR in the last hour, or everybody together
    ALL_MESSAGES_PER_DAY in the last day; the message says how long to wait."""
    now = now or utcnow()
    hour, day = timedelta(hours=1), timedelta(days=1)
    sender = [ContactMessage.client == client] if client else []
    if user_id is not None:
        sender.append(ContactMessage.user_id == user_id)
    if sender:
        recent = _sent_since(now - hour, *sender)
        if len(recent) >= SENDER_MESSAGES_PER_HOUR:
            wait = _minutes_until(recent[-SENDER_MESSAGES_PER_HOUR], hour, now)
            raise ContactError("body", f"You have sent {len(recent)} messages in the last hour (at most "
                                       f"{SENDER_MESSAGES_PER_HOUR}); please wait {wait} minute(s) before sending "
                                       f"another.")
    if db.session.scalar(select(func.count()).select_from(ContactMessage)
                         .where(ContactMessage.created_at >= now - day)) >= ALL_MESSAGES_PER_DAY:
        raise ContactError("body", f"The administrators have received {ALL_MESSAGES_PER_DAY} messages today, "
                                   f"the most this site keeps; please try again tomorrow.")


def store_message(user, reply_to: str | None, body: str | None, client: str | None = None,
                  now=None) -> ContactMessage:
    """Keep a message for the administrators. ``user`` may be anonymous (None or not authenticated);
    ``client`` is the sender's network address (rate limit: ``check_rate``)."""
    reply_to = (reply_to or "").strip()
    body = (body or "").strip()
    if not _EMAIL.match(reply_to) or len(reply_to) > 255:
        raise ContactError("reply_to", "Enter the email address the answer should go to.")
    if len(body) < MIN_MESSAGE_CHARS:
        raise ContactError("body", f"Write your message (at least {MIN_MESSAGE_CHARS} characters).")
    if len(body) > MAX_MESSAGE_CHARS:
        raise ContactError("body", f"The message has {len(body):,} characters; at most {MAX_MESSAGE_CHARS:,} fit.")
    user_id = user.id if getattr(user, "is_authenticated", False) else None
    client = (client or "")[:128] or None
    check_rate(user_id, client, now)
    message = ContactMessage(user_id=user_id, reply_to=reply_to, body=body, client=client,
                             **({"created_at": now} if now else {}))
    db.session.add(message)
    db.session.commit()
    return message


def list_messages(limit: int | None = None) -> list[ContactMessage]:
    """Stored messages, newest first."""
    query = select(ContactMessage).order_by(ContactMessage.id.desc())
    return list(db.session.scalars(query if limit is None else query.limit(limit)))
