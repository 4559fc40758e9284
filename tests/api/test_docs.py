"""``/docs`` and ``/redoc`` work offline (issue 15): their scripts and styles are served by the app itself
from assets in the installed package, never from a CDN an air-gapped training cluster cannot reach."""

from __future__ import annotations

import re


def test_api_docs_load_every_asset_from_the_service(sqlite_server):
    with sqlite_server.http(tenant=None) as http:
        for page in ("/docs", "/redoc"):
            html = http.get(page)
            assert html.status_code == 200
            assets = re.findall(r'(?:src|href)="([^"]+\.(?:js|css))"', html.text)
            assert assets, html.text
            for url in assets:
                assert url.startswith("/"), f"{page} loads {url} from elsewhere"
                asset = http.get(url)
                assert asset.status_code == 200 and len(asset.content) > 10_000, url
        spec = http.get("/openapi.json").json()
        assert "/v1/studies/{study_id}/trials:suggest" in spec["paths"]
