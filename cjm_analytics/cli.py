"""`cjm`: thin typer commands over the package. Each command parses its options and calls
one library function; no logic lives here."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

from cjm_analytics.errors import CjmError

app = typer.Typer(
    help="cjm-analytics: customer journey maps from what customers actually did.",
    no_args_is_help=True,
    add_completion=False,
)
console = Console()
DEFAULT_CONFIG = Path("data/demo/journey.yaml")
ConfigOption = typer.Option(DEFAULT_CONFIG, "--config", "-c", help="path to journey.yaml")


def fail(error: CjmError) -> None:
    """Print a CjmError for a person and exit with status 2."""
    console.print(f"[bold red]error:[/] {error}")
    raise typer.Exit(code=2)


# --- commands: each section is owned by one area; add yours below its heading -------------

# [generate]

# [ingest]

# [funnel]

# [run / serve / report / query / doctor / demo]


def main() -> None:
    app()


if __name__ == "__main__":
    main()
