"""gait evaluate: the papers' metrics per channel, subject or condition; a waveform figure."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from gaitcli.cli import console
from gaitcli.cli.errors import run_mapped
from gaitcli.cli.options import JsonOutput

if TYPE_CHECKING:
    import pandas as pd

    from gaitcli.eval.evaluate import Evaluation

BY_HELP = ("channel: mean ± SD across subjects per channel; subject: one row per subject and channel; "
           "or a column such as condition or trial: mean ± SD within each of its values.")


def evaluate(
    checkpoint: Annotated[str, typer.Argument(help="Checkpoint (.safetensors) or 'default' for the shipped model.")],
    data: Annotated[list[str], typer.Argument(help="Ingest output folders or .parquet files with labels.")],
    split: Annotated[str, typer.Option("--split", help="all, or the checkpoint's test/train/val subjects.")] = "all",
    by: Annotated[str, typer.Option("--by", help=BY_HELP)] = "channel",
    csv: Annotated[Path | None, typer.Option("--csv", help="Folder for per_group.csv, summary.csv, pooled.csv.")] = None,
    plot: Annotated[Path | None, typer.Option(
        "--plot", help="Write a PNG of reference vs predicted mean ± SD over gait cycles (needs matplotlib).")] = None,
    grf: Annotated[bool, typer.Option("--grf", help="Score a force-refinement checkpoint: GRF MAE and peak vertical GRF error in % BW per stance.")] = False,
    inpainting_study: Annotated[bool, typer.Option("--inpainting-study", help="With --grf: mask trunk, pelvis, hips, knees, ankles in turn; inpainting vs median filling.")] = False,
    generative: Annotated[str | None, typer.Option("--generative", help="With --grf: diffusion checkpoint for filling (default: the shipped one).")] = None,
    ddim_steps: Annotated[int, typer.Option("--ddim-steps", min=1, max=1000, help="DDIM steps for inpainting.")] = 50,
    as_json: JsonOutput = False,
) -> None:
    """RMSE, MAE, MSE, R2, Pearson r, rRMSE and peak error: per channel, subject or condition; waveform figure.

    With --grf, a force-refinement checkpoint ('default': the shipped pair) is scored on the
    trials' measured forces instead: vertical, anterior-posterior and medial-lateral MAE and peak
    vertical force error in % body weight per stance, averaged per subject, mean ± SD across subjects.
    """
    from gaitcli.eval.evaluate import evaluate_model

    if grf or inpainting_study:
        _evaluate_grf(checkpoint, data, split, generative, inpainting_study, ddim_steps, csv, as_json)
        return

    evaluation = run_mapped(lambda: evaluate_model(checkpoint, data, split, by))
    if csv is not None:
        evaluation.report.to_csv(csv)
    if as_json:
        print(json.dumps(evaluation.report.to_dict(), indent=2))
    else:
        _print(evaluation)
    if plot is not None:
        written = run_mapped(lambda: evaluation.plot_waveforms(plot))
        console.err().print(f"wrote {written}")


def _evaluate_grf(checkpoint, data, split, generative, study, steps, csv, as_json) -> None:
    from gaitcli.eval.grf import evaluate_grf
    from gaitcli.io.parquet import atomic_write_bytes

    rows, summary = run_mapped(lambda: evaluate_grf(checkpoint, generative, data, split, study, steps))
    if csv is not None:
        csv.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(csv / "grf_stances.csv", rows.to_csv(index=False).encode())
        atomic_write_bytes(csv / "grf_summary.csv", summary.to_csv(index=False).encode())
    if as_json:
        print(json.dumps(summary.to_dict("records"), indent=2))
        return
    columns = ["method", "masked", "subjects", "stances"] + [f"{m}_mean" for m in
                                                            ("vertical_mae", "ap_mae", "ml_mae", "peak_vertical_error")]
    if not console.stdout_is_terminal():
        print("\t".join(columns))
        for row in summary.itertuples(index=False):
            print("\t".join(str(getattr(row, c)) if not isinstance(getattr(row, c), float) else f"{getattr(row, c):.4g}"
                            for c in columns))
        return
    from rich.table import Table

    table = Table(title="GRF error, % body weight (mean ± SD across subjects)")
    for c in ("method", "masked", "subjects", "stances", "vertical MAE", "AP MAE", "ML MAE", "peak vertical"):
        table.add_column(c)
    for r in summary.to_dict("records"):
        table.add_row(r["method"], r["masked"], str(r["subjects"]), str(r["stances"]),
                      *(f"{r[m + '_mean']:.1f} ± {r[m + '_sd']:.1f}"
                        for m in ("vertical_mae", "ap_mae", "ml_mae", "peak_vertical_error")))
    console.out().print(table)


def _print(evaluation: Evaluation) -> None:
    table = evaluation.table()
    if evaluation.by == "subject":
        _print_wide(table, title=f"per subject ({table['subject'].nunique()} subjects)")
        return
    strata = list(evaluation.report.by_cols)
    n = int(table["n_subjects"].max()) if len(table) else 0
    title = f"mean ± SD across subjects, by {', '.join(strata)}" if strata else f"mean ± SD across {n} subjects"
    _print_summary(table, strata, title)


def _number(value: object) -> str:
    return "nan" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.3f}"


def _print_wide(table: pd.DataFrame, title: str) -> None:
    """One row per (subject, channel), a column per metric."""
    keys = ["subject", "channel"]
    metrics = [c for c in table.columns if c not in keys]
    if not console.stdout_is_terminal():
        print("\t".join(keys + metrics))
        for row in table.itertuples(index=False):
            print("\t".join([str(row.subject), str(row.channel)] + [f"{getattr(row, m):.6g}" for m in metrics]))
        return
    from rich.table import Table

    rich_table = Table(title=title, show_header=True)
    for column in keys + metrics:
        rich_table.add_column(column, justify="right" if column in metrics else "left")
    for row in table.itertuples(index=False):
        rich_table.add_row(str(row.subject), str(row.channel), *(_number(getattr(row, m)) for m in metrics))
    console.out().print(rich_table)


def _print_summary(summary: pd.DataFrame, strata: list[str], title: str) -> None:
    """mean ± SD per (stratum, channel): wide on a terminal, one line per metric when piped."""
    from gaitcli.eval.evaluate import TABLE_METRICS

    if not console.stdout_is_terminal():
        print("\t".join([*strata, "channel", "metric", "mean", "sd", "n_subjects"]))
        for row in summary.to_dict("records"):
            keys = [str(row[c]) for c in [*strata, "channel", "metric"]]
            print("\t".join(keys + [f"{row['mean']:.6g}", f"{row['sd']:.6g}", str(row["n_subjects"])]))
        return
    from rich.table import Table

    keys = [*strata, "channel"]
    rich_table = Table(title=title, show_header=True)
    for column in keys:
        rich_table.add_column(column)
    for metric in TABLE_METRICS:
        rich_table.add_column(metric, justify="right")
    if strata:  # the number of subjects differs between strata
        rich_table.add_column("n", justify="right")
    for key, rows in summary.groupby(keys, sort=False, dropna=False):
        by_metric = rows.set_index("metric")
        values = [f"{_number(by_metric.at[m, 'mean'])} ± {_number(by_metric.at[m, 'sd'])}"
                  if m in by_metric.index else "" for m in TABLE_METRICS]
        count = [str(int(rows["n_subjects"].max()))] if strata else []
        rich_table.add_row(*(str(k) if str(k) else "(none)" for k in key), *values, *count)
    console.out().print(rich_table)
