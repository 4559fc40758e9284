"""``scaleladder scaling ...``: fit scaling laws from a CSV (locally) or show a study's (from the service).

    scaleladder scaling fit runs.csv --predict 1e10,2e11 --compute 1e21 --plot fit.png
    scaleladder scaling fit sweep.csv --hyperparameter lr --hyperparameter bs --ignore run_id
    scaleladder scaling study 42 --plot study42.png

The CSV has a header row and one run per row: ``N`` (model parameters) and/or ``D`` (steps or tokens), and
``loss`` (or ``value``). Every other column must be named: ``--hyperparameter COL`` (its optimum's Step Law is
fitted when its values are numbers) or ``--ignore COL``; an unnamed column is an error, not a silent law
(a ``C`` column was fitted as ``C = 6 N^1 D^1``, issue 15). The fit runs locally through the same code as
``POST /v1/scaling/fit`` (:mod:`service.scaling`), so a seed gives the same intervals here and over REST.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Annotated, Any, Optional, Sequence

import typer
from pydantic import ValidationError
from rich.table import Table

from api.errors import ScaleLadderError, field_message, invalid_argument
from api.scaling import LawKind, ScalePoint, ScalingFitRequest, ScalingPoint
from service.cli_common import App, console, fail as _fail

app = App(help="Scaling laws: fit L(N, D) and hyperparameter laws with bootstrap intervals.", no_args_is_help=True)

LOSS_COLUMNS = ("loss", "value")
SCALE_COLUMNS = ("N", "D")


def read_runs(path: Path, hyperparameters: Sequence[str] = (), ignore: Sequence[str] = ()) -> list[ScalingPoint]:
    """CSV rows -> wire points (see the module docstring); exits with an error naming what is wrong."""
    with path.open(newline="") as fh:
        reader = csv.DictReader(fh)
        header = list(reader.fieldnames or [])
        loss_col = next((c for c in LOSS_COLUMNS if c in header), None)
        if loss_col is None:
            _fail(f"{path}: needs a 'loss' (or 'value') column next to 'N' and/or 'D'; has {header}")
        if not any(c in header for c in SCALE_COLUMNS):
            _fail(f"{path}: needs a model size column 'N' and/or a data size column 'D'; has {header}")
        known = {*SCALE_COLUMNS, loss_col}
        for col in [*hyperparameters, *ignore]:
            if col not in header:
                _fail(f"{path}: no column {col!r} (named by --hyperparameter or --ignore); has {header}")
            if col in known:
                _fail(f"{path}: {col!r} is the run's scale or loss, not a hyperparameter")
        unnamed = [c for c in header if c not in known and c not in hyperparameters and c not in ignore]
        if unnamed:
            _fail(f"{path}: column {unnamed[0]!r} is not N, D or {loss_col}: name it with --hyperparameter "
                  f"{unnamed[0]} (to fit its law) or --ignore {unnamed[0]}")
        points = []
        for line, row in enumerate(reader, start=2):
            try:
                raw: dict[str, Any] = {"loss": row[loss_col], "params": {}}
                raw.update({c: row[c] for c in SCALE_COLUMNS if c in header and row[c] not in ("", None)})
                for col in hyperparameters:
                    if row[col] not in ("", None):
                        raw["params"][col] = _number_or_text(row[col])
                points.append(ScalingPoint.model_validate(raw))
            except ValidationError as exc:
                _fail(f"{path}, line {line}: {invalid_argument(exc.errors())}")
    return points


def _number_or_text(value: str) -> float | str:
    try:
        return float(value)
    except ValueError:
        return value                                   # categorical: kept with the run, never fitted


def _parse_targets(items: list[str], variables: tuple[str, ...]) -> list[ScalePoint]:
    out = []
    for item in items:
        try:
            parts = [float(p) for p in item.split(",")]
        except ValueError:
            parts = []
        if len(parts) != len(variables):
            _fail(f"--predict {item!r}: give {','.join(variables)} as numbers")
        out.append(ScalePoint(**dict(zip(variables, parts))))
    return out


def _fmt(e: dict, interval: bool) -> str:
    """A value, with its bootstrap interval when there was a bootstrap (without one the interval is the
    value itself, ``[v, v]``, which reads as certainty)."""
    return f"{e['value']:.4g}  [{e['low']:.4g}, {e['high']:.4g}]" if interval else f"{e['value']:.4g}"


def print_report(out: dict) -> None:
    """Rich tables for a fit (the :class:`api.scaling.ScalingFit` shape)."""
    law = out.get("loss_law")
    boot = bool(law and law["n_bootstrap"])
    if law:
        resamples = f"{law['n_bootstrap']} bootstrap resamples" if boot else "no bootstrap, no intervals"
        t = Table(title=f"{law['law']}   ({law['n_points']} points, {resamples})")
        t.add_column("coefficient")
        t.add_column(f"value  [{law['level']:.0%} interval]" if boot else "value")
        for k, e in law["coefficients"].items():
            t.add_row(k, _fmt(e, boot))
        console.print(t)
    for p in out.get("loss_predictions", []):
        at = ", ".join(f"{k}={v:.4g}" for k, v in p.items() if k in SCALE_COLUMNS and v is not None)
        console.print(f"predicted loss at {at}: {_fmt(p['loss'], boot)}")
    for c in out.get("compute_optimal", []):
        console.print(f"compute {c['compute']:.3g}: N_opt {_fmt(c['N_opt'], boot)}, D_opt {_fmt(c['D_opt'], boot)}, "
                      f"loss {_fmt(c['loss'], boot)}")
    hp = out.get("hyperparameter_law")
    hp_boot = bool(hp and hp.get("n_bootstrap", 1))    # a server older than the count: it always resampled
    if hp:
        t = Table(title=f"hyperparameter laws (runs within {hp['tolerance']:.2%} of each cell's best: "
                        f"{hp['n_kept']} of {hp['n_runs']}" + ("" if hp_boot else "; no bootstrap, no intervals")
                        + ")")
        for col in ("law", "coefficient", "exponents"):
            t.add_column(col)
        for fit in hp["laws"].values():
            t.add_row(fit["formula"], _fmt(fit["coefficient"], hp_boot),
                      "; ".join(f"{k}: {_fmt(e, hp_boot)}" for k, e in fit["exponents"].items()))
        console.print(t)
    for p in out.get("hyperparameter_predictions", []):
        console.print(f"optimal {p['name']} at N={p['N']:.4g}, D={p['D']:.4g}: {_fmt(p['value'], hp_boot)}")
    for w in out.get("warnings", []):
        console.print(f"[yellow]warning:[/] {w}")


@app.command()
def fit(csv_path: Annotated[Path, typer.Argument(exists=True, dir_okay=False,
                                                 help="runs, one per row: columns N and/or D, and loss")],
        hyperparameter: Annotated[list[str], typer.Option(
            "--hyperparameter", "-H", help="a column that is a hyperparameter (repeat for several); numeric ones "
                                           "get a Step Law fit of their optimum")] = [],  # noqa: B006
        ignore: Annotated[list[str], typer.Option(
            help="a column to leave out (repeat for several)")] = [],  # noqa: B006
        plot: Annotated[Optional[Path], typer.Option(help="write the fit (PNG) here")] = None,
        predict: Annotated[list[str], typer.Option(help="N,D (or the one variable) to predict at")] = [],  # noqa: B006
        compute: Annotated[list[float], typer.Option(help="compute budget C ~ 6ND")] = [],  # noqa: B006
        law: Annotated[LawKind, typer.Option(help="the loss law's form (auto: chinchilla when N and D both vary)")
                       ] = LawKind.AUTO,
        bootstrap: Annotated[Optional[int], typer.Option(
            help="bootstrap resamples of the loss law; 0: no intervals (default: the library's, as over REST)",
            show_default=False)] = None,
        hyperparameter_bootstrap: Annotated[Optional[int], typer.Option(
            help="bootstrap resamples of the hyperparameter laws (default: the library's)", show_default=False)
        ] = None,
        tolerance: Annotated[Optional[float], typer.Option(
            help="Step Law plateau: runs within this fraction of their cell's best (default: the library's)",
            show_default=False)] = None,
        seed: Annotated[Optional[int], typer.Option(
            help="bootstrap seed; the same points and seed give the same intervals as POST /v1/scaling/fit",
            show_default=False)] = None,
        as_json: Annotated[bool, typer.Option("--json", help="print the fit as JSON")] = False) -> None:
    """Fit the loss law L(N, D) to a CSV of runs, and the optimal-hyperparameter laws of the columns named
    by --hyperparameter.

    The CSV has a header row and one run per row, with columns N (model parameters) and/or D (steps or
    tokens) and loss (or value). Every other column must be named with --hyperparameter or --ignore.
    """
    from schedulers.scaling import InvalidScalingDataError
    from service.scaling import fit_points

    points = read_runs(csv_path, hyperparameter, ignore)
    variables = tuple(v for v in SCALE_COLUMNS if any(getattr(p, v) is not None for p in points))
    try:
        request = ScalingFitRequest(points=points, law=law, predict_at=_parse_targets(predict, variables),
                                    compute_budgets=compute, n_bootstrap=bootstrap,
                                    hyperparameter_bootstrap=hyperparameter_bootstrap, tolerance=tolerance, seed=seed)
    except ValidationError as exc:
        _fail(invalid_argument(exc.errors()))
    try:
        result = fit_points(request)
    except InvalidScalingDataError as exc:
        _fail(field_message(exc.field, exc.message))
    _show(result, plot, as_json)


def _show(result: Any, plot: Path | None, as_json: bool) -> None:
    """Print a :class:`api.scaling.ScalingFit` (tables, or JSON without the plot data) and draw its plot."""
    from api.scaling import plot_scaling

    if as_json:
        typer.echo(json.dumps(result.model_dump(mode="json", exclude={"plot"}), indent=1))
    else:
        print_report(result.model_dump(mode="json"))
    if plot is not None:
        if not result.plot:
            _fail("nothing to plot: " + "; ".join(result.warnings))
        console.print(f"plot: {plot_scaling(result, plot)}")


@app.command()
def study(study_id: Annotated[int, typer.Argument(help="Study id.")],
          url: Annotated[str, typer.Option("--url", envvar="SCALELADDER_URL", help="Service URL.")
                         ] = "http://127.0.0.1:8000",
          token: Annotated[Optional[str], typer.Option("--token", envvar="SCALELADDER_TOKEN", help="API token.",
                                                       show_default=False)] = None,
          plot: Annotated[Optional[Path], typer.Option(help="write the fit (PNG) here")] = None,
          bootstrap: Annotated[Optional[int], typer.Option(
              help="bootstrap resamples of the loss law; 0: no intervals (default: the library's)",
              show_default=False)] = None,
          as_json: Annotated[bool, typer.Option("--json", help="print the fit as JSON")] = False) -> None:
    """Show the scaling laws of a study's own trials (from the service)."""
    from api.client import Client
    from api.scaling import study_scaling

    try:
        with Client(url, token) as client:
            result = study_scaling(client, study_id, n_bootstrap=bootstrap)
    except ScaleLadderError as exc:
        _fail(exc)
    _show(result, plot, as_json)
