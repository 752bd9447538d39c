"""nano-org: a web databank for single-molecule localisation microscopy (SMLM) data."""

__version__ = "0.1.0"
