"""The thin Typer layer: parse options, call one library function, render the result."""
