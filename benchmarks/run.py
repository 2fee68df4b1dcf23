"""Run the aioecho benchmark suite: ``python benchmarks/run.py [--quick | --smoke]``.

See benchmarks/README.md for what it measures and how to read the results.
"""

from __future__ import annotations

import sys
from pathlib import Path

# The suite package lives beside this script, which runs as a file, not a module.
sys.path.insert(0, str(Path(__file__).resolve().parent))

from suite.cli import main

if __name__ == "__main__":
    sys.exit(main())
