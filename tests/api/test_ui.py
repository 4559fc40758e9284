"""The dashboard (issue 15): ``/ui`` and every asset it loads are served by the service itself (no CDN),
and the one read route it added, a study's measurements paged by trial, answers what the per-trial route
answers."""

from __future__ import annotations

import re
from urllib.parse import urljoin

#: what the page and its modules load: <script src>, <link href>, and ES module imports
_REFERENCES = (re.compile(r'(?:src|href)="([^"#]+\.(?:js|css))"'),
               re.compile(r'(?:^|\s)(?:import|export)\b[^;]*?\bfrom\s+"([^"]+)"', re.M))
_MIME = {".js": "javascript", ".css": "text/css"}


def _references(text: str) -> list[str]:
    return [url for pattern in _REFERENCES for url in pattern.findall(text)]


def test_dashboard_loads_every_asset_from_the_service(sqlite_server):
    with sqlite_server.http(tenant=None) as http:  # the page and its assets need no token; the API does
        page = http.get("/ui", follow_redirects=True)
        assert page.status_code == 200 and "text/html" in page.headers["content-type"]
        assert str(page.url).endswith("/ui/")  # so the page's relative URLs resolve under /ui/
        seen: set[str] = set()
        todo = [urljoin(str(page.url), u) for u in _references(page.text)]
        assert len(todo) >= 2, page.text  # the stylesheet and the app module
        while todo:
            url = todo.pop()
            if url in seen:
                continue
            seen.add(url)
            assert url.startswith(sqlite_server.url + "/ui/"), f"the dashboard loads {url} from elsewhere"
            asset = http.get(url)
            assert asset.status_code == 200, url
            # a browser refuses to run a module served with a non-JavaScript type
            assert _MIME[url[url.rfind("."):]] in asset.headers["content-type"], (url, asset.headers)
            # nothing fetched from outside: the only absolute URL is SVG's XML namespace, a name, not a load
            assert not re.findall(r"https?://(?!www\.w3\.org/2000/svg)", asset.text), url
            todo += [urljoin(url, u) for u in _references(asset.text)]
        assert {u.rsplit("/", 1)[1] for u in seen} >= {"app.js", "api.js", "charts.js", "app.css"}


def test_study_measurements_come_in_pages_of_whole_trials(sqlite_server, study_spec):
    with sqlite_server.http() as http, sqlite_server.http(tenant="mallory") as other:
        sid = http.post("/v1/studies", json=study_spec).json()["id"]
        assert http.post(f"/v1/studies/{sid}:start").status_code == 200
        trials = http.post(f"/v1/studies/{sid}/trials:suggest", json={"client_id": "w", "count": 3}).json()["trials"]
        for i, t in enumerate(trials):
            for step in range(10, 10 * (i + 2), 10):
                r = http.post(f"/v1/trials/{t['id']}/measurements", json={"step": step, "value": 1.0 / step})
                assert r.status_code == 200, r.text
        first = http.get(f"/v1/studies/{sid}/measurements", params={"page_size": 2}).json()
        rest = http.get(f"/v1/studies/{sid}/measurements",
                        params={"page_size": 2, "page_token": first["next_page_token"]}).json()
        assert rest["next_page_token"] is None
        ids = [t["id"] for t in trials]
        assert {m["trial_id"] for m in first["items"]} == set(ids[:2]) and {m["trial_id"] for m in rest["items"]} == {ids[2]}
        for t in trials:  # the same measurements, in step order, as the per-trial route
            own = http.get(f"/v1/trials/{t['id']}/measurements").json()
            assert [m for m in first["items"] + rest["items"] if m["trial_id"] == t["id"]] == own
        assert sum(m["cost"] for m in first["items"] + rest["items"]) > 0
        assert other.get(f"/v1/studies/{sid}/measurements").status_code == 404  # another tenant's study
        assert http.get(f"/v1/studies/{sid}/measurements", params={"page_token": "x"}).status_code == 422
