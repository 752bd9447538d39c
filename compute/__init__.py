"""Pure science: numpy arrays in, numbers out.

Nothing in this package imports Dash, Flask, SQLAlchemy or the rest of nano-org.
Coordinates are nanometres unless a name says otherwise (``_um``, ``_px``).
"""
