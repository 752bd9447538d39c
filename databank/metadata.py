"""Dataset metadata: the upload form's fields, in one place, validated the same way for the web
form, the command line (``nanoorg ingest --metadata META.json``) and the JSON API."""

from __future__ import annotations

import re
from dataclasses import dataclass

MODALITIES = ("PALM", "dSTORM", "PAINT", "other")
SOFTWARE = ("ThunderSTORM", "SMAP", "Picasso", "DECODE", "RapidSTORM", "other")
VISIBILITIES = ("private", "shared", "public")
# What each visibility means, said the same way on every page (the guide's table says it in full).
VISIBILITY_LABELS = {
    "private": "Private: only me",
    "shared": "Shared: me and the users I name (they can also download)",
    "public": "Public: everyone, anonymous visitors included, can browse and analyse; signed-in users can download",
}

# UniProt accession (uniprot.org/help/accession_numbers), optionally with an isoform suffix.
UNIPROT_RE = re.compile(r"^([OPQ][0-9][A-Z0-9]{3}[0-9]|[A-NR-Z][0-9]([A-Z][A-Z0-9]{2}[0-9]){1,2})(-\d+)?$")
DOI_RE = re.compile(r"^10\.\d{4,9}/\S+$")
EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
URL_RE = re.compile(r"^https?://\S+$")


@dataclass(frozen=True)
class Field:
    name: str           # key in META.json, the API and the database column
    label: str          # shown in the form and the metadata table
    kind: str = "text"  # text, longtext, choice, bool, float, email, doi, uniprot, url
    required: bool = False
    choices: tuple[str, ...] = ()
    help: str = ""
    max_length: int = 200   # characters after trimming; the form, the CLI and edits all refuse more


METADATA_FIELDS: tuple[Field, ...] = (
    Field("title", "Title", required=True, help="Unique, e.g. SLP76 mEos3.2 Jurkat on aCD3aCD28 5 min"),
    Field("modality", "Modality", "choice", required=True, choices=MODALITIES),
    Field("primary_antibody", "Primary antibody", help="dSTORM only"),
    Field("primary_antibody_ref", "Primary antibody reference number", help="dSTORM only"),
    Field("secondary_antibody", "Secondary antibody", help="dSTORM only"),
    Field("secondary_antibody_ref", "Secondary antibody reference number", help="dSTORM only"),
    Field("software", "Localisation software", "choice", required=True, choices=SOFTWARE),
    Field("fluorophore", "Fluorophore"),
    Field("protein", "Protein"),
    Field("uniprot_id", "UniProt ID", "uniprot", help="e.g. P11362", max_length=32),
    Field("cell_type", "Cell type"),
    Field("tags", "Other tags", help="comma-separated, e.g. condition, treatment", max_length=500),
    Field("experimental_details", "Experimental details", "longtext", max_length=5000),
    Field("doi", "DOI", "doi", help="e.g. 10.1038/s41592-022-01750-6"),
    Field("contact_email", "Contact email", "email", max_length=254),
    Field("raw_data_url", "Raw data link", "url", max_length=500),
    Field("drift_correction", "Drift correction", "bool"),
    Field("blink_correction", "Blink correction", "bool"),
    Field("pixel_size_nm", "Effective pixel size (nm)", "float", help="e.g. 100"),
    Field("licence_url", "Licence link", "url", max_length=500),
    Field("publication_url", "Publication link", "url", max_length=500),
    Field("repository_url", "Repository link", "url", max_length=500),
)
FIELDS_BY_NAME = {field.name: field for field in METADATA_FIELDS}
DSTORM_ONLY = ("primary_antibody", "primary_antibody_ref", "secondary_antibody", "secondary_antibody_ref")
TEXT_SEARCH_FIELDS = tuple(f.name for f in METADATA_FIELDS if f.kind not in ("bool", "float"))
# long free text: in a dataset's own record, left out of lists (the databank table, GET /api/datasets)
LONG_TEXT_FIELDS = tuple(f.name for f in METADATA_FIELDS if f.kind == "longtext")


class MetadataError(ValueError):
    """Invalid metadata; ``errors`` maps field name -> message."""

    def __init__(self, errors: dict[str, str]):
        self.errors = errors
        super().__init__("; ".join(f"{FIELDS_BY_NAME[k].label if k in FIELDS_BY_NAME else k}: {v}"
                                   for k, v in errors.items()))


def _as_bool(value) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes", "on", "y")
    return bool(value)


def _clean_one(field: Field, value, errors: dict[str, str]):
    if field.kind == "bool":
        return _as_bool(value)
    if value is None or (isinstance(value, str) and not value.strip()):
        if field.required:
            errors[field.name] = "is required"
        return None
    if field.kind == "float":
        try:
            number = float(value)
        except (TypeError, ValueError):
            errors[field.name] = f"'{value}' is not a number"
            return None
        if not number > 0:
            errors[field.name] = "must be a positive number of nanometres"
            return None
        return number
    text = str(value).strip()
    if len(text) > field.max_length:
        errors[field.name] = f"is {len(text):,} characters long; at most {field.max_length:,} are allowed"
        return None
    checks = {
        "choice": (lambda t: t in field.choices, f"must be one of {', '.join(field.choices)}"),
        "uniprot": (lambda t: UNIPROT_RE.match(t), "is not a UniProt accession (e.g. P11362 or Q9Y6K9-2)"),
        "doi": (lambda t: DOI_RE.match(t), "is not a DOI (e.g. 10.1038/s41592-022-01750-6, without https://doi.org/)"),
        "email": (lambda t: EMAIL_RE.match(t), "is not an email address"),
        "url": (lambda t: URL_RE.match(t), "must start with http:// or https://"),
    }
    if field.kind == "doi":
        text = re.sub(r"^(https?://(dx\.)?doi\.org/|doi:\s*)", "", text, flags=re.I)
    if field.kind in checks:
        ok, message = checks[field.kind]
        if not ok(text):
            errors[field.name] = message
            return None
    return text


def clean_metadata(raw: dict, *, partial: bool = False) -> dict:
    """Validate and normalise metadata. Unknown keys are an error (they are usually typos).

    With ``partial=True`` (editing) only the given keys are checked. Raises MetadataError.
    """
    errors: dict[str, str] = {}
    unknown = sorted(set(raw) - set(FIELDS_BY_NAME))
    for key in unknown:
        errors[key] = f"unknown field (accepted: {', '.join(FIELDS_BY_NAME)})"
    fields = [f for f in METADATA_FIELDS if not partial or f.name in raw]
    cleaned = {f.name: _clean_one(f, raw.get(f.name), errors) for f in fields}
    if cleaned.get("modality", raw.get("modality")) != "dSTORM" and not partial:
        for name in DSTORM_ONLY:
            cleaned[name] = None
    if errors:
        raise MetadataError(errors)
    return cleaned


def share_names(shared_with) -> list[str]:
    """User names to share with, from a list or from text typed in a form ('alice, bob')."""
    if isinstance(shared_with, (list, tuple, set)):
        return [str(n).strip() for n in shared_with if str(n).strip()]
    return [part for part in re.split(r"[,;\s]+", str(shared_with or "")) if part]


def clean_visibility(visibility: str, shared_with=()) -> tuple[str, list[str]]:
    """Validate visibility ('private', 'shared' with exact user names as a list or text, 'public')."""
    if visibility not in VISIBILITIES:
        raise MetadataError({"visibility": f"must be one of {', '.join(VISIBILITIES)}"})
    names = sorted(set(share_names(shared_with)))
    if visibility == "shared" and not names:
        raise MetadataError({"shared_with": "name at least one user to share with, or choose private or public"})
    return visibility, (names if visibility == "shared" else [])
