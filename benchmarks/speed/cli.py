"""Guard aioecho's speed: its CPU per round trip against the floor and against C.

``python -m benchmarks speed`` starts, side by side, aioecho on uvloop and on
the stdlib loop (in both builds when a compiled build exists: as installed,
and with ``AIOECHO_NO_EXTENSIONS=1``), the minimal Python protocol
(``benchmarks.servers.minimal_protocol``) on both loops, and the C server
``c/echo_server``. For each load it then runs rounds: in each round every
server in turn is driven by the C load client ``c/echo_load``, the order
rotated from round to round, so that the servers see the same machine. It
prints each server's CPU per round trip (user + system from
``/proc/PID/stat`` over the client's measured window), round trips/s, the
client's own CPU, and the ratios to the C server and to the minimal protocol
on the same loop, each ratio taken within a round and shown as the median
(lowest-highest) over the rounds. Only these ratios compare across runs; the
absolute figures drift with whatever else the machine does.

``--clients`` compares the load clients instead: the harness (``python -m
aioecho bench --processes 1``, in each build, closed loop, and open loop at
80% of the C client's round trips/s) against the C client, both driving the
C server, at 10, 1,000 and 10,000 connections, in alternating rounds: round
trips/s and the client's CPU per round trip, each as a ratio to the C
client's in the same round.

``--instructions`` counts instead, with callgrind, the instructions each
Python server spends per line (one connection, 64-byte lines one at a time
and 16 KiB lines 16 at a time): a figure that the machine's noise cannot
blur, for the part of the work that is the server's own code.
"""

from __future__ import annotations

import argparse
import sys

from ..core import cprograms
from ..core.args import Parser, at_least_two, positive_float
from ..core.load import Load
from ..core.servers import all_running, running
from . import clients, instructions
from .contenders import Contender, aioecho_builds, c_server, contenders
from .tables import clients_table, harnesses, instruction_table, rounds, table

# One line in ``python -m benchmarks --help``.
SUMMARY = "aioecho's CPU per round trip against the minimal protocol and C"
LOADS = (Load(10, 64, 1), Load(1000, 64, 1), Load(10, 16384, 16))
CLIENT_LOADS = (Load(10, 64, 1), Load(1000, 64, 1), Load(10_000, 64, 1))


def compare_clients(options: argparse.Namespace, note: str) -> int:
    builds, _ = aioecho_builds()
    chosen = harnesses(builds)
    names = [clients.C_CLIENT, *(spec.name for spec in chosen)]
    print(
        f"{options.repeats} rounds of {options.duration:g} s (after {options.warmup:g} s of "
        f"warm-up) per load, on the C server; one harness process. {note}.",
        flush=True,
    )
    print(
        "Ratios are taken within each round, then shown as median (lowest-highest); the "
        "open-loop harness runs at 80% of the C client's round trips/s of its round.\n",
        flush=True,
    )
    with running(c_server()) as server:
        for load in CLIENT_LOADS:
            runs = clients.rounds(
                server.port, load, chosen, options.repeats, options.duration, options.warmup
            )
            print(clients_table(load, names, runs) + "\n", flush=True)
    return 0


def add_arguments(cli: Parser) -> None:
    """Rounds, their length, and what to compare instead of the servers."""
    cli.add_argument("--repeats", type=at_least_two, default=3, help="rounds per load (3)")
    cli.add_argument("--duration", type=positive_float, default=1.0, help="measured s (1)")
    cli.add_argument("--warmup", type=positive_float, default=0.3, help="warm-up s (0.3)")
    cli.add_argument(
        "--clients",
        action="store_true",
        help="compare the harness with the C load client instead of the servers",
    )
    cli.add_argument(
        "--instructions",
        action="store_true",
        help="count instructions per line with callgrind instead of timing rounds",
    )


def main(options: argparse.Namespace, cli: Parser) -> int:
    """Compare the servers (or the clients, or count instructions); the exit status."""
    if (why := cprograms.build()) is not None:
        print(f"{cli.prog}: needs the C programs: {why}", file=sys.stderr)
        return 2
    chosen, note = contenders()
    if options.clients:
        return compare_clients(options, note)
    if options.instructions:
        return count_instructions(chosen, note, cli)
    print(
        f"{options.repeats} alternating rounds of {options.duration:g} s (after "
        f"{options.warmup:g} s of warm-up) per load; client: benchmarks/c/echo_load. {note}.",
        flush=True,
    )
    print(
        "Ratios are taken within each round, then shown as median (lowest-highest); "
        "CPU ÷ minimal compares with the minimal protocol on the same loop.\n",
        flush=True,
    )
    with all_running([contender.spec for contender in chosen]) as servers:
        for load in LOADS:
            print(table(load, chosen, rounds(servers, load, options)) + "\n", flush=True)
    return 0


def count_instructions(chosen: list[Contender], note: str, cli: Parser) -> int:
    if (why := instructions.available()) is not None:
        print(f"{cli.prog}: --instructions needs callgrind: {why}", file=sys.stderr)
        return 2
    print(
        "Instructions per line in user space (callgrind; the kernel's share is not counted), "
        f"one connection. {note}.\n",
        flush=True,
    )
    print(instruction_table(chosen), flush=True)
    return 0
