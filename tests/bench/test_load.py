"""bench/load.py: its README section is generated in place, and a short real run measures what it says."""

from __future__ import annotations

import pytest

from bench import load


def _run(clients=2, studies=1) -> load.Run:
    run = load.Run(clients, studies, seconds=2.0)
    run.latency["report"] += [0.010, 0.020, 0.030]
    run.outcomes["report"]["200"] += 3
    run.outcomes["ask"]["503"] += 1
    run.acknowledged = run.stored = 3
    return run


def test_section_is_inserted_once_then_replaced(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text("# Benchmarks\n\n## Ingest\n\ntext\n\n## Ray overhead\n\nmore\n")
    text = load.section([("abc1234", "now", [_run()])], "python -m bench.load", "today", ("1.0", "2.0"), 2, 1)
    load.write_readme(readme, text)
    first = readme.read_text()
    assert first.index("## Ingest") < first.index(load.BEGIN) < first.index("## Ray overhead")
    assert "| 2 | 1 | report | 3 | 1.5 | 20 |" in first and "(equal in every run)" in first
    load.write_readme(readme, text.replace("today", "tomorrow"))
    second = readme.read_text()
    assert second.count(load.BEGIN) == 1 and "tomorrow" in second and "today" not in second
    assert second.endswith("## Ray overhead\n\nmore\n")


@pytest.mark.slow
@pytest.mark.postgres
def test_a_short_run_against_a_real_server(tmp_path, capsys):
    readme = tmp_path / "README.md"
    readme.write_text("# Benchmarks\n\n## Ray overhead\n")
    load.main(["--clients", "3", "--studies", "1", "--seconds", "2", "--warmup", "1", "--readme", str(readme)])
    text = readme.read_text()
    assert "### Now: commit" in text and "| 3 | 1 | **all** |" in text
    assert "(equal in every run)" in text  # every acknowledged measurement was stored
    row = next(line for line in text.splitlines() if line.startswith("| 3 | 1 | **all** |")).split("|")
    assert int(row[4]) > 0 and row[-3].strip() == "0" and row[-2].strip() == "0"  # answered, no 5xx or timeouts
