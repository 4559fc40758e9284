"""docs/deployment.md stays true to the artifacts it describes: the files it names exist, the values it sets
are chart values, and the commands it prints are the ones the chart's NOTES.txt prints."""

from __future__ import annotations

import re

from tests.deploy.artifacts import REPO_ROOT, load_values, lookup

GUIDE = REPO_ROOT / "docs" / "deployment.md"


def test_files_the_guide_names_exist() -> None:
    text = GUIDE.read_text()
    paths = set(re.findall(r"(?<![\w/.-])((?:docker|helm|scripts|tests|\.ci)/[\w./-]*\w)", text))
    assert {"docker/compose.yaml", "docker/Dockerfile", "helm/scaleladder", "scripts/install.sh"} <= paths
    missing = sorted(p for p in paths if not (REPO_ROOT / p).exists())
    assert not missing, missing


def test_values_the_guide_sets_are_chart_values() -> None:
    values = load_values()
    keys = set(re.findall(r"--set ([A-Za-z][\w.]*)=", GUIDE.read_text()))
    assert keys, "the guide shows helm --set examples"
    for key in keys:
        lookup(values, tuple(key.split(".")))


def test_dashboard_commands_match_what_the_chart_prints(helm) -> None:
    notes = helm.render({"database": {"url": "postgresql+psycopg://u:p@db:5432/x"}},
                         release="sl", namespace="tuning").notes
    guide = GUIDE.read_text()
    for command in ("port-forward svc/sl-scaleladder-ray-head-svc 8265:8265",
                    "get secret sl-scaleladder-ray-auth -o jsonpath='{.data.token}'",
                    "get secret sl-scaleladder-auth -o jsonpath='{.data.bootstrap-token}'"):
        assert command in notes and command in guide, command
