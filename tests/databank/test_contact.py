"""The contact form's rate limit (databank.contact): per sender address, per account, and overall."""

from __future__ import annotations

from datetime import timedelta

import pytest

from databank import contact
from databank.contact import ContactError, store_message
from databank.models import ContactMessage, db, utcnow

BODY = "The viewer shows nothing for my file."


def test_a_sender_may_send_five_messages_an_hour_then_is_told_how_long_to_wait(app, users):
    start = utcnow()
    for minute in range(contact.SENDER_MESSAGES_PER_HOUR):
        store_message(None, "a@example.org", BODY, client="10.0.0.1", now=start + timedelta(minutes=minute))
    with pytest.raises(ContactError, match=r"5 messages in the last hour .* wait 56 minute") as refused:
        store_message(None, "a@example.org", BODY, client="10.0.0.1", now=start + timedelta(minutes=4, seconds=30))
    assert refused.value.field == "body"
    assert db.session.query(ContactMessage).count() == 5                       # nothing stored when refused
    store_message(None, "b@example.org", BODY, client="10.0.0.2", now=start + timedelta(minutes=5))   # another sender
    store_message(None, "a@example.org", BODY, client="10.0.0.1", now=start + timedelta(minutes=61))  # an hour later


def test_a_signed_in_sender_is_limited_across_addresses(app, users):
    owner = users["alice"]
    start = utcnow()
    for k in range(contact.SENDER_MESSAGES_PER_HOUR):
        store_message(owner, "o@example.org", BODY, client=f"10.0.1.{k}", now=start + timedelta(seconds=k))
    with pytest.raises(ContactError, match="in the last hour"):
        store_message(owner, "o@example.org", BODY, client="10.0.1.99", now=start + timedelta(minutes=1))


def test_everybody_together_is_capped_per_day(app, users, monkeypatch):
    monkeypatch.setattr(contact, "ALL_MESSAGES_PER_DAY", 3)
    start = utcnow()
    for k in range(3):
        store_message(None, "a@example.org", BODY, client=f"10.0.2.{k}", now=start + timedelta(minutes=k))
    with pytest.raises(ContactError, match="3 messages today"):
        store_message(None, "a@example.org", BODY, client="10.0.2.50", now=start + timedelta(hours=2))
    store_message(None, "a@example.org", BODY, client="10.0.2.50", now=start + timedelta(days=1, minutes=1))
