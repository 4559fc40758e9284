"""``scaleladder scaling ...``: fit scaling laws from a CSV (locally) or show a study's (from the service).

    scaleladder scaling fit runs.csv --predict 1e10,2e11 --compute 1e21 --plot fit.png
    scaleladder scaling study 42 --plot study42.png

The CSV has a header row: ``N`` (model parameters) and/or ``D`` (steps or tokens), ``loss`` (or
``value``), and any other numeric columns as hyperparameters (fitted by the Step Law procedure).
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table

from api.errors import ScaleLadderError
from service.cli_common import App, console, fail as _fail

app = App(help="Scaling laws: fit L(N, D) and hyperparameter laws with bootstrap intervals.", no_args_is_help=True)

LOSS_COLUMNS = ("loss", "value")
SCALE_COLUMNS = ("N", "D")


def read_runs(path: Path) -> list[dict]:
    """CSV rows -> ``{"N", "D", "value", "params"}`` dicts (see the module docstring)."""
    with path.open(newline="") as fh:
        reader = csv.DictReader(fh)
        header = reader.fieldnames or []
        loss_col = next((c for c in LOSS_COLUMNS if c in header), None)
        if loss_col is None:
            _fail(f"{path}: needs a 'loss' (or 'value') column; has {header}")
        runs = []
        for i, row in enumerate(reader, start=2):
            try:
                run = {"value": float(row[loss_col]), "params": {}}
                for col in SCALE_COLUMNS:
                    if col in header and row[col] not in ("", None):
                        run[col] = float(row[col])
                for col in header:
                    if col in SCALE_COLUMNS or col == loss_col or row[col] in ("", None):
                        continue
                    try:
                        run["params"][col] = float(row[col])
                    except ValueError:
                        run["params"][col] = row[col]          # categorical: kept, never fitted
            except ValueError as exc:
                _fail(f"{path}, line {i}: {exc}")
            runs.append(run)
    return runs


def _parse_targets(items: list[str], variables: tuple[str, ...]) -> list[dict[str, float]]:
    out = []
    for item in items:
        parts = [float(p) for p in item.split(",")]
        if len(parts) != len(variables):
            _fail(f"--predict {item!r}: give {','.join(variables)}")
        out.append(dict(zip(variables, parts)))
    return out


def _fmt(e: dict) -> str:
    return f"{e['value']:.4g}  [{e['low']:.4g}, {e['high']:.4g}]"


def print_report(out: dict) -> None:
    """Rich tables for a fit (the ``to_dict`` / REST shape)."""
    law = out.get("loss_law")
    if law:
        t = Table(title=f"{law['law']}   ({law['n_points']} points, {law['n_bootstrap']} bootstrap resamples)")
        t.add_column("coefficient")
        t.add_column(f"value  [{law['level']:.0%} interval]")
        for k, e in law["coefficients"].items():
            t.add_row(k, _fmt(e))
        console.print(t)
    for p in out.get("loss_predictions", []):
        at = ", ".join(f"{k}={v:.4g}" for k, v in p.items() if k in SCALE_COLUMNS and v is not None)
        console.print(f"predicted loss at {at}: {_fmt(p['loss'])}")
    for c in out.get("compute_optimal", []):
        console.print(f"compute {c['compute']:.3g}: N_opt {_fmt(c['N_opt'])}, D_opt {_fmt(c['D_opt'])}, "
                      f"loss {_fmt(c['loss'])}")
    hp = out.get("hyperparameter_law")
    if hp:
        t = Table(title=f"hyperparameter laws (runs within {hp['tolerance']:.2%} of each cell's best: "
                        f"{hp['n_kept']} of {hp['n_runs']})")
        for col in ("law", "coefficient", "exponents"):
            t.add_column(col)
        for fit in hp["laws"].values():
            t.add_row(fit["formula"], _fmt(fit["coefficient"]),
                      "; ".join(f"{k}: {_fmt(e)}" for k, e in fit["exponents"].items()))
        console.print(t)
    for p in out.get("hyperparameter_predictions", []):
        console.print(f"optimal {p['name']} at N={p['N']:.4g}, D={p['D']:.4g}: {_fmt(p['value'])}")
    for w in out.get("warnings", []):
        console.print(f"[yellow]warning:[/] {w}")


@app.command()
def fit(csv_path: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="runs, one per row")],
        plot: Annotated[Optional[Path], typer.Option(help="write the fit (PNG) here")] = None,
        predict: Annotated[list[str], typer.Option(help="N,D (or the one variable) to predict at")] = [],  # noqa: B006
        compute: Annotated[list[float], typer.Option(help="compute budget C ~ 6ND")] = [],  # noqa: B006
        law: Annotated[str, typer.Option(help="auto | chinchilla | one_variable")] = "auto",
        bootstrap: Annotated[int, typer.Option(help="bootstrap resamples of the loss law")] = 200,
        tolerance: Annotated[float, typer.Option(help="Step Law plateau tolerance")] = 0.0025,
        seed: int = 0,
        as_json: Annotated[bool, typer.Option("--json", help="print the fit as JSON")] = False) -> None:
    """Fit the loss law (and hyperparameter laws, from extra numeric columns) to a CSV of runs."""
    from schedulers.scaling import HuberFitOptions, InvalidScalingDataError, LawKind, fit_scaling
    from schedulers.scaling.plot import draw_panels

    runs = read_runs(csv_path)
    variables = tuple(v for v in SCALE_COLUMNS if any(v in r for r in runs))
    try:
        report = fit_scaling(runs, law=LawKind(law), options=HuberFitOptions(n_bootstrap=bootstrap, seed=seed),
                             tolerance=tolerance, predict_at=_parse_targets(predict, variables),
                             compute_budgets=compute, strict=False)
    except (InvalidScalingDataError, ValueError) as exc:
        _fail(f"{getattr(exc, 'field', None) or 'input'}: {getattr(exc, 'message', exc)}")
    out = report.to_dict()
    if as_json:
        out.pop("plot")
        typer.echo(json.dumps(out, indent=1))
    else:
        print_report(out)
    if plot is not None:
        if not report.panels:
            _fail("nothing to plot: " + "; ".join(report.warnings))
        console.print(f"plot: {draw_panels(report.panels, plot)}")


@app.command()
def study(study_id: int,
          url: Annotated[str, typer.Option("--url", envvar="SCALELADDER_URL")] = "http://127.0.0.1:8000",
          token: Annotated[Optional[str], typer.Option("--token", envvar="SCALELADDER_TOKEN")] = None,
          plot: Annotated[Optional[Path], typer.Option(help="write the fit (PNG) here")] = None,
          bootstrap: int = 100) -> None:
    """Show the scaling laws of a study's own trials (from the service)."""
    from api.client import Client
    from api.scaling import plot_scaling, study_scaling

    try:
        with Client(url, token) as client:
            result = study_scaling(client, study_id, n_bootstrap=bootstrap)
    except ScaleLadderError as exc:
        _fail(str(exc))
    print_report(result.model_dump(mode="json"))
    if plot is not None:
        if not result.plot:
            _fail("nothing to plot: " + "; ".join(result.warnings))
        console.print(f"plot: {plot_scaling(result, plot)}")
