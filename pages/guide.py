"""The User Guide, in the app: /guide (every page explained) and four interpretation guides.

  /guide                   overview: home, databank, dataset details, data files, viewer, upload,
                           visibility, accounts, contact
  /guide/similarity        reading the similarity-search results (lambda, thinned / unthinned)
  /guide/self-similarity   reading the self-similarity histograms (within / between files)
  /guide/fiji-roi          drawing a polygon ROI in Fiji and naming the CSV
  /guide/api               the JSON API, tokens and downloads, with curl examples
"""

from __future__ import annotations

import dash
from dash import dcc, html
from flask import current_app, request

from databank.core import settings_of
from databank.metadata import METADATA_FIELDS, DSTORM_ONLY

GUIDE_PAGES = [
    ("/guide", "User Guide", "Overview of every page"),
    ("/guide/similarity", "Similarity search", "Interpreting dissimilarity scores"),
    ("/guide/self-similarity", "Self-similarity", "Interpreting self-similarity histograms"),
    ("/guide/fiji-roi", "Polygon ROIs in Fiji", "How to create a polygon region in Fiji"),
    ("/guide/api", "API", "Programmatic access"),
]


def _md(text: str, **kwargs):
    return dcc.Markdown(text, className="nanoorg-md", link_target="_self", **kwargs)


def _section(section_id: str, title: str, *children):
    return html.Section([html.H2(title, id=section_id, className="h4 mt-4")] + list(children))


def _figure(name: str, caption: str):
    """A screenshot of the demo bank (assets/guide/, made by docs/make_guide_figures.py) with its caption."""
    return html.Figure([
        html.Img(src=f"/assets/guide/{name}", alt=caption, className="img-fluid border rounded"),
        html.Figcaption(caption, className="figure-caption small mt-1"),
    ], className="figure d-block my-3", id=f"guide-figure-{name.rsplit('.', 1)[0].replace('_', '-')}")


def _frame(current: str, title: str, lead: str, body, toc=None):
    nav = html.Nav([
        html.H2("User Guide", className="h6 text-uppercase text-body-secondary"),
        html.Ul([html.Li(dcc.Link(label, href=path, className="nav-link px-0" + (" active fw-semibold"
                                                                                  if path == current else "")),
                         className="nav-item") for path, label, _ in GUIDE_PAGES],
                className="nav flex-column mb-3"),
    ] + ([html.H2("On this page", className="h6 text-uppercase text-body-secondary mt-3"),
          html.Ul([html.Li(html.A(label, href=f"#{anchor}", className="nav-link px-0 py-1 small"))
                   for anchor, label in toc], className="nav flex-column")] if toc else []),
        className="nanoorg-guide-nav")
    return html.Div([
        html.Div(nav, className="col-md-3 col-lg-2 mb-3"),
        html.Div([html.H1(title, className="h2"), html.P(lead, className="lead")] + list(body),
                 className="col-md-9 col-lg-8 nanoorg-guide"),
    ], className="row", id="guide-page")


def _dash_register(suffix: str, path: str, title: str, layout):
    dash.register_page(f"{__name__}{suffix}", path=path, name=title, title=f"{title} · nano-org", layout=layout,
                       order=50)


# ================================================================================================
# /guide

def _metadata_table():
    rows = []
    for field in METADATA_FIELDS:
        notes = []
        if field.required:
            notes.append("required")
        if field.name in DSTORM_ONLY:
            notes.append("asked for dSTORM")
        if field.choices:
            notes.append("one of " + ", ".join(field.choices))
        if field.help and field.name not in DSTORM_ONLY:
            notes.append(field.help)
        rows.append(html.Tr([html.Td(field.label), html.Td(html.Code(field.name)), html.Td("; ".join(notes))]))
    return html.Table([html.Thead(html.Tr([html.Th("Form field"), html.Th("Key (API, META.json)"),
                                           html.Th("Notes")])), html.Tbody(rows)],
                      className="table table-sm table-striped small", id="guide-metadata-fields")


OVERVIEW_TOC = [
    ("about", "About nano-org"), ("home", "Home page"), ("databank", "Databank"),
    ("dataset-details", "Dataset details"), ("data-files", "Data files"), ("viewer", "File viewer and analysis"),
    ("similarity", "Similarity results"), ("compare", "Compare and search"), ("upload", "Uploading data"), ("visibility", "Visibility and sharing"),
    ("account", "Your account"), ("contact", "Contact and support"),
]


def overview_layout(**_query):
    contact = current_app.config.get("NANOORG_CONTACT_EMAIL")
    contact_text = ([html.A(contact, href=f"mailto:{contact}", id="guide-contact-email"),
                     " or use the ", dcc.Link("contact form", href="/contact", id="guide-contact-form")] if contact else
                    ["use the ", dcc.Link("contact form", href="/contact", id="guide-contact-form"),
                     " (this instance has no public contact address; messages are stored for the administrators, "
                     "who answer by email)"])
    body = [
        _section("about", "About nano-org", _md("""
nano-org is a publicly accessible, curated and functional databank of **single-molecule localisation
microscopy (SMLM)** data: the nanoscale distributions of proteins in cells. It is searchable by comparing the
**statistical similarity** of its datasets, so you can relate nanoscale architectures between proteins, cell
types or conditions (*spatial nano-omics*).

A **dataset** is one entry of the databank: a set of detection files (localisation tables, one per cell or
field of view) that share the same metadata, each with polygon regions of interest (ROIs). The ROIs are covered
with 3 × 3 µm **tiles**; tiles are what the statistics, the similarity search and the self-similarity
histograms are computed on.
""")),
        _section("home", "Home page", _md("""
- **nano-org** (left of the navigation bar, on every page) takes you back to the home page.
- **User Guide** opens this guide. **Databank** opens the table of datasets. **Compare** compares chosen
  datasets with one another.
- **Log In** / **Register** when you are signed out. Once signed in you see **Upload Data**, your **user name**
  (your account page, with API tokens) and **Log Out**.
- The **welcome message** says what nano-org does and links to the places to start.
- The **footer** holds the legal notice (datasets belong to their uploaders, under their licences; no warranty)
  and the contact link.
""")),
        _section("databank", "Databank", _md("""
The Databank lists every dataset you may open: the public ones for everybody, plus, once you are signed in,
your own private datasets and those shared with you.

- **Table headings**: click a heading to sort by that column (click again to reverse); use the column filters
  to narrow the list (e.g. *Protein contains EGFR*, *Density greater than 50*).
- **Search bar**: every word you type must appear somewhere in the dataset's metadata (title, protein, cell
  type, fluorophore, tags, experimental details, owner...), in any case.
- **Columns**: title, protein, cell type, modality, localisation software, fluorophore, UniProt ID, tags, owner,
  visibility, number of files, localisations, mean localisation density (localisations per µm² inside the
  ROIs), number of tiles and creation date.
- **Datasets**: click a row to open its Dataset Details page.
"""), _figure("databank.png", "The Databank of the demo bank: sortable, filterable columns and the search bar.")),
        _section("dataset-details", "Dataset details", _md("""
- **Dataset links**: the licence, publication, repository and raw-data links the uploader provided.
- **Dataset table**: all metadata submitted with the upload (modality, antibodies for dSTORM, software,
  fluorophore, protein and UniProt ID, cell type, tags, experimental details, DOI, contact, drift and blink
  correction, effective pixel size), with the owner and the visibility.
- The owner can edit the metadata, change the visibility or delete the dataset.
"""), _figure("dataset.png", "A dataset page: links, the metadata table, dataset downloads and the Data Files "
                             "table with each file's statistics.")),
        _section("data-files", "Data files", _md("""
One row per detection file, with its statistics:

| column | meaning |
|---|---|
| localisations | rows read from the file (rows with missing or non-finite coordinates are dropped and counted) |
| localisation density | localisations inside the ROIs per µm² of ROI area |
| coverage | fraction of the 30 nm bins of the file's tiles that hold at least one localisation |
| localisation precision | median lateral precision (nm) from the file's uncertainty column, when it has one |
| NeNA precision | precision (nm) estimated from the data alone when the file has frames: the distance from each localisation to its nearest neighbour in the next frame follows p(d) = d/(2σ²)·exp(−d²/(4σ²)) for repeated localisations of one molecule (Endesfelder et al. 2014); σ is fitted (with a linear term for unrelated neighbours) to the distances up to 150 nm inside the ROIs |
| ROIs / tiles | polygons found for the file (or *auto*: the convex hull of all localisations when no ROI file was given) and 3 × 3 µm tiles inside them |

**Downloads** (signed-in users, for datasets they may read): the original files as uploaded, the **gridded**
data (one CSV per kept 3 × 3 µm tile, named by file, ROI and tile, with columns `x [nm]`, `y [nm]`, and
`manifest.csv` listing every tile with its origin, count and kept/dropped), PNG density images with the ROIs drawn on
them, and the **ROI** files (`X,Y` vertices in µm, as from Fiji). Each file also has its own download link.
Anonymous visitors can browse and analyse public datasets but not download them.
""")),
        _section("viewer", "File viewer and analysis", _md("""
**View data file and analysis** opens one detection file (`/file/<id>`): its statistics, a density image of
all its localisations with the ROI polygons on top, and the analysis panel.

- **The image.** Zoom and pan with the mouse: the image is re-rendered for the region you look at, and shows
  the individual localisations once few enough are in view. *Colour by* density, frame or precision (when the
  file has them); switch on the **3 × 3 µm tiles** to see which parts of the ROIs the similarity search uses,
  and the **clusters** found by DBSCAN. *Export PNG* saves the current view.
- **Region.** Choose what to analyse: an ROI, one tile, or the whole file, or draw a box on the plot with the
  rectangle tool of the plot's toolbar.
- **DBSCAN.** A localisation with at least *minPts* localisations (itself included) within *eps* nm seeds a
  cluster; localisations reachable from it join; the rest is noise. Defaults eps = 100 nm and minPts = 10;
  typical SMLM values are eps = 20-100 nm and minPts = 3-20. Results: number of clusters, clusters per µm²,
  percentage of localisations in clusters, localisations per cluster, cluster area (convex hull), equivalent
  radius √(area/π) and density, with a histogram. Smaller eps or larger minPts find fewer, denser clusters:
  compare datasets with the **same** parameters. The **Parameter sweep** tab runs DBSCAN over a grid of eps
  and minPts to show how robust a choice is (click a cell to set the sliders).
- **Ripley.** K(r) counts neighbours within distance r, corrected for the region's edges (*Ripley isotropic*,
  *guard zone* or *none*); L(r) = √(K(r)/π) and H(r) = L(r) − r. For complete spatial randomness (CSR)
  H(r) = 0; **H(r) > 0 means clustering** at scale r, H(r) < 0 dispersion. The radius of the maximum of H
  (*r at H max*) indicates the cluster scale but is **not** the cluster radius (it lies roughly between the
  radius and the diameter); H max indicates the strength of clustering. *r max* and *step* set the radii.
  **Compute envelope** simulates CSR patterns with the same number of points in the same region: H(r) outside
  the envelope departs from randomness beyond chance.
- **Downloads** (tab): the cluster table, the cluster label of every localisation and the Ripley curve as
  CSV, with header lines (starting with `#`) recording the file, its checksum, the region and the parameters.
"""), _figure("viewer.png", "The file viewer on a simulated demo file: the density image with its ROI and "
                            "DBSCAN cluster labels, and the analysis panel.")),
        _section("similarity", "Similarity results and self-similarity", _md("""
The dataset page also shows the **self-similarity histograms** (thinned and unthinned: how heterogeneous the
dataset is) and the **similarity search results**: the dataset compared with every other dataset you may read,
as mean ± SD of the dissimilarity λ, thinned and unthinned, with metadata filters. Registered users can
download the results. See [Interpreting dissimilarity scores](/guide/similarity) and
[Interpreting self-similarity histograms](/guide/self-similarity).
""")),
        _section("compare", "Compare and search", _md("""
- **Compare** (navigation bar) takes 2 to 10 datasets you may read and shows a heat map of the mean
  dissimilarity λ between every pair (thinned or unthinned), ordered by hierarchical clustering so that
  similar datasets sit together; the diagonal holds each dataset's self-similarity. Their self-similarity
  distributions are overlaid beside it.
- **[Search with your own file](/search)** (signed-in users) ranks every dataset you may read by similarity to
  one detection file of yours (with its ROI files). The file is analysed like an upload but **not** stored.
""")),
        _section("upload", "Uploading data", _md("""
Signed-in users find **Upload Data** in the navigation bar. Fill in the form as thoroughly as you can: good
metadata makes your dataset easier to find and makes the similarity filters useful.

**Files.** Detection files: `.csv`, `.h5` or `.hdf5` (ThunderSTORM, SMAP, Picasso, DECODE, RapidSTORM exports
and plain `x,y` CSV in nm). ROI files: `.csv` named **`{DETECTION_FILE_NAME}_ROI*.csv`**, e.g.
`experiment_ROI_1.csv` and `experiment_ROI_2.csv` are two polygons for `experiment.csv`. See
[How to create a polygon region in Fiji](/guide/fiji-roi). Large files are sent in chunks with a progress bar;
an interrupted upload can resume. After the upload the files are read, tiled and fingerprinted (a progress bar
shows each file). The dataset appears only when **every** file passed; otherwise nothing is kept and the
message names the file, the row or column at fault and what to change.

nano-org analyses fixed-cell data; live-cell datasets cannot be analysed meaningfully.

The form fields:
"""), _metadata_table()),
        _section("visibility", "Visibility and sharing", _md("""
| visibility | who can see and analyse it | who can download it |
|---|---|---|
| **private** | only you | only you |
| **shared** | you and the users you name under *Share with* | the same users |
| **public** | everybody, including anonymous visitors | every signed-in user |

You keep all analysis features on private datasets. Only the owner can edit, re-share or delete a dataset. A
private dataset never appears in anybody else's databank, search results or API answers, and its address
answers *not found* to them.
""")),
        _section("account", "Your account", _md("""
Click your user name in the navigation bar: it shows your account details and lets you create **API tokens**
for scripts (the token is shown once; revoke it when you no longer need it). See [API](/guide/api).
After several wrong passwords in a row, logging in to that account is paused for a few seconds, then longer.
""")),
        _section("contact", "Contact and support",
                 html.P(["If you need help or have a question, "] + contact_text + ["."])),
    ]
    return _frame("/guide", "User Guide", "nano-org, page by page.", body, OVERVIEW_TOC)


# ================================================================================================
# /guide/similarity

def similarity_layout(**_query):
    settings = settings_of()
    mode, targets, default = settings.lambda_mode, settings.thinning_targets, settings.default_thinning
    body = [_md("""
The **Similarity Search Results** table compares one dataset (the *query*) with every other dataset you may
read. Each row is one dataset, with its mean dissimilarity **λ̄** and standard deviation, **thinned** and
**unthinned**. Lower λ̄ means more similar; the table is sorted by the thinned λ̄, most similar first.

"""), _figure("similarity_results.png", "Similarity search results on a demo dataset: the filters, the "
                "thinned and unthinned mean λ̄ with their SD for every other dataset, most similar first."), _md(f"""
### What is compared

1. Every ROI is covered with **3 × 3 µm tiles** (only tiles lying inside the polygon are used).
2. Each tile is divided into **30 nm bins**: 100 × 100 = 10 000 bins.
3. The number of localisations in each bin is counted. The **cumulative frequency histogram** of these counts
   (the fraction of bins holding 0, at most 1, at most 2 ... localisations) describes the tile's organisation:
   clustered proteins give many empty bins and a few crowded ones; randomly placed proteins give counts close
   to the average everywhere. It does not depend on where the cell is in the field, or on its orientation.
4. Two tiles are compared with the two-sample **Kolmogorov-Smirnov** (KS) statistic **D**: the largest
   distance between their two cumulative histograms (0 ≤ D ≤ 1).

### The dissimilarity λ

λ = D / D_crit, where D_crit = 1.358 × √((n + m) / (n·m)) is the KS critical value at the 5 % level for two
tiles of n and m bins (for two full tiles, n = m = 10 000 and D_crit ≈ 0.0192).

- **λ = 0**: the two tiles have identical count distributions.
- **λ > 1**: the tiles differ **significantly** (KS test at the 5 % level).
- **λ < 1**: the difference is not significant. This is *not* proof that the tiles are the same, but smaller
  values still rank datasets by similarity.
- Counts are whole numbers (many ties), which makes the test conservative: tiles drawn from the same process
  rarely exceed 1.

This instance computes λ in **{mode}** mode.{" In kolmogorov mode λ = √(n·m/(n+m)) × D, which is 1.358 times the critical-mode value; there 1 is not a 5 % threshold." if mode == "kolmogorov" else ""}

### Mean and standard deviation

For two datasets, λ is computed for pairs of their tiles (every file of each dataset contributes; when there are
very many pairs a fixed random sample of them is used). The table shows the **mean λ̄** and the **standard
deviation (SD)** over those pairs; the downloadable results add the median, the fraction of pairs with λ > 1
and the number of pairs.

- A low λ̄ with a small SD: the two datasets are consistently alike.
- A low λ̄ with a large SD: alike on average, but some regions differ (look at both datasets' self-similarity).
- Judge λ̄ against the query's own **self-similarity** λ̄: a dataset whose λ̄ with the query is close to the
  query's self-similarity is about as similar to it as the query is to itself.

### Thinned and unthinned

**Unthinned** scores use all localisations. They depend on localisation density: two datasets with the same
organisation but different labelling densities differ; sparse data, whose bins hold mostly 0 or 1
localisations, give smaller λ overall.

**Thinned** scores first reduce every tile to the same number of localisations, drawn at random: the target
density times the 9 µm² tile area ({" and ".join(f"{t} loc/µm² → {t * 9} localisations" for t in targets)}).
Tiles holding fewer localisations than the target are left out of the thinned scores. Thinned scores compare
organisation independently of density: use them when the two datasets' densities differ a lot.

**Why {default} (shown) and {max(targets)} loc/µm².** At 30 loc/µm² a tile keeps 270 localisations in 10 000
bins, so most bins hold 0 or 1 localisation: almost every dataset reaches that density (few tiles are lost),
but the thinned λ separates different organisations only weakly. At 100 loc/µm² (900 per tile) different
organisations separate better, but tiles and whole datasets sparser than 100 loc/µm² drop out. Look at 30 for
the widest comparison and at 100 when both datasets are dense enough.

If a difference appears **unthinned but not thinned**, the datasets differ mainly in density, not in how the
protein is organised.

### Evidence for the default: which ranking finds the same organisation?

Measured on simulated banks (`bench/thinning_evidence.py`): 3 organisation classes (random; small clusters,
σ 30 nm; large clusters, σ 80 nm) × 3 densities (60, 150, 400 loc/µm²) × 3 replicates, 27 datasets of 9 tiles,
5 banks. Each dataset is the query once; the others are ranked by λ̄. **Precision at k**: share of the k best
matches with the query's organisation (chance 0.31); **same density**: share with the query's density instead.

| ranking | precision at 3 | precision at 8 | same density in top 8 | datasets it can rank |
|---|---|---|---|---|
| unthinned | 0.48 ± 0.01 | 0.25 ± 0.00 | 1.00 ± 0.00 | 27 of 27 |
| thinned 30 loc/µm², 1 thinning | 0.67 ± 0.03 | 0.59 ± 0.01 | 0.47 ± 0.02 | 27 of 27 |
| thinned 30 loc/µm², 5 thinnings | 0.74 ± 0.03 | 0.60 ± 0.01 | 0.47 ± 0.02 | 27 of 27 |
| thinned 100 loc/µm², 1 thinning | 0.77 ± 0.01 | 0.45 ± 0.01 (at most 0.63) | 0.59 ± 0.02 | 18 of 27 |
| thinned 100 loc/µm², 5 thinnings | 0.78 ± 0.00 | 0.44 ± 0.01 (at most 0.63) | 0.59 ± 0.01 | 18 of 27 |
| thinned 30 loc/µm², file-level (Bernoulli) | 0.50 ± 0.02 | 0.43 ± 0.01 | 0.31 ± 0.02 | 27 of 27 |

- **Do not rank datasets of different densities by unthinned λ̄**: the closest matches are always the
  datasets of the same density, whatever their organisation.
- **30 loc/µm² is the default** because it ranks every dataset and finds the same organisation best over
  the whole bank. **100 loc/µm²** is as good or slightly better among datasets that are all denser than
  100 loc/µm² (precision at 3: 0.77 against 0.64-0.74), but the sparser third of the bank drops out entirely.
- Averaging **5 independent thinnings** sharpens the closest matches at 30 loc/µm² (precision at 3:
  0.67 → 0.74). An instance that stores 5 thinnings per tile (`NANOORG_THINNING_REPEATS=5`) averages every
  search over them and adds the column **SD over thinnings** (how much the mean λ moves from one thinning to
  the next); `nanoorg compare --repeats 5` does it for two files.

### Filters

The filter buttons restrict the comparison to datasets with the metadata you choose (protein, cell type,
condition tags...), before ranking. Datasets without comparable tiles (for example too sparse for the thinning
target) are listed last with no score.

### Example

A query dataset of a receptor shows, against another dataset, thinned λ̄ = 0.4 ± 0.2 and unthinned
λ̄ = 3.1 ± 1.0: after density normalisation the organisation is not significantly different; the unthinned
difference comes from labelling density.
""")]
    return _frame("/guide/similarity", "Interpreting dissimilarity scores",
                  "How to read the Similarity Search Results.", body)


# ================================================================================================
# /guide/self-similarity

def self_similarity_layout(**_query):
    body = [_md("""
The **self-similarity histograms** show how homogeneous a dataset is. Every pair of distinct tiles of the
dataset is compared exactly as in the [similarity search](/guide/similarity) (for very large datasets a fixed
random sample of pairs is used), and the histogram counts the pairs by their dissimilarity λ. There are two
histograms: **thinned** (left: every tile reduced to the same density) and **unthinned** (right: all
localisations). A vertical line marks **λ = 1**, the 5 % significance threshold.

### Reading the histogram

- **Mass close to 0 and almost nothing above 1**: the nanoscale organisation is the same in every region and
  cell of the dataset: homogeneous.
- **A broad distribution, or a tail above 1**: some regions differ significantly from others: heterogeneous.
  Check the fraction of pairs above 1 in the summary.
- **Only the unthinned histogram is broad**: the heterogeneity is mainly in localisation **density** (for
  example expression level or labelling efficiency varies between cells), not in organisation.
- **The thinned histogram is broad too**: the organisation itself varies (for example clustered in some cells,
  dispersed in others).

### Within and between files

Pairs of tiles from the **same file** (the same cell or field of view) show regional heterogeneity inside a
cell; pairs from **different files** show cell-to-cell variation. When between-file λ is clearly larger than
within-file λ, cells differ from one another more than regions within a cell do: the dataset mixes cells in
different states, or the preparation varied. When both are alike, the dataset is consistent across cells.

### Summary numbers

Number of tiles and of pairs, mean, standard deviation, median and fraction of pairs with λ > 1, for all
pairs and separately for within-file and between-file pairs.

### Using it as a baseline

The self-similarity mean is the natural yardstick for the [similarity search](/guide/similarity): another dataset
whose λ̄ with this one is close to this dataset's self-similarity λ̄ is as similar to it as it is to itself.
A dataset with a single tile has no pairs and therefore no histogram.
"""), _figure("self_similarity.png", "Self-similarity of a demo dataset: thinned (left) and unthinned (right) "
                                     "histograms with the line at λ = 1 and their summary tables.")]
    return _frame("/guide/self-similarity", "Interpreting self-similarity histograms",
                  "How heterogeneous is a dataset?", body)


# ================================================================================================
# /guide/fiji-roi

def fiji_layout(**_query):
    body = [_md("""
A polygon **region of interest (ROI)** tells nano-org which part of the field of view to analyse, typically the
outline of one cell (or the flat part of it). nano-org reads the vertices of the polygon from a CSV file with
header `X,Y`, **in micrometres**, in the same coordinate frame as the localisations.

### 1. Render the localisations as a calibrated image

Open your localisation file in Fiji and render it, e.g. with ThunderSTORM (*Plugins › ThunderSTORM › Import/Export
› Import results*, then *Visualization*). Check the calibration with *Image › Properties…*: **Unit of length** =
`micron`, **Pixel width** and **Pixel height** = the size of one rendered pixel in µm (camera pixel ÷
magnification, e.g. 100 nm ÷ 5 = 0.02 µm), origin 0,0. The image then shows coordinates in µm, with the same
origin (top-left) as the localisation table.

### 2. Draw the polygon

Pick the **Polygon selections** tool in the Fiji toolbar. Click the corners around the cell, keeping slightly
inside its edge, and double-click (or click the first point again) to close the polygon. Tiles of 3 × 3 µm
must fit **inside** the polygon, so a region smaller than about 9 µm² gives no tiles; avoid background and
the very edge of the cell.

### 3. List the coordinates

*Edit › Selection › Properties…*, tick **List coordinates**, OK. A *Results* table opens with columns **X** and
**Y** in calibrated units (µm).

### 4. Save as CSV

In the Results window, *File › Save As…* and save as a `.csv` file named after the detection file (step 5). The
file must start with the header `X,Y`; an extra unnamed index column written by Fiji is accepted:

```
X,Y
12.402,8.750
30.118,7.964
33.905,25.310
14.260,27.533
```

(The polygon closes itself: do not repeat the first vertex.)

### 5. Name it after the detection file

ROI files are matched to detection files by name: **`{DETECTION_FILE_NAME}_ROI*.csv`**, where
`DETECTION_FILE_NAME` is the detection file name without its extension. For the detection file
`COS7_tubulin_cell3.csv`, two polygons are `COS7_tubulin_cell3_ROI_1.csv` and `COS7_tubulin_cell3_ROI_2.csv`
(numbered in natural order: `_ROI_2` comes before `_ROI_10`). Upload the ROI files together with their detection
files; an ROI file that matches no detection file is refused before anything is uploaded.

### What nano-org checks

- **Units**: the polygon must overlap the localisations. If it does not in µm but does in nm or in rendered
  pixels, the unit found is used and reported as a warning; if no unit fits, the upload stops and says so.
- At least 3 vertices; a self-intersecting polygon is repaired; a polygon smaller than one tile (9 µm²) is
  reported because it cannot hold a tile.
- A detection file without ROI file is analysed inside the convex hull of all its localisations (ROI source
  *auto*): draw your own polygons for meaningful results.
""")]
    return _frame("/guide/fiji-roi", "How to create a polygon region in Fiji",
                  "Polygon ROIs for nano-org, step by step.", body)


# ================================================================================================
# /guide/api

def api_layout(**_query):
    base = request.host_url.rstrip("/") if request else "http://127.0.0.1:8050"
    body = [_md(f"""
nano-org answers JSON at `/api/...`. The API is **read-only**. Anonymous callers see public datasets; to see
your private datasets and those shared with you, send a personal **API token**.

### Tokens

Sign in, click your user name in the navigation bar and create a token under *API tokens*. The token
(`no_...`) is shown **once**: copy it then. Send it in the `Authorization` header:

```
curl -H "Authorization: Bearer no_XXXXXXXX" "{base}/api/datasets?protein=EGFR&limit=10"
```

Revoke a token on the same page when you no longer need it; a revoked or wrong token is answered with
**401**. Keep tokens secret: a token acts as you.

### Endpoints

| request | answer |
|---|---|
| `GET /api/datasets` | `{{"total": N, "offset": ..., "limit": ..., "datasets": [...]}}`: the datasets you may read, newest first |
| `GET /api/datasets/<id>` | one dataset: metadata, owner, visibility, counts and `files` with their statistics, ROI and tile counts |
| `GET /api/datasets/<id>/similar` | the similarity-search table of that dataset against the bank (`?target=30` or `100`, `sort=thinned` or `unthinned`, `limit`, `format=csv`, plus metadata filters as for the list) |
| `GET /api/datasets/<id>/self-similarity` | its self-similarity λ values and summaries, thinned and unthinned |

**Filters** for `/api/datasets`: any column or metadata key, e.g. `protein=EGFR`, `cell_type=COS-7`,
`modality=dSTORM`, `drift_correction=true` (text compares without regard to case). Add an operator after two
underscores: `protein__contains=EGF`, `title__startswith=SLP`, `density__gt=50`, `n_files__lte=3` (`__eq`,
`__ne`, `__contains`, `__startswith`, `__endswith`, `__gt`, `__gte`, `__lt`, `__lte`). Other parameters:
`q` (free text; every word must match some metadata), `sort` (comma-separated keys, `-` for descending, e.g.
`sort=-density,title`), `limit` (0-1000, default 100) and `offset`.

A dataset that does not exist and one you may not read both answer **404**; a bad parameter answers **400**
with a message. All errors are JSON: `{{"error": "...", "status": 404}}`.

### Examples

```
# public EGFR datasets in COS-7 cells
curl "{base}/api/datasets?protein=EGFR&cell_type=COS-7"

# free-text search, densest first, second page of 20
curl "{base}/api/datasets?q=tubulin%20AF647&sort=-density&limit=20&offset=20"

# one dataset with its files (your private one: send your token)
curl -H "Authorization: Bearer $NANOORG_TOKEN" "{base}/api/datasets/12"

# datasets most similar to dataset 12, thinned to 100 loc/µm², same protein only
curl "{base}/api/datasets/12/similar?target=100&protein=EGFR"
```

In Python:

```python
import requests
session = requests.Session()
session.headers["Authorization"] = "Bearer " + token
page = session.get("{base}/api/datasets", params={{"protein": "EGFR", "limit": 50}}).json()
for row in page["datasets"]:
    print(row["id"], row["title"], row["density"])
```

### Downloads

Signed-in users (or a token) can download what they may read; anonymous callers get **401**.

| request | answer |
|---|---|
| `GET /api/datasets/<id>/download/originals` | zip of the files as uploaded, with their ROI files |
| `GET /api/datasets/<id>/download/gridded` | zip, one CSV per kept 3 × 3 µm tile (`x [nm]`, `y [nm]`) and `manifest.csv` |
| `GET /api/datasets/<id>/download/images` | zip, one density PNG per file |
| `GET /api/datasets/<id>/download/rois` | zip of the ROI CSVs (`X,Y` in µm) |
| `GET /api/files/<file_id>/download` | one original file (`?kind=image` for its PNG) |
| `GET /api/datasets/<id>/similar?format=csv` | the similarity results as CSV |

```
curl -fOJ -H "Authorization: Bearer $NANOORG_TOKEN" "{base}/api/datasets/12/download/gridded"
```

The full list of keys of every answer is in `docs/API.md` of the source code.
""")]
    return _frame("/guide/api", "API", "Query nano-org from scripts.", body)


dash.register_page(__name__, path="/guide", name="User Guide", title="User Guide · nano-org", order=10,
                   layout=overview_layout)
_dash_register(".similarity", "/guide/similarity", "Interpreting dissimilarity scores", similarity_layout)
_dash_register(".self_similarity", "/guide/self-similarity", "Interpreting self-similarity histograms",
               self_similarity_layout)
_dash_register(".fiji_roi", "/guide/fiji-roi", "How to create a polygon region in Fiji", fiji_layout)
_dash_register(".api", "/guide/api", "API", api_layout)
