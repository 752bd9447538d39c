"""Callbacks, one module per page or feature, each with ``register(app)``: every callback belongs to
the app that ``create_app`` builds (``app.callback``), never to Dash's module-global registry.
Pages hold layout only."""

from dash import Input, Output

from . import account, compare, contact, databank, dataset, search_file, similarity, upload, viewer

# The Log In link returns to the page it was clicked on.
LOGIN_NEXT_JS = """function(pathname, search) {
    const here = (pathname || '/') + (search || '');
    if (here === '/' ) { return '/login'; }
    return '/login?next=' + encodeURIComponent(here);
}"""


def register_callbacks(app) -> None:
    """Wire every callback of the app: the shell (navbar) and each page's module."""
    app.clientside_callback(LOGIN_NEXT_JS, Output("nav-login", "href"),
                            Input("_pages_location", "pathname"), Input("_pages_location", "search"))
    for module in (account, compare, contact, databank, dataset, search_file, similarity, upload, viewer):
        module.register(app)
