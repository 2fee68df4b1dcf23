"""``python -m aioecho`` and the ``aioecho`` console script: the command line."""

from __future__ import annotations

from .process.early import catch_stop_signals


def main() -> None:
    """Run the command line, with the stop signals caught before anything else is imported."""
    catch_stop_signals()
    from .cli import main_entry

    main_entry()


if __name__ == "__main__":
    main()
