"""Dash pages (``Dash(use_pages=True, pages_folder=<this folder>)``).

Dash imports every module here whose text contains ``register_page`` (files starting with ``_``
are skipped, so this ``__init__`` is ignored by Dash; it only makes the folder a normal package so
that page modules may use relative imports). Dash executes these modules again each time an app is
built, under the names ``pages.<module>``: keep module-level code to layout
definitions and ``dash.register_page``; do not import page modules from elsewhere.
"""
