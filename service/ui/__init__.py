"""The study dashboard (``/ui``): static files only. The page is a client of the public REST API (``/v1``)
with the user's bearer token, like the SDK and the CLI, so it has no server-side data path of its own and
sees exactly what the token's tenant may see.

Its assets are plain ES modules and CSS shipped in the package (``static/``), with charts drawn as SVG by
``static/charts.js``: no CDN and no build step, so it works on an offline or firewalled cluster.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

STATIC_DIR = Path(__file__).parent / "static"

#: where the dashboard is served; its page finds the API relative to this, so a path prefix in front of
#: the service (a reverse proxy) keeps working
UI_PATH = "/ui"


def install(app: FastAPI) -> None:
    """Serve the dashboard: ``/ui/`` is ``index.html`` (``/ui`` redirects there, so the page's relative
    asset and API URLs resolve under ``/ui/``)."""
    app.mount(UI_PATH, StaticFiles(directory=STATIC_DIR, html=True), name="ui")
