"""One abusive client in a process of its own, so that it cannot starve the neighbours' client.

As a script (what :class:`Abuser` runs)::

    python -m benchmarks.scenarios.abuser HOST PORT --line HEX [--rate BYTES_PER_S] --seconds S

it writes the line over and over, flat out (``--rate 0``) or paced at
``--rate`` bytes per second, on one connection, while a second thread reads
and discards the replies. It stops after ``--seconds`` or on SIGTERM, resets
the connection and prints one JSON object: bytes sent and received, seconds,
its CPU time, and whether the server closed the connection.
"""

from __future__ import annotations

import argparse
import json
import resource
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from typing import Any

from ..core.servers import child_env

WRITE_BLOCK = 65536
READ_BLOCK = 1 << 20
# Socket timeout: how often the threads look at the stop flag while blocked.
POLL_S = 0.1
PACE_S = 0.01  # a paced abuser sends rate * PACE_S bytes every PACE_S
STOP_TIMEOUT = 10.0


class Abuser:
    """The abusive client's process: started on creation, :meth:`stop` returns its figures."""

    def __init__(self, host: str, port: int, line: bytes, rate: float, seconds: float) -> None:
        command = [
            sys.executable, "-m", __spec__.name, host, str(port), "--line", line.hex(),
            "--rate", str(rate), "--seconds", str(seconds),
        ]  # fmt: skip
        self.process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, env=child_env())

    def stop(self) -> dict[str, Any]:
        """SIGTERM, then its report; a process that does not answer is killed."""
        if self.process.poll() is None:
            self.process.terminate()
        try:
            out, _ = self.process.communicate(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.communicate()
            raise RuntimeError("the abusive client did not stop") from None
        if not out.strip():
            raise RuntimeError(f"the abusive client failed (exit status {self.process.returncode})")
        report: dict[str, Any] = json.loads(out)
        return report

    def __enter__(self) -> Abuser:
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()


class _Flood:
    def __init__(self, sock: socket.socket, line: bytes, rate: float) -> None:
        self.sock = sock
        self.block = line * max(1, WRITE_BLOCK // len(line))
        self.rate = rate
        self.stop = threading.Event()
        self.sent = 0
        self.received = 0
        self.closed_by_server = False

    def write(self) -> None:
        start = time.monotonic()
        while not self.stop.is_set():
            if self.rate:
                due = int(self.rate * (time.monotonic() - start)) - self.sent
                if due <= 0:
                    time.sleep(PACE_S)
                    continue
                chunk = (self.block * (1 + due // len(self.block)))[:due]
            else:
                chunk = self.block
            if not self._send(chunk):
                return

    def _send(self, chunk: bytes) -> bool:
        try:
            self.sent += self.sock.send(chunk)
        except TimeoutError:
            pass
        except OSError:
            self.closed_by_server = True
            return False
        return True

    def read(self) -> None:
        while not self.stop.is_set():
            try:
                data = self.sock.recv(READ_BLOCK)
            except TimeoutError:
                continue
            except OSError:
                data = b""
            if not data:
                self.closed_by_server = True
                return
            self.received += len(data)


def main() -> int:
    cli = argparse.ArgumentParser(description="one abusive client")
    cli.add_argument("host")
    cli.add_argument("port", type=int)
    cli.add_argument("--line", type=bytes.fromhex, required=True, help="the line, in hex")
    cli.add_argument("--rate", type=float, default=0.0, help="bytes/s; 0 = flat out")
    cli.add_argument("--seconds", type=float, required=True, help="stop after this long")
    options = cli.parse_args()
    sock = socket.create_connection((options.host, options.port), timeout=5)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.settimeout(POLL_S)
    flood = _Flood(sock, options.line, options.rate)
    signal.signal(signal.SIGTERM, lambda *_: flood.stop.set())
    signal.signal(signal.SIGINT, lambda *_: flood.stop.set())
    threads = [threading.Thread(target=work) for work in (flood.write, flood.read)]
    start = time.monotonic()
    for thread in threads:
        thread.start()
    flood.stop.wait(options.seconds)
    flood.stop.set()
    for thread in threads:
        thread.join()
    seconds = time.monotonic() - start
    # Reset rather than close: nothing is left for the server to flush.
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()
    usage = resource.getrusage(resource.RUSAGE_SELF)
    report = {
        "sent": flood.sent,
        "received": flood.received,
        "seconds": seconds,
        "cpu": (usage.ru_utime + usage.ru_stime) / seconds,
        "closed_by_server": flood.closed_by_server,
    }
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
