"""The ``nanoorg`` command line. Output keys under ``--json`` are a stable contract (README).

Errors go to stderr with exit code 2 (bad input) or 1 (anything else).
"""

from __future__ import annotations

import argparse
import csv
import getpass
import json
import sys
from pathlib import Path

import numpy as np

from config import __version__

EXIT_BAD_INPUT = 2


class CliError(Exception):
    """A user-facing error: printed to stderr, exit code 2."""


# ---------------------------------------------------------------------------------------------
# helpers

def _emit(args, payload: dict, lines: list[str]) -> None:
    if args.json:
        print(json.dumps(payload, indent=2, default=_json_default))
    else:
        print("\n".join(lines))


def _json_default(value):
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating,)):
        return None if not np.isfinite(value) else float(value)
    if isinstance(value, np.ndarray):
        return value.tolist()
    return str(value)


def _staged(path: str):
    from databank.ingest import StagedFile
    file_path = Path(path)
    if not file_path.is_file():
        raise CliError(f"{path}: no such file")
    return StagedFile(path=file_path, name=file_path.name)


def _roi_files_for(detection: Path, explicit: list[str] | None):
    """ROI files by the naming rule next to ``detection``; ``--roi`` files replace them when given."""
    from compute.rois import roi_files_for
    if explicit:
        return [_staged(p) for p in explicit]
    names = roi_files_for(detection.name, [p.name for p in detection.parent.iterdir() if p.is_file()])
    return [_staged(str(detection.parent / name)) for name in names]


def _analyse(path: str, rois: list[str] | None, pixel_size: float | None, **thinning):
    from databank.ingest import analyse_file
    detection = _staged(path)
    return analyse_file(detection, _roi_files_for(detection.path, rois), pixel_size_nm=pixel_size, **thinning)


def _region(analysis):
    """Localisations inside the file's ROI union (or its automatic hull), and that region."""
    import shapely
    from compute.rois import points_in_polygon
    region = shapely.union_all(analysis.polygons)
    table = analysis.table
    inside = points_in_polygon(table.x, table.y, region)
    return table.x[inside], table.y[inside], region


def _fmt(value, digits=3) -> str:
    if value is None or (isinstance(value, float) and not np.isfinite(value)):
        return "n/a"
    return f"{value:.{digits}g}" if isinstance(value, float) else str(value)


# ---------------------------------------------------------------------------------------------
# file commands (no database needed)

def cmd_analyse(args) -> None:
    analysis = _analyse(args.file, args.roi, args.pixel_size)
    stats = dict(analysis.stats, file=analysis.name, format=analysis.table.source_format,
                 n_dropped=analysis.table.n_dropped, n_rois=len(analysis.roi_records), warnings=analysis.warnings)
    keys = ("n_locs", "n_locs_roi", "roi_area_um2", "density", "coverage", "coverage_area", "precision_median",
            "precision_nena_nm", "n_tiles", "n_tiles_kept", "n_tiles_dropped")
    lines = [f"{analysis.name} ({stats['format']}, {stats['n_rois']} ROI(s), roi source {stats.get('roi_source')})"]
    lines += [f"  {k:18s} {_fmt(stats.get(k))}" for k in keys]
    lines += [f"  warning: {w}" for w in analysis.warnings]
    _emit(args, stats, lines)


def cmd_dbscan(args) -> None:
    from compute import clusters
    analysis = _analyse(args.file, args.roi, args.pixel_size)
    x, y, region = _region(analysis)
    labels = clusters.dbscan_labels(x, y, args.eps, args.min_samples)
    summary = clusters.cluster_summary(x, y, labels, region.area / 1e6)
    summary.update(file=analysis.name, eps_nm=args.eps, min_samples=args.min_samples, area_um2=region.area / 1e6)
    if args.labels:
        with open(args.labels, "w", newline="") as handle:
            handle.write(f"# nano-org {__version__} dbscan eps_nm={args.eps} min_samples={args.min_samples}\n")
            handle.write(f"# input {analysis.name} sha256 {analysis.sha256}\n")
            writer = csv.writer(handle)
            writer.writerow(["x [nm]", "y [nm]", "cluster"])
            writer.writerows(zip(np.round(x, 3), np.round(y, 3), labels))
    lines = [f"{analysis.name}: DBSCAN eps={args.eps} nm, minPts={args.min_samples}"]
    lines += [f"  {k:30s} {_fmt(v)}" for k, v in summary.items() if k not in ("file",)]
    _emit(args, summary, lines)


def cmd_ripley(args) -> None:
    from compute import clusters
    analysis = _analyse(args.file, args.roi, args.pixel_size)
    x, y, region = _region(analysis)
    radii = clusters.default_radii_nm(args.r_max, args.dr)
    result = clusters.ripley(x, y, radii, window=region, edge=args.edge)
    payload = dict(file=analysis.name, edge=args.edge, n=result.n, area_um2=result.area_nm2 / 1e6,
                   r_at_h_max_nm=result.r_at_h_max, h_max_nm=result.h_max,
                   r=result.r, K=result.K, L=result.L, H=result.H)
    lines = [f"{analysis.name}: Ripley ({args.edge} edge correction), n={result.n}",
             f"{'r [nm]':>10} {'K [nm^2]':>14} {'L [nm]':>10} {'H [nm]':>10}"]
    lines += [f"{r:10.1f} {k:14.1f} {l:10.2f} {h:10.2f}" for r, k, l, h in zip(result.r, result.K, result.L, result.H)]
    lines.append(f"r at H max: {result.r_at_h_max:.1f} nm, H max: {result.h_max:.2f} nm")
    _emit(args, payload, lines)


# ---------------------------------------------------------------------------------------------
# database commands

def _with_app(fn):
    def wrapper(args):
        from databank.core import make_data_app
        app = make_data_app()
        with app.app_context():
            return fn(args)
    return wrapper


def _user(name: str):
    from databank.users import find_user
    user = find_user(name)
    if user is None:
        raise CliError(f"no user named '{name}' (create one with: nanoorg create-user {name} --email ...)")
    return user


def _fingerprint_sets_for(ref: str, args) -> tuple[str, dict]:
    """Fingerprints of a dataset id (as the given --as user, else unrestricted; its stored
    thinnings) or of a file (thinned ``--repeats`` times in ``--thinning`` mode)."""
    if ref.isdigit() and not Path(ref).exists():
        from databank.access import get_dataset, AccessDenied
        from databank.models import Dataset, db
        from databank.compare import dataset_fingerprint_sets
        dataset = db.session.get(Dataset, int(ref))
        user = _user(args.as_user) if args.as_user else (dataset.owner if dataset else None)
        try:
            dataset = get_dataset(user, ref)
        except AccessDenied:
            raise CliError(f"no dataset {ref} readable by {args.as_user or 'its owner'}") from None
        return dataset.title, dataset_fingerprint_sets(dataset)
    analysis = _analyse(ref, None, args.pixel_size, thinning_repeats=args.repeats, thinning_mode=args.thinning)
    return analysis.name, analysis.fingerprints.repeat_sets()


def cmd_compare(args) -> None:
    from databank.compare import compare_fingerprint_sets, pair_audit_rows
    from config import load_settings
    settings = load_settings()
    args.repeats = settings.thinning_repeats if args.repeats is None else args.repeats
    args.thinning = args.thinning or settings.thinning_mode
    mode = args.mode or settings.lambda_mode
    name_a, a = _fingerprint_sets_for(args.a, args)
    name_b, b = _fingerprint_sets_for(args.b, args)
    result = compare_fingerprint_sets(a, b, mode=mode, max_pairs=settings.max_pairs)
    payload = dict(a=name_a, b=name_b, mode=mode, **result)
    if args.pairs:
        with open(args.pairs, "w", newline="") as handle:
            handle.write(f"# nano-org {__version__} compare a={name_a} b={name_b} max_pairs={settings.max_pairs} "
                         f"alpha=0.05 bin_nm=30 tile_nm=3000 thinning={args.thinning} repeats={args.repeats} "
                         "(repeats of dataset ids: as stored)\n")
            handle.write("# D: two-sample KS statistic of the per-bin count ECDFs; n, m: bins of each tile\n")
            writer = csv.writer(handle)
            writer.writerow(["set", "repeat", "tile_a", "tile_b", "D", "n", "m", "lambda_critical", "lambda_kolmogorov"])
            writer.writerows(pair_audit_rows(a, b, max_pairs=settings.max_pairs))
    lines = [f"{name_a}  vs  {name_b}  (lambda, {mode} mode; > 1 = significantly different)",
             f"{'':14s} {'mean':>8} {'SD':>8} {'median':>8} {'>1':>6} {'pairs':>7} {'repeats':>7} {'SD rep.':>8}"]
    for label, s in result.items():
        lines.append(f"{label:14s} {_fmt(s['mean']):>8} {_fmt(s['sd']):>8} {_fmt(s['median']):>8} "
                     f"{_fmt(s['fraction_above_1'], 2):>6} {s['n_pairs']:>7} {s.get('n_repeats', 1):>7} "
                     f"{_fmt(s.get('sd_repeats')):>8}")
    _emit(args, payload, lines)


def _compare_needs_db(args) -> bool:
    return any(ref.isdigit() and not Path(ref).exists() for ref in (args.a, args.b))


def cmd_create_user(args) -> None:
    from databank.users import AccountError, create_user
    password = args.password
    if password is None:
        password = getpass.getpass("Password: ") if sys.stdin.isatty() else sys.stdin.readline().rstrip("\n")
    try:
        user = create_user(args.name, args.email, password)
    except AccountError as error:
        raise CliError(f"{error.field}: {error}") from None
    _emit(args, dict(id=user.id, username=user.username, email=user.email), [f"created user {user.username} (id {user.id})"])


def cmd_token(args) -> None:
    from databank.users import create_api_token, list_api_tokens, revoke_api_token
    user = _user(args.name)
    if args.revoke is not None:
        if not revoke_api_token(user, args.revoke):
            raise CliError(f"{user.username} has no token {args.revoke}")
        _emit(args, dict(revoked=args.revoke), [f"revoked token {args.revoke}"])
    elif args.list:
        tokens = [dict(id=t.id, name=t.name, prefix=t.prefix, created=t.created_at.isoformat()) for t in list_api_tokens(user)]
        _emit(args, dict(tokens=tokens), [f"{t['id']:>4} {t['prefix']}... {t['name']} {t['created']}" for t in tokens])
    else:
        token = create_api_token(user, args.token_name)
        _emit(args, dict(username=user.username, token=token),
              [token, "Keep it secret: it is shown once. Send it as 'Authorization: Bearer <token>'."])


def cmd_ingest(args) -> None:
    from databank.ingest import IngestError, ingest_dataset
    from databank.metadata import MetadataError
    folder = Path(args.folder)
    if not folder.is_dir():
        raise CliError(f"{folder}: not a folder")
    try:
        meta = json.loads(Path(args.metadata).read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise CliError(f"{args.metadata}: cannot read metadata JSON ({error})") from None
    visibility = meta.pop("visibility", "private")
    shared_with = meta.pop("shared_with", [])
    files = [_staged(str(p)) for p in sorted(folder.iterdir()) if p.is_file() and not p.name.startswith(".")]
    report = (lambda f, m: print(f"[{f:4.0%}] {m}", file=sys.stderr)) if not args.quiet else None
    try:
        dataset = ingest_dataset(files, meta, _user(args.owner), visibility=visibility, shared_with=shared_with,
                                 pixel_size_nm=args.pixel_size, progress=report)
    except (IngestError, MetadataError) as error:
        raise CliError(str(error)) from None
    _emit(args, dict(id=dataset.id, title=dataset.title, n_files=dataset.n_files, n_locs=dataset.n_locs,
                     n_tiles=dataset.n_tiles, visibility=dataset.visibility),
          [f"ingested dataset {dataset.id}: {dataset.title} ({dataset.n_files} files, {dataset.n_locs:,} localisations, "
           f"{dataset.n_tiles} tiles)"])


def cmd_similar(args) -> None:
    from databank.access import AccessDenied
    from databank.models import Dataset, db
    from databank.search import similar_datasets
    dataset = db.session.get(Dataset, args.dataset_id)
    user = _user(args.as_user) if args.as_user else (dataset.owner if dataset else None)
    try:
        rows = similar_datasets(user, args.dataset_id, target=args.target)
    except AccessDenied:
        raise CliError(f"no dataset {args.dataset_id} readable by {args.as_user or 'its owner'}") from None
    lines = [f"{'id':>5} {'thinned mean':>12} {'SD':>7} {'unthinned mean':>14} {'SD':>7}  title"]
    lines += [f"{r['dataset_id']:>5} {_fmt(r['thinned_mean']):>12} {_fmt(r['thinned_sd']):>7} "
              f"{_fmt(r['unthinned_mean']):>14} {_fmt(r['unthinned_sd']):>7}  {r['title']}" for r in rows]
    _emit(args, dict(dataset_id=args.dataset_id, target=args.target, results=rows), lines)


def cmd_seed_demo(args) -> None:
    from databank.core import settings_of
    from databank.demo import seed_demo
    created = seed_demo(settings_of(), progress=None if args.quiet else (lambda m: print(m, file=sys.stderr)),
                        force=args.force)
    _emit(args, dict(created=created), [f"demo bank: {len(created)} dataset(s) created"])


def cmd_migrate(args) -> None:
    from sqlalchemy import create_engine

    from config import load_settings
    from databank.schema import current_revision, upgrade_schema
    settings = load_settings()
    settings.ensure_dirs()
    engine = create_engine(settings.database_url)
    try:
        with engine.connect() as connection:
            previous = current_revision(connection)
        revision = upgrade_schema(engine)
    finally:
        engine.dispose()
    _emit(args, dict(previous=previous, revision=revision),
          [f"database schema: {previous or '(none)'} -> {revision}"])


def cmd_messages(args) -> None:
    from databank.contact import list_messages
    messages = [dict(id=m.id, created=m.created_at.isoformat(), user_id=m.user_id, reply_to=m.reply_to, body=m.body)
                for m in list_messages(args.limit)]
    lines = [f"#{m['id']} {m['created']} from {m['reply_to']}" + (f" (user {m['user_id']})" if m["user_id"] else "")
             + "\n" + m["body"] + "\n" for m in messages] or ["no messages"]
    _emit(args, dict(messages=messages), lines)


# ---------------------------------------------------------------------------------------------

def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="nanoorg", description="nano-org: SMLM databank tools")
    parser.add_argument("--version", action="version", version=f"nanoorg {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    def add(name, fn, help_text, needs_db=True):
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.add_argument("--json", action="store_true", help="machine-readable output")
        p.set_defaults(fn=_with_app(fn) if needs_db else fn)
        return p

    def file_args(p):
        p.add_argument("file", help="detection file; ROI files {stem}_ROI*.csv beside it are used")
        p.add_argument("--roi", action="append", help="ROI file (repeatable); replaces the automatically found ones")
        p.add_argument("--pixel-size", type=float, help="camera pixel size in nm, for files in pixels without one")

    p = add("analyse", cmd_analyse, "per-file statistics: counts, density, coverage, precision, tiles", needs_db=False)
    file_args(p)
    p = add("dbscan", cmd_dbscan, "DBSCAN cluster summary of the localisations inside the ROIs", needs_db=False)
    file_args(p)
    p.add_argument("--eps", type=float, default=100.0, help="neighbourhood radius in nm (default 100)")
    p.add_argument("--min-samples", type=int, default=10, help="minPts, counting the point itself (default 10)")
    p.add_argument("--labels", help="write per-localisation labels to this CSV")
    p = add("ripley", cmd_ripley, "Ripley K, L, H inside the ROIs", needs_db=False)
    file_args(p)
    p.add_argument("--r-max", type=float, default=500.0, help="largest radius in nm (default 500)")
    p.add_argument("--dr", type=float, default=10.0, help="radius step in nm (default 10)")
    p.add_argument("--edge", choices=("none", "ripley", "buffer"), default="ripley", help="edge correction")
    p = add("compare", cmd_compare, "lambda between two files or two dataset ids, thinned and unthinned")
    p.add_argument("a")
    p.add_argument("b")
    p.add_argument("--as", dest="as_user", help="read datasets as this user (default: each dataset's owner)")
    p.add_argument("--pixel-size", type=float)
    p.add_argument("--mode", choices=("critical", "kolmogorov"))
    p.add_argument("--repeats", type=int, help="independent thinnings of each file, lambda averaged over them "
                                                "(default NANOORG_THINNING_REPEATS)")
    p.add_argument("--thinning", choices=("tile", "bernoulli"), help="exact count per tile, or file-level "
                                                                      "independent thinning (default NANOORG_THINNING_MODE)")
    p.add_argument("--pairs", metavar="OUT.csv", help="write D, n, m and both lambdas of every compared tile pair")
    p = add("create-user", cmd_create_user, "create an account (password from --password or stdin)")
    p.add_argument("name")
    p.add_argument("--email", required=True)
    p.add_argument("--password")
    p = add("token", cmd_token, "create (default), list or revoke a personal API token")
    p.add_argument("name", help="user name")
    p.add_argument("--token-name", default="cli")
    p.add_argument("--list", action="store_true")
    p.add_argument("--revoke", type=int, metavar="TOKEN_ID")
    p = add("ingest", cmd_ingest, "ingest a folder of detection + ROI files as one dataset")
    p.add_argument("folder")
    p.add_argument("--metadata", required=True, help="META.json with the upload form's field names")
    p.add_argument("--owner", required=True)
    p.add_argument("--pixel-size", type=float)
    p.add_argument("--quiet", action="store_true")
    p = add("similar", cmd_similar, "similarity search: every readable dataset ranked by mean lambda")
    p.add_argument("dataset_id", type=int)
    p.add_argument("--as", dest="as_user", help="search as this user (default: the dataset's owner)")
    p.add_argument("--target", type=int, help="thinning target in loc/um^2 (default 30)")
    add("migrate", cmd_migrate, "create or upgrade the database schema to this version (run before the workers)",
        needs_db=False)
    p = add("seed-demo", cmd_seed_demo, "create the demo bank (real shared files + simulated datasets)")
    p.add_argument("--force", action="store_true", help="add missing demo datasets even if the bank is not empty")
    p.add_argument("--quiet", action="store_true")
    p = add("messages", cmd_messages, "messages sent with the contact form (/contact), newest first")
    p.add_argument("--limit", type=int, help="show only the newest N")
    return parser


def main(argv: list[str] | None = None) -> int:
    from compute.formats import FormatError
    from databank.ingest import IngestError
    args = build_parser().parse_args(argv)
    if args.command == "compare" and not _compare_needs_db(args):
        args.fn = cmd_compare
    try:
        args.fn(args)
    except (CliError, IngestError, FormatError, ValueError) as error:
        print(f"nanoorg {args.command}: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    return 0


if __name__ == "__main__":
    sys.exit(main())
