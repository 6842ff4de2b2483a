"""gait evaluate: the papers' metrics per subject, condition and channel."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from gaitcli.cli import console
from gaitcli.cli.errors import run_mapped
from gaitcli.cli.options import JsonOutput


def evaluate(
    checkpoint: Annotated[str, typer.Argument(help="Checkpoint (.safetensors) or 'default' for the shipped model.")],
    data: Annotated[list[str], typer.Argument(help="Ingest output folders or .parquet files with labels.")],
    split: Annotated[str, typer.Option("--split", help="all, or the checkpoint's test/train/val subjects.")] = "all",
    by: Annotated[str | None, typer.Option("--by", help="Also stratify by a column, e.g. condition.")] = None,
    csv: Annotated[Path | None, typer.Option("--csv", help="Folder for per_group.csv, summary.csv, pooled.csv.")] = None,
    as_json: JsonOutput = False,
) -> None:
    """RMSE, MAE, MSE, R2, Pearson r, rRMSE and peak error per channel: per subject, mean ± SD, pooled."""
    from gaitcli.eval.evaluate import evaluate as run_evaluate

    report = run_mapped(lambda: run_evaluate(checkpoint, data, split, (by,) if by else ()))
    if csv is not None:
        report.to_csv(csv)
    if as_json:
        print(json.dumps(report.to_dict(), indent=2))
        return
    _print(report)


def _print(report) -> None:
    out = console.out()
    summary = report.summary
    wide = summary.pivot_table(index="channel", columns="metric", values="mean", aggfunc="first")
    sd = summary.pivot_table(index="channel", columns="metric", values="sd", aggfunc="first")
    n = int(summary["n_subjects"].max()) if len(summary) else 0
    if console.stdout_is_terminal():
        from rich.table import Table

        table = Table(title=f"mean ± SD across {n} subjects", show_header=True)
        table.add_column("channel")
        for metric in ("rmse", "mae", "r2", "pearson_r", "rrmse", "peak_error"):
            table.add_column(metric)
        for channel in wide.index:
            table.add_row(channel, *(f"{wide.loc[channel, m]:.3f} ± {sd.loc[channel, m]:.3f}"
                                     for m in ("rmse", "mae", "r2", "pearson_r", "rrmse", "peak_error")))
        out.print(table)
    else:
        print("channel\tmetric\tmean\tsd\tn_subjects")
        for row in summary.itertuples(index=False):
            print(f"{row.channel}\t{row.metric}\t{row.mean:.6g}\t{row.sd:.6g}\t{row.n_subjects}")
