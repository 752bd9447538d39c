"""Callbacks grouped by page. Modules here expose ``register(app)`` and use ``app.callback`` so that
every app built by ``create_app`` owns its callbacks (no module-global registry involved).

Page modules owned by other engineers may keep their callbacks next to their layout with
``dash.callback``; ``create_app`` hands those to the app it builds.
"""


def register_all(app) -> None:
    """Register the callbacks that are not registered by their page module: the account page and the
    dataset page's similarity section (the /search and /compare pages register their own)."""
    from . import account, similarity

    account.register(app)
    similarity.register_section(app)
