"""The real data files in data/ are present and unaltered: sha256 as written in data/README.md.

A missing, altered or unlisted file fails (never skips): the tests and the demo bank depend on them.
"""

from __future__ import annotations

import hashlib
import re

import pytest

from config import DATA_DIR

README = DATA_DIR / "README.md"
# A table row: | `relative/path` | ... | <64 hex digits> |
_ROW = re.compile(r"^\|\s*`(?P<file>[^`]+)`\s*\|.*\|\s*(?P<sha256>[0-9a-f]{64})\s*\|\s*$")


def listed_checksums() -> dict[str, str]:
    """{path relative to data/: sha256} from the table rows of data/README.md."""
    rows = [_ROW.match(line) for line in README.read_text(encoding="utf-8").splitlines()]
    return {m["file"]: m["sha256"] for m in rows if m}


LISTED = listed_checksums()


def sha256_of(path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def test_readme_lists_the_data_files():
    assert len(LISTED) >= 13, f"{README} lists {len(LISTED)} files with a sha256; its table was not parsed"


@pytest.mark.parametrize("relative", sorted(LISTED))
def test_listed_file_exists_with_its_sha256(relative):
    path = DATA_DIR / relative
    assert path.is_file(), f"data/{relative} is listed in data/README.md but missing"
    assert sha256_of(path) == LISTED[relative], (
        f"data/{relative} differs from the sha256 in data/README.md: restore the original file")


def test_every_data_file_is_listed():
    present = {p.relative_to(DATA_DIR).as_posix() for p in DATA_DIR.rglob("*")
               if p.is_file() and p != README}
    unlisted = sorted(present - set(LISTED))
    assert not unlisted, f"files in data/ without a row in data/README.md: {unlisted}"
