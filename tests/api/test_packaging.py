"""Layering: the wire contract and SDK import without the heavy stack; the app factory builds nothing at
import time."""

from __future__ import annotations

import subprocess
import sys

HEAVY = ("torch", "ray", "numpy", "botorch", "sqlalchemy", "fastapi", "schedulers", "service", "workers")


def _modules_after(statement: str) -> set[str]:
    code = f"import sys; {statement}; print(' '.join(sorted(m.split('.')[0] for m in sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
    return set(out.split())


def test_api_imports_without_heavy_dependencies():
    loaded = _modules_after("import api, api.client, api.schemas, api.errors")
    assert not loaded & set(HEAVY), sorted(loaded & set(HEAVY))
    assert {"pydantic", "httpx"} <= loaded


def test_importing_the_app_creates_no_engine_or_settings():
    code = ("import sqlalchemy, service.app as app_module; "
            "from sqlalchemy.pool import Pool; import gc; "
            "print(sum(isinstance(o, Pool) for o in gc.get_objects()))")
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True,
                         env={"PATH": "", "SCALELADDER_DATABASE_URL": "postgresql+psycopg://nobody@127.0.0.1:1/none"})
    assert out.stdout.strip() == "0"
