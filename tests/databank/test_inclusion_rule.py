"""One ROI inclusion rule (boundary included) on every path: the same file gives the same counts in
the CLI, the stored statistics, the viewer's regions, the tiles, the gridded export and the
fingerprints (docs/SCIENCE.md §2.1)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import shapely

from cli import main
from compute import simulate
from compute.rois import points_in_polygon
from compute.tiles import TILE_NM
from databank import analysis, exports
from databank.analysis_inputs import RegionSpec
from databank.demo import write_fiji_roi, write_thunderstorm_csv
from databank.ingest import StagedFile, ingest_dataset
from databank.store import FileStore, unpack_fingerprints

from .conftest import META


def cli_json(capsys, *argv) -> dict:
    assert main([*argv, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


@pytest.mark.parametrize("with_roi", [False, True])
def test_every_path_counts_the_same_localisations(app, settings, users, tmp_path, capsys, with_roi):
    """Without ROI files the ROI is the convex hull (its vertices are localisations on the boundary);
    with one, a 6 x 6 um square exactly filled by 4 tiles, with localisations placed on its edges,
    corners and the lines between its tiles."""
    folder = tmp_path / "up"
    folder.mkdir()
    pattern = simulate.simulate_clustered(120.0, 9000.0, 9000.0, seed=4)
    if with_roi:
        along = np.round(np.random.default_rng(1).uniform(1000, 7000, 20), 2)
        lines = np.repeat([1000.0, 4000.0, 7000.0], 20)
        pattern.x = np.concatenate((pattern.x, lines, np.tile(along, 3), [1000, 7000, 7000, 1000, 4000]))
        pattern.y = np.concatenate((pattern.y, np.tile(along, 3), lines, [1000, 1000, 7000, 7000, 4000]))
        n_extra = pattern.x.size - pattern.frame.size
        pattern.frame = np.concatenate((pattern.frame, np.zeros(n_extra, dtype=np.int64)))
        pattern.precision = np.concatenate((pattern.precision, np.full(n_extra, 10.0)))
        write_fiji_roi(folder / "cell_ROI_1.csv", np.array([(1, 1), (7, 1), (7, 7), (1, 7)], dtype=float))
    write_thunderstorm_csv(folder / "cell.csv", pattern)
    raw = np.loadtxt(folder / "cell.csv", delimiter=",", skiprows=1, usecols=(2, 3))
    roi = shapely.box(1000, 1000, 7000, 7000) if with_roi else shapely.convex_hull(shapely.multipoints(raw))
    expected = int(points_in_polygon(raw[:, 0], raw[:, 1], roi).sum())
    if with_roi:
        assert np.count_nonzero(np.isin(raw[:, 0], [1000.0, 4000.0, 7000.0])) >= 40      # points on the lines
    else:
        assert expected == len(raw)

    analysed = cli_json(capsys, "analyse", str(folder / "cell.csv"))
    clustered = cli_json(capsys, "dbscan", str(folder / "cell.csv"), "--eps", "40", "--min-samples", "5")
    curve = cli_json(capsys, "ripley", str(folder / "cell.csv"), "--r-max", "100", "--dr", "50")
    assert analysed["n_locs_roi"] == clustered["n_locs"] == curve["n"] == expected

    files = [StagedFile(p, p.name) for p in sorted(folder.iterdir())]
    data_file = ingest_dataset(files, META, users["alice"]).files[0]
    table = FileStore(settings).load_locs(data_file)
    assert data_file.stats["n_locs_roi"] == expected
    assert analysis.select_region(data_file, table, RegionSpec("all")).n == expected
    assert analysis.select_region(data_file, table, RegionSpec("roi", index=1)).n == expected

    tiles = sorted(data_file.tiles, key=lambda t: t.index)
    viewer_tiles = [analysis.select_region(data_file, table, RegionSpec("tile", index=t.index)).n for t in tiles]
    exported = {tile.index: x.size for tile, x, _ in exports.gridded_tiles(data_file, FileStore(settings))}
    assert viewer_tiles == [t.n_locs for t in tiles] == [exported[t.index] for t in tiles]
    prints = unpack_fingerprints(data_file.fingerprints)
    assert prints.unthinned.n_locs.tolist() == [tiles[k].n_locs for k in prints.tile_index_unthinned]
    if with_roi:        # the 4 tiles fill the ROI: each ROI localisation is in exactly one tile
        assert len(tiles) == 4 and sum(viewer_tiles) == expected
        assert all(t.x0_nm + TILE_NM <= 7000 for t in tiles)
