"""What every command module of the CLI shares: the one-line user error."""

from __future__ import annotations

import typer

#: exit status of a user error (bad input, a folder of another run): one line on stderr
EXIT_USER_ERROR = 2


def fail(message: str) -> typer.Exit:
    """Print `framegram: error: message` on stderr; raise the returned Exit."""
    typer.echo(f"framegram: error: {message}", err=True)
    return typer.Exit(EXIT_USER_ERROR)
