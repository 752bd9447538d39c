"""Result files of the viewer's analyses: CSV with provenance header lines (software version, input
file and checksum, region, parameters, time). Lengths nm, areas nm² or µm² as the column names say."""

from __future__ import annotations


import io
from datetime import datetime, timezone

import pandas as pd

from config import __version__
from databank.analysis import DbscanResult, Region, RipleyOutcome
from databank.analysis_inputs import ENVELOPE_QUANTILES


def _clean(text) -> str:
    """User text (file and ROI names) for a header line: one line, and no cell separators, so a
    spreadsheet never sees a cell starting with the user's text (CSV formula injection)."""
    return " ".join(str(text).translate(str.maketrans({",": " ", ";": " "})).split())


def header_lines(data_file, region: Region, parameters: dict, *, what: str) -> str:
    """Provenance lines starting with '#': software version, input file and checksum, region,
    parameters (key=value), time. Readers skip them with ``pandas.read_csv(..., comment='#')``."""
    params = " ".join(f"{k}={_format_value(v)}" for k, v in parameters.items())
    lines = [
        f"# nano-org {__version__}",
        f"# input {_clean(data_file.name)} sha256 {data_file.sha256}",
        f"# result {what}",
        f"# region {_clean(region.label)} key={region.spec.key} area_um2={region.area_um2:.6g} n_locs={region.n}",
        f"# parameters {params}",
        f"# created {datetime.now(timezone.utc).strftime('%Y-%m-%dT%H:%M:%SZ')}",
    ]
    return "\n".join(lines) + "\n"


def _format_value(v) -> str:
    if isinstance(v, float):
        return f"{v:g}"
    return _clean(v).replace(" ", "_")


def dbscan_parameters(result: DbscanResult) -> dict:
    return {"eps_nm": result.eps_nm, "min_samples": result.min_samples, "algorithm": "DBSCAN",
            "min_samples_counts_self": "true"}


def cluster_table_csv(data_file, region: Region, result: DbscanResult) -> str:
    """One row per cluster (compute.clusters.cluster_table columns), after the header lines."""
    buffer = io.StringIO()
    buffer.write(header_lines(data_file, region, dbscan_parameters(result), what="DBSCAN cluster table"))
    result.table.to_csv(buffer, index=False, float_format="%.4f", lineterminator="\n")
    return buffer.getvalue()


def labels_csv(data_file, region: Region, result: DbscanResult) -> str:
    """One row per localisation of the region: row in the file (0-based), x, y (nm), cluster label."""
    buffer = io.StringIO()
    buffer.write(header_lines(data_file, region, dbscan_parameters(result), what="DBSCAN labels per localisation (-1 = noise)"))
    pd.DataFrame({"row": region.index, "x_nm": region.x, "y_nm": region.y, "cluster_id": result.labels}).to_csv(
        buffer, index=False, float_format="%.3f", lineterminator="\n")
    return buffer.getvalue()


def ripley_csv(data_file, region: Region, outcome: RipleyOutcome, envelope: dict | None = None) -> str:
    """r, K, L, H (and the CSR envelope of H when computed), after the header lines."""
    res = outcome.result
    params = {"edge": res.edge, "r_max_nm": outcome.r_max_nm, "dr_nm": outcome.dr_nm,
              "n_points_used": outcome.n_used, "n_points_region": outcome.n_total,
              "subsample_seed": outcome.seed if outcome.subsampled else "none",
              "r_at_h_max_nm": res.r_at_h_max, "h_max_nm": res.h_max}
    frame = pd.DataFrame({"r_nm": res.r, "K_nm2": res.K, "L_nm": res.L, "H_nm": res.H})
    if envelope is not None:
        params.update({"envelope_simulations": envelope["n_simulations"],
                       "envelope_quantiles": "%g-%g" % tuple(ENVELOPE_QUANTILES), "envelope_seed": envelope["seed"]})
        frame["H_csr_low_nm"] = envelope["low"]
        frame["H_csr_high_nm"] = envelope["high"]
    buffer = io.StringIO()
    buffer.write(header_lines(data_file, region, params, what="Ripley K, L, H = L - r"))
    frame.to_csv(buffer, index=False, float_format="%.4f", lineterminator="\n")
    return buffer.getvalue()


def download_name(data_file, suffix: str) -> str:
    from databank.exports import safe_stem
    return f"{safe_stem(data_file.name)}_{suffix}.csv"
