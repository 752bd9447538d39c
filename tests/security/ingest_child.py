"""Run ``nanoorg`` ingests in forked children that stop dead at a chosen point, for the SIGKILL fault tests.

    python -m tests.security.ingest_child        (reads commands on stdin, one per line)

A command is a JSON list ``[PHASE, N, [nanoorg arguments...]]``. This process (imports done once)
forks a child that prints ``CHILD <pid>`` and runs the command line; at the N-th time the ingest
reaches PHASE the child prints ``PAUSED PHASE N`` and sleeps until the test kills it (``PHASE =
"none"`` runs to the end). When the child is gone this process prints ``EXIT <pid> <status>``
(the wait status). The phases wrap the real functions the ingest calls, in the order an ingest
meets them; nothing in the product knows about them.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time

from sqlalchemy.orm import Session

import cli
from compute import formats, rois, similarity, tiles
from databank import ingest


def _pause(phase: str, count: int) -> None:
    print(f"PAUSED {phase} {count}", flush=True)
    time.sleep(600)


def _wrap(owner, name: str, phase: str, target: str, target_count: int, *, after: bool = False) -> None:
    original = getattr(owner, name)
    calls = {"n": 0}

    def wrapper(*args, **kwargs):
        calls["n"] += 1
        hit = phase == target and calls["n"] == target_count
        if hit and not after:
            _pause(phase, calls["n"])
        result = original(*args, **kwargs)
        if hit and after:
            _pause(phase, calls["n"])
        return result

    setattr(owner, name, wrapper)


PHASES = {   # phase -> (object, attribute, pause after the call instead of before)
    "locked": (ingest, "_ingest_locked", False),              # lock held, nothing written
    "read": (formats, "read_localisations", False),           # a detection file is being read
    "roi": (rois, "read_roi_vertices", False),
    "grid": (tiles, "grid_tiles", False),
    "fingerprint": (similarity, "file_fingerprints", False),
    "copy": (shutil, "copyfile", False),                      # staging folder made, files being copied
    "normalise": (ingest, "write_normalised", False),         # original copied, normalised copy next
    "rows": (ingest, "bump_bank_version", True),              # rows added to the session, not flushed
    "moved": (ingest.os, "replace", True),                    # staging renamed into the store, not committed
    "committed": (Session, "commit", True),                   # committed, lock file not removed yet
}


def run_child(target: str, target_count: int, cli_args: list[str]) -> int:
    for phase, (owner, name, after) in PHASES.items():
        _wrap(owner, name, phase, target, target_count, after=after)
    return cli.main(cli_args)


def serve() -> None:
    for line in sys.stdin:
        target, target_count, cli_args = json.loads(line)
        sys.stdout.flush()
        pid = os.fork()
        if pid == 0:
            print(f"CHILD {os.getpid()}", flush=True)
            code = 1
            try:
                code = run_child(target, int(target_count), cli_args)
            finally:
                sys.stdout.flush()
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        print(f"EXIT {pid} {status}", flush=True)


if __name__ == "__main__":
    serve()
