"""`spi-reminder templates …`."""

import typer

app = typer.Typer(help="Message templates.")
