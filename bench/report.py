"""Writes a benchmark's outputs: the markdown summary and the regret-vs-cost plot.

``summary.md`` holds the run's provenance (command, machine, date, commit), the problem, one table of
strategies (median [IQR] over seeds; see :mod:`bench.metrics`), the speed-up table, the paired comparison
of every strategy with the reference over shared seeds (:mod:`bench.paired`) and the strategies that could
not run, with their exact errors. ``regret_<problem>.png`` plots median regret vs cost with the IQR band per strategy
(log-log; regret is floored at 0.01% for the log axis; the flagship in black).
"""

from __future__ import annotations

import datetime as dt
import math
import os
import platform
import subprocess
from pathlib import Path
from typing import Any, Sequence

from bench.harness.runner import BenchmarkResult
from bench.harness.strategies import Origin
from bench.problems.base import RegretUnit
from bench.metrics import (BUDGET_MARKS, SPEEDUP_LEVELS, THRESHOLDS, Spread, StrategySummary, regret_band,
                           speedups, strategy_label, summarise)
from bench.paired import (ALPHA, CENSOR_FACTOR, CONFIDENCE, N_BOOTSTRAP, PairedComparison, Quantity, Verdict,
                          paired_comparisons)

REGRET_FLOOR = 1e-2  # percent; the plot's log axis cannot show 0
FLAGSHIP = "multiscale_bo"  # drawn in black, on top
AXIS_UNIT = {RegretUnit.RELATIVE_PERCENT: "%", RegretUnit.PERCENTAGE_POINTS: "percentage points"}


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} logical CPUs, {platform.system()} {platform.release()}, " \
           f"Python {platform.python_version()}"


def loadavg() -> str:
    """The 1-minute load average as text (``?`` where the platform has none)."""
    try:
        return f"{os.getloadavg()[0]:.1f}"
    except OSError:
        return "?"


def write_section(readme: Path, text: str, begin: str, end: str, insert_before: str | None = None) -> None:
    """Put a generated section (``text``, from its ``begin`` marker to its ``end`` marker) into ``readme``:
    in place of the old one, else before the heading ``insert_before``, else at the end."""
    old = readme.read_text()
    start, stop = old.find(begin), old.find(end)
    if start >= 0 and stop > start:
        new = old[:start] + text + old[stop + len(end):]
    else:
        at = old.find(insert_before) if insert_before else -1
        new = old[:at] + text + "\n\n" + old[at:] if at >= 0 else old.rstrip("\n") + "\n\n" + text + "\n"
    readme.write_text(new)


def git_commit() -> str:
    try:
        root = Path(__file__).resolve().parents[1]
        sha = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True,
                             timeout=10).stdout.strip()
        return sha or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def _fmt(x: float, digits: int = 3, inf: str = "inf") -> str:
    if math.isinf(x):
        return inf
    if math.isnan(x):
        return "-"
    return f"{x:.{digits}g}"


def _spread(s: Spread | None, digits: int = 3, inf: str = "inf") -> str:
    """``median [q25, q75]``; ``inf`` spells a figure never reached (e.g. a threshold within the budget)."""
    if s is None:
        return "-"
    if math.isinf(s.q25):
        return inf
    return f"{_fmt(s.median, digits, inf)} [{_fmt(s.q25, digits, inf)}, {_fmt(s.q75, digits, inf)}]"


def table(summaries: Sequence[StrategySummary], budget: float) -> str:
    marks = [m for m in BUDGET_MARKS if m <= budget + 1e-9]
    never = f">{budget:g}"
    head = (["strategy", "runs ok"] + [f"cost to {t:g}% (runs that reached it)" for t in THRESHOLDS]
            + [f"regret % at {m:g}x" for m in marks]
            + ["final regret %", "busy", "cost as wall time x workers", "scheduler CPU s", "trials"])
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for s in summaries:
        tag = "" if s.origin in ("", Origin.SCHEDULER.value) else f" ({s.origin})"  # peer or baseline
        row = [f"{s.strategy}{tag}", f"{s.runs - s.failed_runs}/{s.runs}"]
        row += [f"{_spread(s.cost_to.get(t), inf=never)} ({s.reached.get(t, 0)}/{s.runs - s.failed_runs})"
                for t in THRESHOLDS]
        row += [_spread(s.regret_at.get(m)) for m in marks]
        row += [_spread(s.final_regret), _spread(s.busy_fraction, 2), _spread(s.reserved_cost),
                _spread(s.scheduler_cpu_s),
                _spread(s.trials)]
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def speedup_table(result: BenchmarkResult, reference: str) -> str | None:
    """Median cost to reach each regret level, and its ratio to ``reference``'s (``None`` if that
    strategy did not run)."""
    table_ = speedups(result.records, reference)
    if reference not in table_:
        return None
    never = f">{result.config.budget:g}"
    head = ["strategy"] + [f"{lv:g}%: cost (x {reference})" for lv in SPEEDUP_LEVELS]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, per_level in table_.items():
        cells = [f"{_fmt(c, inf=never)} ({_fmt(ratio, inf='inf')})" for c, ratio in per_level.values()]
        lines.append("| " + " | ".join([name] + cells) + " |")
    return "\n".join(lines)


def _paired_cell(c: PairedComparison) -> str:
    if c.verdict is Verdict.NO_PAIRS:
        return "-"
    sign = lambda x: "-" if math.isnan(x) else f"{x:+.3g}"  # noqa: E731
    figures = f"{sign(c.median_diff)} [{sign(c.ci_low)}, {sign(c.ci_high)}], p {c.p:.2g}"
    return f"{Verdict.NOISE.value} ({figures})" if c.verdict is Verdict.NOISE else f"**{figures}**"


def paired_table(result: BenchmarkResult, reference: str) -> str | None:
    """Each strategy against ``reference`` over the seeds both completed (:mod:`bench.paired`): median
    difference, its bootstrap interval and the Wilcoxon p-value per regret level and for the final regret;
    ``None`` when ``reference`` has no completed run."""
    table_ = paired_comparisons(result.records, reference)
    if not table_:
        return None
    head = (["strategy", "paired seeds"] + [f"cost to {lv:g}%" for lv in SPEEDUP_LEVELS]
            + ["final regret %"])
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, rows in table_.items():
        lines.append("| " + " | ".join([name, str(rows[0].n)] + [_paired_cell(r) for r in rows]) + " |")
    return "\n".join(lines)


def paired_caption(budget: float, reference: str) -> str:
    return (f"Paired comparison with `{reference}` over the seeds both completed: median over seeds of "
            f"(strategy - `{reference}`) [paired bootstrap {CONFIDENCE:.0%} interval of that median, "
            f"{N_BOOTSTRAP:,} resamples], and the two-sided Wilcoxon signed-rank p-value (ties split); "
            f"> 0: `{reference}` did better (lower cost, lower regret); bold where p < {ALPHA:g}. "
            f"'Not reached' counts as {CENSOR_FACTOR:g}x the largest possible finite value (cost: "
            f"{CENSOR_FACTOR * budget:g} target runs = {CENSOR_FACTOR:g}x the budget; final regret: "
            f"{CENSOR_FACTOR:g}x max(1, the largest finite final regret of the pair set)), so it ranks above "
            f"every finite value and the p-value does not depend on the factor; interval bounds beyond "
            f"+-{budget:g} involve such runs. No correction for multiple comparisons.")


def plot(result: BenchmarkResult, path: Path) -> Path | None:
    """Median regret vs cost with the IQR band per strategy; ``None`` when no run completed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    by_strategy: dict[str, list[dict[str, Any]]] = {}
    for r in result.records:
        if not r.get("error") and r.get("regret"):
            by_strategy.setdefault(strategy_label(r), []).append(r)
    if not by_strategy:
        return None
    fig, ax = plt.subplots(figsize=(8.4, 4.4), dpi=90)
    # tab20 without its greys (the flagship is the only black/grey line), dark shades first
    tab20 = plt.get_cmap("tab20").colors
    colors = [tab20[i] for i in range(0, 20, 2) if i != 14] + [tab20[i] for i in range(1, 20, 2) if i != 15]
    others = [n for n in by_strategy if n != FLAGSHIP]
    for name, runs in by_strategy.items():
        cost, med, q25, q75 = regret_band(runs)
        floor = lambda a: [max(v, REGRET_FLOOR) if math.isfinite(v) else float("nan") for v in a]  # noqa: E731
        flagship = name == FLAGSHIP
        i = -1 if flagship else others.index(name)
        color = "black" if flagship else colors[i % len(colors)]
        ax.plot(cost, floor(med), label=f"{name} (n={len(runs)})", lw=2.4 if flagship else 1.3, color=color,
                ls="-" if flagship or i < len(colors) // 2 else "--", zorder=3 if flagship else 2)
        ax.fill_between(cost, floor(q25), floor(q75), color=color, alpha=0.12, lw=0)
    for t in THRESHOLDS:
        ax.axhline(t, color="grey", lw=0.6, ls=":")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("cost spent (target-scale runs)")
    ax.set_ylabel(f"regret of recommendation at target ({AXIS_UNIT[result.regret_unit]})")
    ax.set_title(f"{result.problem_name}: {result.config.workers} workers, median and IQR over seeds", fontsize=9)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0)
    ax.grid(True, which="major", alpha=0.3)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path


def summary_markdown(result: BenchmarkResult, command: str, plot_path: str | None = None,
                     reference: str = FLAGSHIP) -> str:
    cfg = result.config
    summaries = summarise(result.records)
    out = [f"### {result.problem_name}", "",
           f"- command: `{command}`",
           f"- machine: {machine()}",
           f"- date: {dt.datetime.now(dt.timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}; commit {git_commit()}; "
           f"wall time {result.wall_s:.0f} s",
           f"- problem: {result.problem_description}",
           f"- regret: {result.regret_unit.value}; the regret levels (10 / 5 / 2 / 1 / 0.25) are in this unit",
           f"- {cfg.workers} simulated workers, budget {cfg.budget:g} target runs, seeds {cfg.seeds[0]}.."
           f"{cfg.seeds[-1]} ({len(cfg.seeds)}); figures are median [IQR] over seeds; cost in target-run units",
           f"- cost to reach a regret is the first of {cfg.n_checkpoints} log-spaced cost checkpoints at which "
           f"the recommendation is that good; `>{cfg.budget:g}`: not reached within the budget",
           "- cost counts busy workers (that is what the budget limits); 'cost as wall time x workers' counts "
           "idle workers too, as a reserved cluster would (target runs)",
           "", table(summaries, cfg.budget), ""]
    if plot_path:
        out += [f"![regret vs cost on {result.problem_name}]({plot_path})", ""]
    ratios = speedup_table(result, reference)
    if ratios:
        out += [f"Speed-up: median cost (target runs) to reach each regret level, and in brackets that cost "
                f"divided by `{reference}`'s (> 1: `{reference}` gets there with less compute; "
                f"`>{cfg.budget:g}`: the median run never got there; `-`: `{reference}`'s median never did).",
                "", ratios, ""]
    paired = paired_table(result, reference)
    if paired:
        out += [paired_caption(cfg.budget, reference), "", paired, ""]
    if result.not_applicable:
        out += ["Strategies that do not apply to this problem (not run):", ""]
        out += [f"- `{name}`: {why}" for name, why in result.not_applicable.items()]
        out.append("")
    errors = [(s.strategy, e) for s in summaries for e in s.errors]
    if result.unavailable or errors:
        out += ["Strategies that could not run (exact errors):", ""]
        out += [f"- `{name}`: `{err}`" for name, err in result.unavailable.items()]
        out += [f"- `{name}` (crashed in a run): `{err}`" for name, err in errors]
        out.append("")
    return "\n".join(out)


def write_report(result: BenchmarkResult, out_dir: str | Path, command: str,
                 reference: str = FLAGSHIP) -> tuple[Path, Path | None]:
    """Write ``summary.md`` (speed-ups relative to ``reference``) and the plot into ``out_dir``; returns
    their paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    safe = result.problem_name.replace(":", "_")
    png = plot(result, out / f"regret_{safe}.png")
    md = out / "summary.md"
    md.write_text(summary_markdown(result, command, png.name if png else None, reference))
    return md, png
