"""Starting and stopping vLLM's OpenAI-compatible server for a `vllm:` model with `serve`.

Each replica is one server process, `python -m vllm.entrypoints.openai.api_server` (what
`vllm serve MODEL` runs), on its own port and its own GPUs (CUDA_VISIBLE_DEVICES), with
tensor and pipeline parallelism inside it. The server's output goes to a log file, never to
the terminal. Starting waits for GET /health; a process that exits while starting is
reported with the end of its log. Stopping sends SIGTERM to the server's process group
(vLLM runs its engine in child processes), then SIGKILL after a grace period.

Processes are plain `subprocess.Popen` objects, polled with `asyncio.sleep`: they belong to
no event loop, so a server started in one loop can be stopped from another.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx2

from mindshift.harness.errors import UserError
from mindshift.harness.models.vllm_settings import VllmServeSection

SERVER_MODULE = "vllm.entrypoints.openai.api_server"
HEALTH_POLL_S = 1.0
STOP_GRACE_S = 30.0
LOG_TAIL_LINES = 15


@dataclass(frozen=True)
class ServerPlan:
    """One replica: the command, its environment additions, where it listens and logs."""

    command: list[str]
    env: dict[str, str]
    host: str
    port: int
    log_path: Path
    gpus: list[int] | None = None

    @property
    def root_url(self) -> str:
        """The server's root (where /health and /version are)."""
        # A server bound to every interface is reached through the loopback.
        host = "127.0.0.1" if self.host in ("0.0.0.0", "::", "") else self.host
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self.port}"

    @property
    def base_url(self) -> str:
        """The OpenAI-compatible API under the root."""
        return f"{self.root_url}/v1"


def gpu_groups(serve: VllmServeSection) -> list[list[int] | None]:
    """The GPUs of each replica, split in order from `serve.gpus` (None: all visible)."""
    if serve.gpus is None:
        return [None] * serve.replicas
    per_replica = serve.tensor_parallel_size * serve.pipeline_parallel_size
    return [
        serve.gpus[index * per_replica : (index + 1) * per_replica]
        for index in range(serve.replicas)
    ]


def plan_servers(served_name: str, serve: VllmServeSection) -> list[ServerPlan]:
    """The command line and environment of each replica (`serve.gpus` fits them: checked
    when the section was read)."""
    python = serve.python or sys.executable
    log_dir = Path(serve.log_dir).expanduser() if serve.log_dir else Path(tempfile.gettempdir())
    safe_name = re.sub(r"[^A-Za-z0-9._-]+", "_", served_name)
    plans = []
    for index, gpus in enumerate(gpu_groups(serve)):
        port = serve.port + index
        command = [
            python,
            "-m",
            SERVER_MODULE,
            "--model",
            serve.model or served_name,
            "--served-model-name",
            served_name,
            "--host",
            serve.host,
            "--port",
            str(port),
            "--tensor-parallel-size",
            str(serve.tensor_parallel_size),
            "--pipeline-parallel-size",
            str(serve.pipeline_parallel_size),
            "--logprobs-mode",
            serve.logprobs_mode,
            "--max-logprobs",
            str(serve.max_logprobs),
        ]
        if serve.dtype is not None:
            command += ["--dtype", serve.dtype]
        if serve.max_model_len is not None:
            command += ["--max-model-len", str(serve.max_model_len)]
        if serve.gpu_memory_utilization is not None:
            command += ["--gpu-memory-utilization", str(serve.gpu_memory_utilization)]
        command += list(serve.extra_args)
        env = dict(serve.env)
        if gpus is not None:
            env["CUDA_VISIBLE_DEVICES"] = ",".join(str(gpu) for gpu in gpus)
        plans.append(
            ServerPlan(
                command=command,
                env=env,
                host=serve.host,
                port=port,
                log_path=log_dir / f"mindshift-vllm-{safe_name}-{port}.log",
                gpus=gpus,
            )
        )
    return plans


def port_in_use(host: str, port: int) -> bool:
    """Whether something already accepts connections there (a server left running?)."""
    target = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
    with contextlib.suppress(OSError), socket.create_connection((target, port), timeout=1.0):
        return True
    return False


def log_tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    """The last lines of a server log, joined with ' | ' (for a one-line error)."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return "(no log)"
    kept = [line.strip() for line in text.splitlines() if line.strip()][-lines:]
    return " | ".join(kept) or "(empty log)"


@dataclass
class VllmServer:
    """One vLLM server process started from a plan."""

    plan: ServerPlan
    process: subprocess.Popen[bytes] | None = field(default=None, init=False)

    @property
    def pid(self) -> int | None:
        return None if self.process is None else self.process.pid

    def exited(self) -> bool:
        return self.process is not None and self.process.poll() is not None

    def start(self) -> None:
        """Spawn the server (returns at once; `wait_healthy` waits for it)."""
        if self.process is not None:
            raise RuntimeError("the server was already started")
        if port_in_use(self.plan.host, self.plan.port):
            raise UserError(
                f"port {self.plan.port} is already in use (a vLLM server left running?): stop "
                "it, choose another serve.port, or point base_url at the running server"
            )
        executable = self.plan.command[0]
        if not Path(executable).is_file():
            raise UserError(f"serve.python {executable} does not exist")
        self.plan.log_path.parent.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, **self.plan.env}
        with self.plan.log_path.open("ab") as log:
            # A session of its own: the server and its engine processes are stopped as a
            # group, and a Ctrl-C at the terminal reaches mindshift, which stops them itself.
            self.process = subprocess.Popen(
                self.plan.command,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,
            )

    async def wait_healthy(self, client: httpx2.AsyncClient, timeout_s: float) -> None:
        """Poll GET /health until it answers 200; UserError if the process dies or time runs out."""
        deadline = time.monotonic() + timeout_s
        url = f"{self.plan.root_url}/health"
        while True:
            if self.process is None:
                raise RuntimeError("the server was not started")
            if self.exited():
                raise UserError(
                    f"the vLLM server on port {self.plan.port} exited with code "
                    f"{self.process.returncode} while starting; log {self.plan.log_path}: "
                    f"{log_tail(self.plan.log_path)}"
                )
            with contextlib.suppress(httpx2.TransportError):
                response = await client.get(url, timeout=5.0)
                if response.status_code == 200:
                    return
            if time.monotonic() > deadline:
                raise UserError(
                    f"the vLLM server on port {self.plan.port} was not healthy after "
                    f"{timeout_s:.0f} s (raise serve.startup_timeout_s?); log "
                    f"{self.plan.log_path}: {log_tail(self.plan.log_path)}"
                )
            await asyncio.sleep(HEALTH_POLL_S)

    async def stop(self, grace_s: float = STOP_GRACE_S) -> None:
        """SIGTERM to the server's process group, SIGKILL after `grace_s`; idempotent."""
        process = self.process
        if process is None or process.poll() is not None:
            return
        _signal_group(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + grace_s
        try:
            while process.poll() is None and time.monotonic() < deadline:
                await asyncio.sleep(0.2)
        except asyncio.CancelledError:
            # Stopped while waiting (a second Ctrl-C): no grace left, but no orphan either.
            _signal_group(process.pid, signal.SIGKILL)
            raise
        # The group may outlive its leader (engine processes): kill whatever is left.
        _signal_group(process.pid, signal.SIGKILL)
        while process.poll() is None:
            await asyncio.sleep(0.1)


def _signal_group(pid: int, signum: signal.Signals) -> None:
    # The group is gone once every member has exited: nothing left to signal.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signum)


async def start_servers(
    servers: Sequence[VllmServer], client: httpx2.AsyncClient, timeout_s: float
) -> None:
    """Start every replica and wait until all are healthy; on failure stop them all."""
    try:
        for server in servers:
            server.start()
        await asyncio.gather(*(server.wait_healthy(client, timeout_s) for server in servers))
    except BaseException:
        await stop_servers(servers)
        raise


async def stop_servers(servers: Sequence[VllmServer]) -> None:
    await asyncio.gather(*(server.stop() for server in servers))
