"""Security headers on every response (``install(app)``, called by ``create_app``).

- ``X-Frame-Options: DENY`` and CSP ``frame-ancestors 'none'``: no page can be framed (clickjacking);
- ``X-Content-Type-Options: nosniff``: downloads and JSON are never sniffed into HTML or scripts;
- ``Referrer-Policy: same-origin``: dataset ids in URLs do not leak to other sites;
- ``Content-Security-Policy``: scripts, styles, fonts and connections from this origin only (every
  asset is vendored, no CDN); Dash's inline scripts (the renderer start-up and inline clientside
  callbacks) are allowed by their SHA-256 hashes (``Dash.csp_hashes``), not by 'unsafe-inline'.
  No 'unsafe-eval': the Dash 4 renderer, dash-ag-grid and plotly.js run without it (every browser
  test passes under this policy; tests/browser/test_security_headers.py checks the console).
  Inline styles are needed by React style props and plotly.js. Images may be data:/blob: (plotly,
  density PNGs).
"""

from __future__ import annotations

from dash import Dash

FIXED_HEADERS = {
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}


def content_security_policy(script_hashes) -> str:
    """The CSP header value, allowing the given inline-script hashes (quoted: "'sha256-...'")."""
    scripts = " ".join(["'self'", *script_hashes])
    return "; ".join([
        "default-src 'self'",
        f"script-src {scripts}",
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data: blob:",
        "font-src 'self' data:",
        "connect-src 'self'",
        "worker-src 'self' blob:",
        "object-src 'none'",
        "base-uri 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ])


def install(app: Dash) -> None:
    """Add the headers to every response of ``app``'s server. The CSP is computed at the first
    response, when every inline clientside callback has been registered."""
    server = app.server
    policy: list[str] = []

    @server.after_request
    def security_headers(response):
        if not policy:
            policy.append(content_security_policy(sorted(set(app.csp_hashes()))))
        for name, value in FIXED_HEADERS.items():
            response.headers.setdefault(name, value)
        response.headers.setdefault("Content-Security-Policy", policy[0])
        return response
