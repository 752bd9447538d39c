"""Background jobs of the file viewer: DBSCAN of a large region, the CSR envelope, the parameter sweep.

Each job re-derives its user from the session cookie of the request that started it and checks
access again before reading any data (``_job_region``).
"""

from __future__ import annotations


import time

import numpy as np
from dash import no_update
from dash.exceptions import PreventUpdate

from databank import analysis, analysis_inputs, jobs
from components.viewer_figures import sweep_figure
from server.dash_jobs import job_app_context, job_user
from databank.viewer_data import DENIED, load_table, readable_file, region_of, result_cache


def dbscan_job(set_progress, request, pathname):
    """Background: DBSCAN of a large region, stored in the shared result cache.

    Returns the 'ready' store value; the user is re-derived from the session cookie and access is
    re-checked before any data is read.
    """
    if not isinstance(request, dict):
        raise PreventUpdate
    with job_app_context():
        data_file, region, error = _job_region(pathname, request.get("region"))
        if error:
            return {"error": error}

        def report(fraction, message):
            set_progress((int(100 * fraction), message))

        with jobs.slot(report):
            analysis.run_dbscan(region, request.get("eps"), request.get("min_samples"), disk=result_cache(),
                                progress=report)
    return {"region": region.spec.key, "eps": analysis_inputs.clamp_eps(request.get("eps")),
            "min_samples": analysis_inputs.clamp_min_samples(request.get("min_samples")), "t": time.time()}


def _anonymous():
    from flask_login import AnonymousUserMixin
    return AnonymousUserMixin()


def envelope_job(set_progress, n_clicks, n_simulations, r_max, dr, edge, region_key, pathname):
    """Background: CSR envelope of H for the current Ripley settings. Returns (envelope store, status)."""
    if not n_clicks:
        raise PreventUpdate
    sims = int(n_simulations) if n_simulations in analysis_inputs.ENVELOPE_SIMULATIONS else analysis_inputs.ENVELOPE_SIMULATIONS[1]
    with job_app_context():
        data_file, region, error = _job_region(pathname, region_key)
        if error:
            return no_update, error
        outcome = analysis.run_ripley(region, r_max, dr, edge)
        if outcome.n_used < 2:
            return no_update, "Too few localisations for an envelope."

        def report(done, total):
            set_progress((int(100 * done / total), f"{done} / {total} simulations"))

        with jobs.slot(lambda f, m: set_progress((0, m))):
            low, high = analysis.csr_envelope(outcome.n_used, region.window, outcome.result.r, outcome.result.edge,
                                              sims, seed=outcome.seed, progress=report)
    envelope = {"file": data_file.id, "region": region.spec.key, "edge": outcome.result.edge, "n": outcome.n_used,
                "r_max": outcome.r_max_nm, "dr": outcome.dr_nm, "n_simulations": sims, "seed": outcome.seed,
                "low": [None if not np.isfinite(v) else float(v) for v in low],
                "high": [None if not np.isfinite(v) else float(v) for v in high]}
    return envelope, f"CSR envelope from {sims} simulations of {outcome.n_used:,} points in the same window."


def sweep_job(set_progress, n_clicks, eps_range, min_range, region_key, pathname):
    """Background: DBSCAN over the eps x minPts grid. Returns (sweep figure, status)."""
    if not n_clicks:
        raise PreventUpdate
    with job_app_context():
        data_file, region, error = _job_region(pathname, region_key)
        if error:
            return no_update, error
        eps_values, min_values = analysis.sweep_values(eps_range or (20, 200), min_range or (3, 30))

        def report(done, total):
            set_progress((int(100 * done / total), f"{done} / {total} runs"))

        start = time.perf_counter()
        with jobs.slot(lambda f, m: set_progress((0, m))):
            sweep = analysis.parameter_sweep(region, eps_values, min_values, progress=report)
    status = (f"{region.label}: {region.n:,} localisations, {len(eps_values) * len(min_values)} DBSCAN runs in "
              f"{time.perf_counter() - start:.1f} s. Click a cell to use its parameters.")
    return sweep_figure(sweep), status


def _job_region(pathname, region_key):
    """Inside a job's app context: (data file, region, None) for the job's user, or (file, None, message).

    The user comes from the session cookie of the request that started the job; access is checked
    again here, as in every callback."""
    user = job_user()
    data_file = readable_file(pathname, user=user if user is not None else _anonymous())
    if data_file is None:
        return None, None, DENIED
    try:
        return data_file, region_of(data_file, load_table(data_file), region_key), None
    except analysis_inputs.RegionError as error:
        return data_file, None, str(error)
