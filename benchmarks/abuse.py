"""Abuse scenarios against aioecho on both loops: ``python benchmarks/abuse.py [--quick]``.

See benchmarks/README.md ("Abuse scenarios") for what each scenario does.
"""

from __future__ import annotations

import sys
from pathlib import Path

# The scenarios and the suite they borrow from live beside this script, which
# runs as a file, not a module.
sys.path.insert(0, str(Path(__file__).resolve().parent))

from scenarios.cli import main

if __name__ == "__main__":
    sys.exit(main())
