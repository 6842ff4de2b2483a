"""The ``gait`` command: one Typer app, one module per subcommand."""

from __future__ import annotations

import os
from typing import Annotated

import typer

from gaitcli import __version__
from gaitcli.cli import benchmark as benchmark_cmd
from gaitcli.cli import evaluate as evaluate_cmd
from gaitcli.cli import finetune as finetune_cmd
from gaitcli.cli import ingest as ingest_cmd
from gaitcli.cli import inspect as inspect_cmd
from gaitcli.cli import predict as predict_cmd
from gaitcli.cli import pretrain as pretrain_cmd

app = typer.Typer(
    name="gait",
    help="Joint moments and ground reaction forces from kinematics: lab exports in, models and results out.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        print(f"gait {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks instead of one-line errors.")] = False,
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                          help="Print the version and exit.")] = False,
) -> None:
    """gait: from C3D and OpenSim exports to joint moments, with deep sequence models."""
    if debug:
        os.environ["GAIT_DEBUG"] = "1"


app.command("ingest")(ingest_cmd.ingest)
app.command("inspect")(inspect_cmd.inspect)
app.command("pretrain")(pretrain_cmd.pretrain)
app.command("finetune")(finetune_cmd.finetune)
app.command("predict")(predict_cmd.predict)
app.command("evaluate")(evaluate_cmd.evaluate)
app.command("benchmark")(benchmark_cmd.benchmark)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
