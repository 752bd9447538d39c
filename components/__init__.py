"""Reusable pieces of the web layer (navbar, footer). Layout only: no SQL, no science."""
