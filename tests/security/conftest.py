"""Fixtures of the security tests: the web tests' fixtures (tests/web/conftest.py: ``app``,
``client``, ``make_user``, ``signed_in``, ``make_dataset``, ``ingest`` ...) plus ``bank``, a small
real bank (users alice, bob, carol, dave; datasets of every visibility, tests/web/helpers_datasets.py)
built once per module."""

from __future__ import annotations

import pytest

from tests.web.conftest import *  # noqa: F401,F403  (fixtures)
from tests.web.conftest import _empty_tables, _fast_password_hashing  # noqa: F401  (autouse: not in *)
from tests.web.helpers_datasets import build_bank


@pytest.fixture(scope="module")
def bank(tmp_path_factory):
    return build_bank(tmp_path_factory.mktemp("security-bank"))
