"""The ``monai-cwcd`` command (python-fire). Thin: parses, calls library functions, prints."""

from __future__ import annotations

import fire

__all__ = ["main"]

COMMANDS: dict = {}


def main() -> None:
    """Entry point of the ``monai-cwcd`` console script."""
    fire.Fire(COMMANDS, name="monai-cwcd")
