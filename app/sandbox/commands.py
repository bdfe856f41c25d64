"""`spi-reminder sandbox`: the fake Graph API on its own port, and its inbox."""

import typer

app = typer.Typer(help="Local sandbox of Meta's WhatsApp Cloud API.")
