"""The file sub-commands of ``nanoorg`` run on plain files, outside any Flask app, and print every
``--json`` key that README's command table documents; all of them count the same localisations
inside the ROI (one inclusion rule: boundary points included)."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import numpy as np
import pytest
from flask import has_app_context
from scipy.spatial import ConvexHull, cKDTree

from cli import main
from compute import simulate
from databank.demo import write_thunderstorm_csv

README = Path(__file__).resolve().parents[1] / "README.md"
FILE_COMMANDS = ("analyse", "dbscan", "ripley", "compare")


def documented_keys() -> dict[str, set[str]]:
    """command -> the --json keys listed in README's command table (``a/b`` suffixes expanded)."""
    keys = {}
    for line in README.read_text().splitlines():
        match = re.match(r"\| `nanoorg ([a-z-]+)[^`]*` \| (.*) \|$", line)
        if not match:
            continue
        spans = re.findall(r"`([^`]*)`", match.group(2))
        names = set()
        for name in (n.strip() for n in spans[0].split(",")):
            if "/" in name:                      # n_locs_per_cluster_mean/median
                first, second = name.split("/")
                names |= {first, f"{first.rpartition('_')[0]}_{second}"}
            elif re.fullmatch(r"[a-z_0-9]+", name):
                names.add(name)
        keys[match.group(1)] = names
        if match.group(1) == "compare":          # each summary: `{mean, sd, ...}`
            keys["compare summary"] = {n.strip() for n in spans[1].strip("{}").split(",")}
    return keys


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """Two ThunderSTORM files without ROI files (so the ROI is each file's convex hull, whose
    vertices are localisations lying exactly on the ROI boundary)."""
    folder = tmp_path_factory.mktemp("cli")
    paths = []
    for k, (density, fraction) in enumerate(((140.0, 0.7), (90.0, 0.0))):
        pattern = simulate.simulate_clustered(density, 9000.0, 9000.0, fraction_clustered=fraction, seed=10 + k)
        paths.append(folder / f"cell{k}.csv")
        write_thunderstorm_csv(paths[-1], pattern)
    return paths


def run_json(capsys, *argv) -> dict:
    assert not has_app_context()
    code = main([*argv, "--json"])
    out, err = capsys.readouterr()
    assert code == 0, err
    return json.loads(out)


def test_readme_documents_every_file_command():
    keys = documented_keys()
    assert set(FILE_COMMANDS) <= set(keys) and "precision_nena_nm" in keys["analyse"]
    assert {"n_locs_per_cluster_mean", "n_locs_per_cluster_median"} <= keys["dbscan"]


@pytest.mark.parametrize("command", ["analyse", "dbscan", "ripley"])
def test_file_command_prints_every_documented_key(capsys, files, command):
    extra = {"dbscan": ["--eps", "50", "--min-samples", "5"], "ripley": ["--r-max", "200", "--dr", "20"]}
    result = run_json(capsys, command, str(files[0]), *extra.get(command, []))
    missing = documented_keys()[command] - set(result)
    assert not missing, f"nanoorg {command} --json lacks documented keys {sorted(missing)}"


def test_compare_two_files_outside_an_app(capsys, files):
    result = run_json(capsys, "compare", str(files[0]), str(files[1]))
    keys = documented_keys()
    assert keys["compare"] <= set(result)
    for label in ("unthinned", "thinned_30", "thinned_100"):
        assert keys["compare summary"] <= set(result[label]), label
    assert result["a"] == "cell0.csv" and result["unthinned"]["n_pairs"] > 0
    assert result["thinned_30"]["mean"] is not None


def test_every_file_command_counts_the_boundary_points(capsys, files):
    """analyse, dbscan and ripley see all localisations of a file whose ROI is its convex hull
    (hull vertices on the boundary), and Ripley K (no edge correction) is exactly proportional to
    the brute-force count of ordered pairs closer than r."""
    path = files[0]
    raw = np.loadtxt(path, delimiter=",", skiprows=1, usecols=(2, 3))
    n = len(raw)
    hull = ConvexHull(raw)
    assert hull.vertices.size >= 5
    analysed = run_json(capsys, "analyse", str(path))
    clustered = run_json(capsys, "dbscan", str(path), "--eps", "50", "--min-samples", "5")
    radii = run_json(capsys, "ripley", str(path), "--r-max", "200", "--dr", "20", "--edge", "none")
    assert analysed["roi_source"] == "auto"
    assert analysed["n_locs_roi"] == clustered["n_locs"] == radii["n"] == n
    area_nm2 = hull.volume
    assert radii["area_um2"] == pytest.approx(area_nm2 / 1e6) == pytest.approx(analysed["roi_area_um2"])
    close = cKDTree(raw).query_pairs(max(radii["r"]), output_type="ndarray")
    distances = np.hypot(*(raw[close[:, 0]] - raw[close[:, 1]]).T)
    pairs = np.array([2 * np.count_nonzero(distances < r) for r in radii["r"]])
    np.testing.assert_allclose(radii["K"], area_nm2 * pairs / (n * (n - 1)), rtol=1e-9)


def test_compare_repeated_thinnings_and_pair_audit_csv(capsys, files, tmp_path):
    audit = tmp_path / "pairs.csv"
    result = run_json(capsys, "compare", str(files[0]), str(files[1]), "--repeats", "3", "--pairs", str(audit))
    assert result["thinned_30"]["n_repeats"] == 3 and result["thinned_30"]["sd_repeats"] is not None
    assert "n_repeats" not in result["unthinned"]
    lines = audit.read_text().splitlines()
    assert lines[0].startswith("# nano-org ") and "repeats=3" in lines[0] and "max_pairs=" in lines[0]
    rows = list(csv.DictReader(lines[2:]))
    per_set = {label: sum(r["set"] == label for r in rows) for label in ("unthinned", "thinned_30", "thinned_100")}
    assert per_set["unthinned"] == result["unthinned"]["n_pairs"]
    assert per_set["thinned_30"] == 3 * result["thinned_30"]["n_pairs"]
    first = [r for r in rows if r["set"] == "unthinned"]
    assert np.mean([float(r["lambda_critical"]) for r in first]) == pytest.approx(result["unthinned"]["mean"])
    assert all(r["n"] == r["m"] == "10000" for r in first)
    code = main(["compare", str(files[0]), str(files[1]), "--repeats", "0"])
    assert code == 2 and "n_repeats" in capsys.readouterr().err
