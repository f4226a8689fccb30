"""A real redis-server on a free loopback port, started and stopped by the tests and by the load benchmark."""

from __future__ import annotations

import shutil
import subprocess
import threading
from pathlib import Path
from typing import IO


class RedisServer:
    """A real redis-server on a free loopback port, in its own folder, for the tests.

    Append-only with a sync per write, so that stopping and starting it again (Redis going away and
    coming back) keeps what was written, as a deployed Redis with persistence does.
    """

    def __init__(self, folder: Path, port: int, password: str | None = None) -> None:
        self.folder = folder
        self.port = port
        self.password = password
        self.url = f"redis://{f':{password}@' if password else ''}127.0.0.1:{port}/0"
        self.process: subprocess.Popen[str] | None = None

    def start(self) -> None:
        """Start it and return once it accepts connections (its own log line says so)."""
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is not on PATH (Debian: apt-get install redis-server)")
        self.folder.mkdir(parents=True, exist_ok=True)
        config = ["--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.folder), "--save", ""]
        config += ["--appendonly", "yes", "--appendfsync", "always", "--daemonize", "no", "--loglevel", "notice"]
        config += ["--requirepass", self.password] if self.password else []
        self.process = subprocess.Popen([binary, *config], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        ready = threading.Event()
        seen: list[str] = []

        def read_log(stream: IO[str]) -> None:  # drained to the end, so the pipe never fills
            for line in stream:
                seen.append(line)
                if "Ready to accept connections" in line:
                    ready.set()
            ready.set()  # it exited

        assert self.process.stdout is not None
        threading.Thread(target=read_log, args=(self.process.stdout,), daemon=True).start()
        ready.wait(30)
        if self.process.poll() is not None or not any("Ready to accept" in line for line in seen):
            raise RuntimeError(f"redis-server did not start on port {self.port}: {''.join(seen)[-800:]}")

    def stop(self) -> None:
        """SIGTERM: Redis writes out what it holds and exits."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(30)
        self.process = None
