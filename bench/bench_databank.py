"""Benchmark: the databank page's data for a bank of 10,000 datasets.

    python bench/bench_databank.py [--datasets 10000] [--runs 7] [--page 100]

Builds a temporary SQLite bank by bulk-inserting dataset rows (no files: listing needs none) with a
mix of visibilities (public / private / shared with a few users), then times pages of ``--page``
rows, as medians of ``--runs`` runs, for a signed-in user and an anonymous visitor:

- ``datasets.list_datasets`` (SQL: readable clause, search, filters, sort, count, offset/limit);
- the grid callback ``callbacks.databank.grid_rows`` (same plus request parsing and row shaping,
  inside a Flask request with the user signed in), i.e. what one AG Grid block request costs;
- a naive reference in the same run: load every dataset row into Python, keep the readable ones,
  search / filter / sort in Python, slice the page.

Target: <= 300 ms per page for the grid callback.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from flask_login import LoginManager, login_user  # noqa: E402
from sqlalchemy import insert, select  # noqa: E402

from config import load_settings  # noqa: E402
from databank import datasets  # noqa: E402
from databank.access import user_id_of  # noqa: E402
from databank.core import make_data_app  # noqa: E402
from databank.metadata import TEXT_SEARCH_FIELDS  # noqa: E402
from databank.models import Dataset, DatasetShare, User, db  # noqa: E402

TARGET_MS = 300.0
PROTEINS = ("EGFR", "CD3ζ", "LAT", "SLP76", "TfR1", "CD45", "FGFR1", "CD81", "TIGIT", "PD-1", "ZAP70", "CD8")
CELL_TYPES = ("HeLa", "COS-7", "Jurkat", "MCF7", "primary CD8 T cell", "A549")
FLUOROPHORES = ("Alexa Fluor 647", "mEos3.2", "PA-JF549", "Cy3B", "DNA-PAINT Atto 655")
TAGS = ("membrane", "resting", "activated", "5 min", "fixed", "drug treated", "control")


def build_bank(n_datasets: int, n_users: int = 200, seed: int = 0):
    folder = Path(tempfile.mkdtemp(prefix="nanoorg-bench-databank-"))
    settings = load_settings(instance_dir=folder, seed_demo=False, secret_key="bench")
    app = make_data_app(settings)
    LoginManager(app).user_loader(lambda uid: db.session.get(User, int(uid)))
    rng = random.Random(seed)
    with app.app_context():
        db.session.execute(insert(User), [dict(username=f"user{k:03d}", email=f"user{k}@example.org",
                                               password_hash="x") for k in range(n_users)])
        user_ids = list(db.session.scalars(select(User.id)))
        now = datetime.now(timezone.utc)
        rows = []
        for k in range(n_datasets):
            modality = rng.choice(("PALM", "dSTORM", "PAINT", "other"))
            rows.append(dict(
                owner_id=rng.choice(user_ids), storage_key=uuid.uuid4().hex,
                visibility=rng.choices(("public", "private", "shared"), (60, 25, 15))[0],
                is_simulated=rng.random() < 0.1, created_at=now - timedelta(minutes=k), updated_at=now,
                n_files=rng.randint(1, 30), n_locs=rng.randint(10_000, 50_000_000), n_tiles=rng.randint(1, 2000),
                density=rng.uniform(5, 2000),
                title=f"{rng.choice(PROTEINS)} {rng.choice(FLUOROPHORES)} {rng.choice(CELL_TYPES)} #{k:05d}",
                modality=modality, software=rng.choice(("ThunderSTORM", "SMAP", "Picasso", "DECODE", "other")),
                fluorophore=rng.choice(FLUOROPHORES), protein=rng.choice(PROTEINS), cell_type=rng.choice(CELL_TYPES),
                tags=", ".join(rng.sample(TAGS, rng.randint(0, 3))) or None,
                experimental_details="Fixed with 4% PFA; imaged in TIRF. " * rng.randint(0, 4) or None,
                primary_antibody="anti-" + rng.choice(PROTEINS) if modality == "dSTORM" else None,
                uniprot_id=rng.choice(("P00533", "P43403", "O43561", None)),
                drift_correction=rng.random() < 0.5, blink_correction=rng.random() < 0.3,
                pixel_size_nm=rng.choice((100.0, 106.0, 117.0, 130.0, 160.0)),
            ))
        db.session.execute(insert(Dataset), rows)
        shared = list(db.session.scalars(select(Dataset.id).where(Dataset.visibility == "shared")))
        db.session.execute(insert(DatasetShare), [dict(dataset_id=d, user_id=u) for d in shared
                                                  for u in rng.sample(user_ids, 3)])
        db.session.commit()
    return app, folder


# --------------------------------------------------------------------------------------------
# the naive reference: everything in Python


def naive_list(user, *, search=None, filters=None, sort=None, offset=0, limit=100):
    uid = user_id_of(user)
    shared_with_me = set() if uid is None else set(
        db.session.scalars(select(DatasetShare.dataset_id).where(DatasetShare.user_id == uid)))
    rows = []
    for dataset, owner in db.session.execute(select(Dataset, User.username).join(User, Dataset.owner_id == User.id)):
        readable = (dataset.visibility == "public" or (uid is not None and dataset.owner_id == uid)
                    or (dataset.visibility == "shared" and dataset.id in shared_with_me))
        if readable:
            rows.append(datasets._row(dataset, owner))    # noqa: SLF001 (same row shape as the page)
    if search:
        words = search.lower().split()
        rows = [r for r in rows
                if all(any(w in str(r.get(f) or "").lower() for f in (*TEXT_SEARCH_FIELDS, "owner")) for w in words)]
    for key, spec in (filters or {}).items():
        kind, value = spec.get("type"), spec.get("filter")
        if kind == "contains":
            rows = [r for r in rows if str(value).lower() in str(r.get(key) or "").lower()]
        elif kind == "greaterThan":
            rows = [r for r in rows if r.get(key) is not None and r[key] > value]
        elif kind == "equals":
            rows = [r for r in rows if str(r.get(key) or "").lower() == str(value).lower()]
    for key, direction in reversed(sort or []):
        rows.sort(key=lambda r: (r.get(key) is None, r.get(key) if r.get(key) is not None else 0),
                  reverse=direction == "desc")
    return rows[offset:offset + limit], len(rows)


# --------------------------------------------------------------------------------------------

SCENARIOS = [
    ("first page (default order)", dict()),
    ("sort title asc", dict(sort=[("title", "asc")])),
    ("sort n_locs desc, offset 5000", dict(sort=[("n_locs", "desc")], offset=5000)),
    ("filter protein contains 'egf'", dict(filters={"protein": {"filterType": "text", "type": "contains",
                                                                "filter": "egf"}})),
    ("filter n_locs > 1e7, sort density", dict(filters={"n_locs": {"filterType": "number", "type": "greaterThan",
                                                                   "filter": 10_000_000}},
                                               sort=[("density", "desc")])),
    ("search 'jurkat alexa'", dict(search="jurkat alexa")),
    ("search 'membrane' + filter + sort", dict(search="membrane",
                                              filters={"cell_type": {"filterType": "text", "type": "contains",
                                                                     "filter": "hela"}},
                                              sort=[("created", "desc")])),
]


def median_ms(fn, runs: int) -> float:
    fn()                                               # warm-up (statement cache, page cache)
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--page", type=int, default=100)
    args = parser.parse_args(argv)
    runs = max(5, args.runs)

    start = time.perf_counter()
    app, folder = build_bank(args.datasets)
    print(f"bank: {args.datasets:,} datasets inserted in {time.perf_counter() - start:.1f} s ({folder})")

    from callbacks import databank as grid_callbacks

    results = []
    with app.app_context():
        user = db.session.get(User, 1)
        for who, person in (("user", user), ("anonymous", None)):
            for name, scenario in SCENARIOS:
                kwargs = dict(scenario)
                kwargs.setdefault("offset", 0)
                kwargs["limit"] = args.page
                rows, total = datasets.list_datasets(person, **kwargs)
                naive_rows, naive_total = naive_list(person, **kwargs)
                assert total == naive_total, (name, total, naive_total)
                t_list = median_ms(lambda: datasets.list_datasets(person, **kwargs), runs)
                request = {"startRow": kwargs["offset"], "endRow": kwargs["offset"] + args.page,
                           "sortModel": [{"colId": c, "sort": d} for c, d in kwargs.get("sort", [])],
                           "filterModel": kwargs.get("filters", {})}

                def grid_call():
                    with app.test_request_context("/_dash-update-component", method="POST"):
                        if person is not None:
                            login_user(person)
                        response, _count = grid_callbacks.grid_rows(request, kwargs.get("search"))
                        assert len(response["rowData"]) == len(rows)

                t_grid = median_ms(grid_call, runs)
                t_naive = median_ms(lambda: naive_list(person, **kwargs), runs)
                results.append((who, name, total, len(rows), t_list, t_grid, t_naive))
                db.session.remove()

    header = f"{'who':<10} {'scenario':<36} {'matches':>7} {'rows':>4} {'list ms':>8} {'grid ms':>8} " \
             f"{'naive ms':>9} {'naive/grid':>10}"
    print(f"\nmedians of {runs} runs, pages of {args.page} rows, {args.datasets:,} datasets, SQLite")
    print(header)
    print("-" * len(header))
    for who, name, total, n, t_list, t_grid, t_naive in results:
        print(f"{who:<10} {name:<36} {total:>7,} {n:>4} {t_list:>8.1f} {t_grid:>8.1f} {t_naive:>9.1f} "
              f"{t_naive / t_grid:>9.1f}x")
    worst = max(r[5] for r in results)
    ratio = statistics.median(r[6] / r[5] for r in results)
    print(f"\nworst grid page {worst:.1f} ms (target <= {TARGET_MS:.0f} ms: {'OK' if worst <= TARGET_MS else 'MISSED'}); "
          f"naive approach {ratio:.0f}x slower (median ratio)")
    return 0 if worst <= TARGET_MS else 1


if __name__ == "__main__":
    sys.exit(main())
