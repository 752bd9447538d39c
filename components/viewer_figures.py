"""Figures and cards of the file viewer's analysis panel (pure layout: numbers in, figure dicts out)."""

from __future__ import annotations



import dash_bootstrap_components as dbc
import numpy as np
from dash import html

from databank import analysis
import ids


def alert(message, colour="warning"):
    return dbc.Alert(message, color=colour, className="py-1 px-2 mb-0 small")


def fmt_number(value, spec="{:,.1f}"):
    if value is None or (isinstance(value, float) and not np.isfinite(value)):
        return "–"
    return spec.format(value)


def stats_card(summary: dict, region, seconds: float | None = None):
    rows = [
        ("Clusters", html.Span(fmt_number(summary["n_clusters"], "{:,d}"), id=ids.Viewer.N_CLUSTERS)),
        ("Clusters per µm²", fmt_number(summary["clusters_per_um2"], "{:,.2f}")),
        ("Clustered", fmt_number(summary["percent_clustered"], "{:.1f} %")),
        ("Localisations per cluster (mean / median)",
         f"{fmt_number(summary['n_locs_per_cluster_mean'])} / {fmt_number(summary['n_locs_per_cluster_median'])}"),
        ("Equivalent radius, nm (mean / median)",
         f"{fmt_number(summary['radius_eq_nm_mean'])} / {fmt_number(summary['radius_eq_nm_median'])}"),
        ("Density in clusters, loc/µm² (mean / median)",
         f"{fmt_number(summary['density_locs_per_um2_mean'], '{:,.0f}')} / "
         f"{fmt_number(summary['density_locs_per_um2_median'], '{:,.0f}')}"),
    ]
    body = [html.Tr([html.Td(label, className="text-muted pe-2"), html.Td(value, className="text-end fw-semibold")])
            for label, value in rows]
    note = f"{region.label}: {summary['n_locs']:,} localisations, {region.area_um2:.2f} µm²"
    if seconds is not None:
        note += f" · {seconds * 1000:.0f} ms"
    return [html.Table(html.Tbody(body), className="table table-sm small mb-1", id="viewer-dbscan-table"),
            html.Div(note, className="small text-muted")]


SMALL_LAYOUT = dict(plot_bgcolor="white", paper_bgcolor="white", font=dict(size=11), showlegend=False)


AXIS = dict(gridcolor="#eee", linecolor="#999", zeroline=False)


def histogram_figure(result) -> dict:
    """Histograms of cluster equivalent radius and localisations per cluster (plain figure dict)."""
    traces = []
    titles = (("radius_eq_nm", "Radius (nm)", "x", "y"), ("n_locs", "Locs per cluster", "x2", "y2"))
    for column, _title, xaxis, yaxis in titles:
        h = analysis.histogram(result.table[column].to_numpy(dtype=float) if result is not None else [])
        if h["counts"]:
            edges = np.asarray(h["edges"])
            traces.append(dict(type="bar", x=((edges[:-1] + edges[1:]) / 2).tolist(), y=h["counts"],
                               width=np.diff(edges).tolist(), marker=dict(color="#2e86c1"), xaxis=xaxis, yaxis=yaxis,
                               hovertemplate="%{x:.0f}: %{y}<extra></extra>"))
    layout = dict(SMALL_LAYOUT, margin=dict(l=35, r=5, t=25, b=25), bargap=0.05,
                  xaxis=dict(AXIS, domain=[0, 0.43], showgrid=False), yaxis=dict(AXIS, anchor="x"),
                  xaxis2=dict(AXIS, domain=[0.57, 1], showgrid=False), yaxis2=dict(AXIS, anchor="x2"),
                  annotations=[dict(text=title, x=x, y=1.0, xref="paper", yref="paper", yanchor="bottom",
                                    showarrow=False, font=dict(size=11))
                               for (_c, title, _x, _y), x in zip(titles, (0.215, 0.785))])
    return dict(data=traces, layout=layout)


def pending_card(region, eps, min_samples):
    return [html.Div([dbc.Spinner(size="sm", spinner_class_name="me-2"),
                      f"DBSCAN of {region.n:,} localisations (eps {eps:g} nm, minPts {min_samples}) is running in the "
                      "background; the results appear here when it is done."], className="small text-muted")]


def finite_list(values) -> list:
    return [None if v is None or not np.isfinite(v) else float(v) for v in np.asarray(values, dtype=float)]


def ripley_figure(outcome, envelope=None) -> dict:
    """H(r) = L(r) - r with the CSR envelope (when computed) and the maximum marked (figure dict)."""
    res = outcome.result
    r = res.r.tolist()
    traces = []
    if envelope is not None:
        traces.append(dict(type="scatter", x=r, y=envelope["high"], mode="lines", line=dict(width=0),
                           hoverinfo="skip", showlegend=False))
        traces.append(dict(type="scatter", x=r, y=envelope["low"], mode="lines", line=dict(width=0), fill="tonexty",
                           fillcolor="rgba(120,120,120,0.25)", showlegend=True, hoverinfo="skip",
                           name=f"CSR envelope ({envelope['n_simulations']} simulations, 2.5-97.5 %)"))
    traces.append(dict(type="scatter", x=r, y=finite_list(res.H), mode="lines", name="H(r) = L(r) - r",
                       showlegend=True, line=dict(color="#1f4e79", width=2),
                       hovertemplate="r %{x:.0f} nm<br>H %{y:.2f} nm<extra></extra>"))
    if np.isfinite(res.h_max):
        traces.append(dict(type="scatter", x=[res.r_at_h_max], y=[res.h_max], mode="markers+text", name="maximum",
                           marker=dict(color="#e53935", size=9), showlegend=False, hoverinfo="skip",
                           text=[f"r {res.r_at_h_max:.0f} nm, H {res.h_max:.1f} nm"], textposition="top center",
                           cliponaxis=False))
    layout = dict(SMALL_LAYOUT, showlegend=True, margin=dict(l=45, r=10, t=25, b=40),
                  legend=dict(orientation="h", y=-0.25, font=dict(size=10)),
                  xaxis=dict(AXIS, title=dict(text="r (nm)")), yaxis=dict(AXIS, title=dict(text="L(r) - r (nm)")),
                  shapes=[dict(type="line", xref="paper", x0=0, x1=1, yref="y", y0=0, y1=0,
                               line=dict(color="#999", width=1, dash="dot"))])
    return dict(data=traces, layout=layout)


def sweep_figure(sweep: dict | None) -> dict:
    """Heat maps of cluster count and % clustered over eps (x) x minPts (y) (figure dict)."""
    if not sweep:
        return dict(data=[], layout=dict(
            SMALL_LAYOUT, margin=dict(l=10, r=10, t=10, b=10), xaxis=dict(visible=False), yaxis=dict(visible=False),
            annotations=[dict(text="Run a sweep to see the cluster count and % clustered over eps x minPts.",
                              showarrow=False, font=dict(color="#888"), xref="paper", yref="paper", x=0.5, y=0.5)]))
    eps = [f"{v:g}" for v in sweep["eps_nm"]]
    mins = [str(v) for v in sweep["min_samples"]]
    traces = [
        dict(type="heatmap", x=eps, y=mins, z=sweep["n_clusters"], colorscale="Viridis", texttemplate="%{z}",
             textfont=dict(size=9), colorbar=dict(len=0.42, y=0.79, thickness=10), xaxis="x", yaxis="y",
             hovertemplate="eps %{x} nm, minPts %{y}: %{z} clusters<extra></extra>"),
        dict(type="heatmap", x=eps, y=mins, z=sweep["percent_clustered"], colorscale="Cividis", zmin=0, zmax=100,
             texttemplate="%{z:.0f}", textfont=dict(size=9), colorbar=dict(len=0.42, y=0.21, thickness=10),
             xaxis="x2", yaxis="y2", hovertemplate="eps %{x} nm, minPts %{y}: %{z:.1f} %<extra></extra>"),
    ]
    axis = dict(type="category", linecolor="#999")
    layout = dict(SMALL_LAYOUT, margin=dict(l=50, r=10, t=30, b=40),
                  xaxis=dict(axis, anchor="y", title=dict(text="eps (nm)")),
                  yaxis=dict(axis, domain=[0.58, 1], title=dict(text="minPts")),
                  xaxis2=dict(axis, anchor="y2", title=dict(text="eps (nm)")),
                  yaxis2=dict(axis, domain=[0, 0.42], title=dict(text="minPts")),
                  annotations=[dict(text="Number of clusters", x=0.5, y=1.0, xref="paper", yref="paper",
                                    yanchor="bottom", showarrow=False, font=dict(size=12)),
                               dict(text="% clustered", x=0.5, y=0.42, xref="paper", yref="paper",
                                    yanchor="bottom", showarrow=False, font=dict(size=12))])
    return dict(data=traces, layout=layout)
