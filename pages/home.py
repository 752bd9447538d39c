"""Home page: welcome message, what nano-org does, links to get started."""

from __future__ import annotations

import dash
from dash import dcc, html
from flask_login import current_user

from databank import datasets

dash.register_page(__name__, path="/", name="Home", title="nano-org", order=0,
                   description="A databank of single-molecule localisation microscopy data, "
                               "searchable by statistical similarity.")


def _card(title: str, text: str, href: str, label: str, card_id: str, dash_page: bool = True):
    link_class = "btn btn-primary btn-sm"
    link = (dcc.Link(label, href=href, className=link_class, id=card_id) if dash_page
            else html.A(label, href=href, className=link_class, id=card_id))
    return html.Div(html.Div([
        html.H2(title, className="h5 card-title"),
        html.P(text, className="card-text small flex-grow-1"),
        html.Div(link),
    ], className="card-body d-flex flex-column"), className="card h-100 shadow-sm")


def layout(**_query):
    signed_in = current_user.is_authenticated
    _, n_readable = datasets.list_datasets(current_user, limit=0)
    who = "you can open" if signed_in else "in the public databank"
    cards = [
        _card("Browse the Databank", "Sort, filter and search the datasets by protein, cell type, "
              "imaging modality and any other metadata; open one to see its files, analyses and similar datasets.",
              "/databank", "Open the Databank", "home-databank"),
        _card("Read the User Guide", "Every page explained, and how to read dissimilarity scores, "
              "self-similarity histograms and cluster analyses.", "/guide", "Open the User Guide", "home-guide"),
    ]
    if signed_in:
        cards.append(_card("Upload your data", "Add detection files with their polygon regions of interest and "
                           "describe the experiment; keep the dataset private, share it, or make it public.",
                           "/upload", "Upload Data", "home-upload"))
        cards.append(_card("Your account", "Create personal API tokens to query nano-org from scripts.",
                           "/account", "Open your account", "home-account"))
    else:
        cards.append(_card("Join nano-org", "Register to upload and share your own datasets and to "
                           "download data files, gridded tiles, images and ROIs.",
                           "/register", "Register", "home-register", dash_page=False))
        cards.append(_card("Already registered?", "Log in to upload data and to see the datasets shared with you.",
                           "/login", "Log In", "home-login", dash_page=False))
    return html.Div([
        html.Section([
            html.H1("Welcome to nano-org", className="display-6 fw-semibold"),
            html.P([
                "nano-org is a curated, functional databank of ", html.Strong("single-molecule localisation "
                "microscopy (SMLM)"), " data: the nanoscale distributions of proteins in cells. Its datasets are "
                "searchable by their ", html.Strong("statistical similarity"), ", so you can relate nanoscale "
                "organisation between proteins, cell types and conditions: spatial nano-omics."], className="lead"),
            html.P([html.Span(f"{n_readable}", id="home-count", className="fw-semibold"),
                    f" dataset{'s' if n_readable != 1 else ''} {who}."], className="text-body-secondary"),
        ], className="nanoorg-hero p-4 mb-4 rounded-3"),
        html.Div([html.Div(card, className="col-sm-6 col-lg-3") for card in cards], className="row g-3 mb-4"),
        html.Section([
            html.H2("How the similarity search works", className="h4"),
            html.Ol([
                html.Li(["Each detection file comes with polygon regions of interest (drawn in Fiji around cells). "
                         "The polygons are covered with ", html.Strong("3 × 3 µm tiles"), "."]),
                html.Li(["Each tile is divided into 30 nm bins; the distribution of localisation counts per bin "
                         "(its cumulative frequency histogram) is the tile's fingerprint."]),
                html.Li(["Two tiles are compared with a Kolmogorov-Smirnov test; the dissimilarity ",
                         html.Strong("λ"), " is 0 for identical tiles and above 1 when they differ "
                         "significantly (5 % level)."]),
                html.Li(["Datasets are compared by the mean and standard deviation of λ over pairs of their tiles, "
                         "before and after ", html.Strong("thinning"), " to a common density, so that "
                         "organisation can be compared independently of density."]),
            ]),
            html.P([dcc.Link("Read how to interpret the scores", href="/guide/similarity"), " · ",
                    dcc.Link("Self-similarity histograms", href="/guide/self-similarity"), " · ",
                    dcc.Link("Drawing ROIs in Fiji", href="/guide/fiji-roi")]),
        ]),
    ], id="home-page")
