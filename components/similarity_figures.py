"""Figures and small tables for similarity results (presentation only: numbers come from
``databank.search``). Self-similarity histograms, the results grid's columns, the Compare heat map
and the overlaid self-similarity distributions."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
from dash import html

THINNED_COLOUR = "#2c7fb8"
UNTHINNED_COLOUR = "#d95f0e"
WITHIN_COLOUR = "#1b9e77"
BETWEEN_COLOUR = "#7570b3"
MAX_BINS = 120
PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22",
           "#17becf")


def empty_figure(title: str, message: str) -> go.Figure:
    fig = go.Figure()
    fig.update_layout(title=dict(text=title, x=0.02, font=dict(size=15)), height=320,
                      margin=dict(l=50, r=20, t=50, b=45), template="plotly_white",
                      xaxis=dict(visible=False), yaxis=dict(visible=False),
                      annotations=[dict(text=message, showarrow=False, x=0.5, y=0.5, xref="paper", yref="paper",
                                        font=dict(size=13, color="#666"))])
    return fig


STRIP_BELOW = 30      # fewer tile pairs than this: every pair is drawn (strip and box), no histogram


def bins_for(n_values: int) -> int:
    """Number of histogram bins for ``n_values`` values: the Rice rule 2 n^(1/3), between 5 and MAX_BINS,
    so a few dozen pairs give a few wide bins instead of a 'barcode' of single counts."""
    return int(min(MAX_BINS, max(5, np.ceil(2.0 * max(n_values, 1) ** (1 / 3)))))


def histogram_edges(values, *, minimum_upper: float = 1.2, max_bins: int = MAX_BINS) -> np.ndarray:
    """Bin edges from 0 covering the values and the line at 1, in steps of 0.001, 0.002, 0.005, 0.01 ...:
    the finest step that splits the values' range (0 to their maximum) into at most ``max_bins`` bins."""
    values = np.asarray(values, dtype=float)
    data_upper = float(values.max()) * 1.001 if values.size else 0.0
    upper = max(minimum_upper, data_upper)
    span = data_upper if data_upper > 0 else upper
    for step in (0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 50.0):
        if span / step <= max_bins:
            break
    n = int(np.ceil(upper / step))
    return np.arange(n + 1) * step


def self_similarity_figure(part: dict | None, *, label: str, split: bool = False) -> go.Figure:
    """Histogram of self-similarity lambda (one of the ``unthinned`` / ``thinned`` parts of
    ``search.self_similarity``) with a dashed line at lambda = 1; ``split`` overlays within-file and
    between-file pairs."""
    colour = THINNED_COLOUR if label.lower().startswith("thinned") else UNTHINNED_COLOUR
    if not part or not part.get("lambdas"):
        n_tiles = (part or {}).get("n_tiles", 0)
        return empty_figure(label, f"No tile pairs: {n_tiles} eligible tile(s); at least 2 are needed.")
    lambdas = np.asarray(part["lambdas"], dtype=float)
    within = np.asarray(part.get("within_file") or [False] * lambdas.size, dtype=bool)
    edges = histogram_edges(lambdas, max_bins=bins_for(lambdas.size))
    if split:
        groups = (("Within file", within, WITHIN_COLOUR), ("Between files", ~within, BETWEEN_COLOUR))
    else:
        groups = (("All pairs", np.ones(lambdas.size, dtype=bool), colour),)
    fig = go.Figure()
    strip = lambdas.size < STRIP_BELOW
    if strip:      # too few pairs for a histogram: every pair as a point, with its box
        for name, mask, group_colour in groups:
            fig.add_box(x=lambdas[mask], name=f"{name} ({int(mask.sum()):,})", marker_color=group_colour,
                        boxpoints="all", jitter=0.6, pointpos=0, orientation="h", fillcolor="rgba(0,0,0,0)",
                        hovertemplate="λ %{x:.3f}<extra>" + name + "</extra>")
    else:
        centres = (edges[:-1] + edges[1:]) / 2
        width = float(edges[1] - edges[0])
        for name, mask, group_colour in groups:
            counts, _ = np.histogram(lambdas[mask], bins=edges)
            fig.add_bar(x=centres, y=counts, width=width, name=f"{name} ({int(mask.sum()):,})",
                        marker_color=group_colour, opacity=0.65 if split else 0.9,
                        hovertemplate="λ %{x:.2f}<br>%{y} pairs<extra>" + name + "</extra>")
    fig.add_vline(x=1.0, line_dash="dash", line_color="#c00", line_width=1.5,
                  annotation_text="λ = 1", annotation_position="top right", annotation_font_color="#c00")
    summary = part.get("summary") or {}
    title = f"{label}: {summary.get('n_pairs', lambdas.size):,} tile pairs"
    fig.update_layout(
        title=dict(text=title + (" (each pair shown)" if strip else ""), x=0.02, font=dict(size=15)),
        barmode="overlay", bargap=0.02, height=320, template="plotly_white",
        margin=dict(l=55, r=20, t=50, b=45), legend=dict(x=0.99, y=0.97, xanchor="right", yanchor="top",
                                                          bgcolor="rgba(255,255,255,0.75)", font=dict(size=11)),
        showlegend=split, xaxis_title="dissimilarity λ", yaxis_title="" if strip else "tile pairs")
    if strip:
        fig.update_yaxes(showticklabels=split)
    fig.update_xaxes(range=[0, float(edges[-1])])
    return fig


def _fmt(value, digits: int = 3) -> str:
    if value is None:
        return "–"
    if isinstance(value, (int, np.integer)):
        return f"{int(value):,}"
    return f"{float(value):.{digits}f}"


SUMMARY_ROWS = (("n_pairs", "Tile pairs"), ("mean", "Mean λ"), ("sd", "SD"), ("median", "Median λ"),
                ("p95", "95th percentile"), ("fraction_above_1", "Fraction λ > 1"))


def summary_table(part: dict | None, *, split: bool = False, id=None) -> html.Table:
    """Summary numbers of one self-similarity part (all pairs; within / between files when ``split``)."""
    part = part or {}
    columns = [("All pairs", part.get("summary"))]
    if split:
        columns += [("Within file", part.get("summary_within")), ("Between files", part.get("summary_between"))]
    header = html.Thead(html.Tr([html.Th("")] + [html.Th(name, className="text-end") for name, _ in columns]))
    rows = [html.Tr([html.Th("Tiles", className="fw-normal")]
                    + [html.Td(_fmt(part.get("n_tiles", 0)) if k == 0 else "", className="text-end")
                       for k in range(len(columns))])]
    for key, title in SUMMARY_ROWS:
        cells = []
        for _, summary in columns:
            value = (summary or {}).get(key)
            if key == "fraction_above_1" and value is not None:
                cells.append(html.Td(f"{100 * value:.1f} %", className="text-end"))
            else:
                cells.append(html.Td(_fmt(value), className="text-end"))
        rows.append(html.Tr([html.Th(title, className="fw-normal")] + cells))
    return html.Table([header, html.Tbody(rows)], id=id, className="table table-sm small mb-0 nanoorg-summary")


# ---------------------------------------------------------------------------------------------
# results grid

def _number_column(field: str, header: str, *, digits: int = 3, width: int = 105, tooltip: str | None = None,
                   hide: bool = False) -> dict:
    return {
        "field": field, "headerName": header, "type": "numericColumn", "filter": False,
        "valueFormatter": {"function": f"params.value == null ? '–' : Number(params.value).toFixed({digits})"},
        "comparator": {"function": "nanoorgNullsLast"}, "minWidth": width, "maxWidth": width + 60,
        "headerTooltip": tooltip or header, "hide": hide,
    }


def _percent_column(field: str, header: str, *, tooltip: str) -> dict:
    """A fraction (0-1) shown as a percentage with one decimal ('12.5 %')."""
    column = _number_column(field, header, width=105, tooltip=tooltip)
    column["valueFormatter"] = {"function": "params.value == null ? '–' : (100 * Number(params.value)).toFixed(1) + ' %'"}
    return column


def _pairs_column(field: str) -> dict:
    return {"field": field, "headerName": "Pairs", "type": "numericColumn", "filter": False,
            "valueFormatter": {"function": "params.value == null ? '–' : Number(params.value).toLocaleString('en')"},
            "minWidth": 95, "maxWidth": 130, "headerTooltip": "tile pairs compared"}


def _lambda_group(kind: str, target: int, *, first: bool) -> dict:
    label = f"Thinned ({target} loc/µm²)" if kind == "thinned" else "Unthinned"
    mean = _number_column(f"{kind}_mean", "Mean λ", tooltip=f"{label}: mean dissimilarity λ over tile pairs")
    if first:
        mean["sort"] = "asc"
    children = [
        mean,
        _number_column(f"{kind}_sd", "SD", tooltip=f"{label}: standard deviation of λ"),
        _percent_column(f"{kind}_fraction_above_1", "% pairs λ > 1",
                        tooltip=f"{label}: percentage of tile pairs with λ > 1 (significantly different)"),
        _pairs_column(f"{kind}_n_pairs"),
    ]
    if kind == "thinned":
        children.append(_number_column(
            "thinned_sd_repeats", "SD over thinnings",
            tooltip=f"{label}: when the bank stores several independent thinnings of every tile, λ is averaged "
                    "over them; this is the spread of the mean λ from one thinning to the next (– for one)"))
    return {"headerName": label, "marryChildren": True, "headerClass": f"nanoorg-group-{kind}", "children": children}


def result_columns(metric: str = "thinned", target: int = 30) -> list[dict]:
    """AG Grid column definitions: title, the chosen lambda group first (sorted ascending), the other
    group, then the metadata columns."""
    other = "unthinned" if metric == "thinned" else "thinned"
    text = {"filter": "agTextColumnFilter", "minWidth": 110}
    return [
        {"field": "title", "headerName": "Dataset", "cellRenderer": "NanoorgSimilarLink", "pinned": "left",
         "minWidth": 220, "filter": "agTextColumnFilter", "tooltipField": "title"},
        _lambda_group(metric, target, first=True),
        _lambda_group(other, target, first=False),
        {"field": "protein", "headerName": "Protein", **text},
        {"field": "cell_type", "headerName": "Cell type", **text},
        {"field": "modality", "headerName": "Modality", **text},
        {"field": "fluorophore", "headerName": "Fluorophore", **text},
        {"field": "software", "headerName": "Software", **text},
        {"field": "uniprot_id", "headerName": "UniProt", **text},
        {"field": "tags", "headerName": "Tags", **text},
        _number_column("density", "Density", digits=1, tooltip="localisations per µm² inside the ROIs"),
        {"field": "n_tiles", "headerName": "Tiles", "type": "numericColumn", "minWidth": 80, "maxWidth": 110},
        {"field": "visibility", "headerName": "Visibility", "minWidth": 100},
    ]


# ---------------------------------------------------------------------------------------------
# Compare page

def _short(title: str, dataset_id, limit: int = 38) -> str:
    title = title if len(title) <= limit else title[:limit - 1] + "…"
    return f"{title} (#{dataset_id})"


def compare_heatmap(result: dict, *, kind: str = "thinned") -> go.Figure:
    """Heat map of the mean lambda matrix in hierarchical order (diagonal: self-similarity mean)."""
    order = result["order"]
    labels = [_short(result["titles"][k], result["dataset_ids"][k]) for k in order]
    matrix = np.array(result[f"{kind}_mean"], dtype=float)[np.ix_(order, order)]
    sds = np.array(result[f"{kind}_sd"], dtype=float)[np.ix_(order, order)]
    text = [["–" if not np.isfinite(v) else f"{v:.2f}" for v in row] for row in matrix]
    hover = [[f"{labels[i]}<br>vs {labels[j]}<br>mean λ {text[i][j]} ± {sds[i, j]:.2f}" if np.isfinite(matrix[i, j])
              else f"{labels[i]}<br>vs {labels[j]}<br>no comparable tiles" for j in range(len(order))]
             for i in range(len(order))]
    title = (f"Mean λ, thinned to {result['target']} loc/µm²" if kind == "thinned" else "Mean λ, unthinned")
    fig = go.Figure(go.Heatmap(
        z=np.where(np.isfinite(matrix), matrix, None), x=labels, y=labels, text=text, texttemplate="%{text}",
        customdata=hover, hovertemplate="%{customdata}<extra></extra>", colorscale="Viridis", reversescale=True,
        zmin=0, colorbar=dict(title=dict(text="mean λ"))))
    size = max(380, 60 * len(order) + 200)
    fig.update_layout(title=dict(text=title + " (hierarchical order; diagonal: self-similarity)", x=0.02,
                                 font=dict(size=15)),
                      template="plotly_white", height=size, margin=dict(l=10, r=10, t=60, b=10))
    fig.update_yaxes(autorange="reversed", automargin=True)
    fig.update_xaxes(automargin=True, tickangle=-35)
    return fig


def self_similarity_overlay(result: dict, *, kind: str = "thinned") -> go.Figure:
    """Self-similarity distributions of the compared datasets overlaid (fraction of pairs per bin)."""
    order = result["order"]
    parts = [(result["dataset_ids"][k], result["titles"][k], (result["self"].get(str(result["dataset_ids"][k])) or {})
              .get(kind) or {}) for k in order]
    values = [np.asarray(p.get("lambdas") or [], dtype=float) for _, _, p in parts]
    pooled = np.concatenate(values) if values else np.zeros(0)
    title = (f"Self-similarity, thinned to {result['target']} loc/µm²" if kind == "thinned"
             else "Self-similarity, unthinned")
    if pooled.size == 0:
        return empty_figure(title, "None of these datasets has two comparable tiles.")
    edges = histogram_edges(pooled, max_bins=bins_for(min(v.size for v in values if v.size)))
    centres = (edges[:-1] + edges[1:]) / 2
    fig = go.Figure()
    for k, ((dataset_id, name, part), lambdas) in enumerate(zip(parts, values)):
        if lambdas.size == 0:
            continue
        counts, _ = np.histogram(lambdas, bins=edges)
        fig.add_scatter(x=centres, y=counts / lambdas.size, mode="lines", line=dict(shape="hvh", width=2,
                                                                                    color=PALETTE[k % len(PALETTE)]),
                        name=_short(name, dataset_id, 30) + f" · mean {lambdas.mean():.2f}",
                        hovertemplate="λ %{x:.2f}: %{y:.1%} of pairs<extra>" + _short(name, dataset_id, 30) + "</extra>")
    fig.add_vline(x=1.0, line_dash="dash", line_color="#c00", line_width=1.5, annotation_text="λ = 1",
                  annotation_font_color="#c00")
    n_lines = len(fig.data)
    fig.update_layout(title=dict(text=title, x=0.02, font=dict(size=15)), template="plotly_white",
                      height=360 + 22 * n_lines, margin=dict(l=55, r=20, t=50, b=45 + 22 * n_lines),
                      xaxis_title="dissimilarity λ", yaxis_title="fraction of tile pairs", yaxis_tickformat=".0%",
                      legend=dict(font=dict(size=11), orientation="h", x=0, y=-0.18, yanchor="top"))
    fig.update_xaxes(range=[0, float(edges[-1])])
    return fig
