"""Where the trace goes: a file (an Arrow IPC stream trace) or a `moescope listen` socket.

Both write whole IPC messages with one system call each (a schema, a record batch, the end-of-stream marker), so
a reader following a growing file never waits on half a batch for long, and a killed producer leaves a file that
reads back up to its last batch.

Socket protocol (HELPERS.md / docs/live.md): one hello line of JSON, one answer line, then an Arrow IPC stream.
A listener that goes away is reconnected with exponential backoff (0.1 s … 5 s); each new connection starts with
a new hello and a new schema message. Batches that could not be sent are reported as lost (the caller counts the
steps in them as dropped). A refused hello (wrong token) is final: nothing more is sent.
"""
from __future__ import annotations

import json
import os
import socket
import time
from typing import Optional, Protocol, Union

import pyarrow as pa

HELLO_MAX = 4096


class ProbeSinkError(RuntimeError):
    """The sink cannot be used (bad address, refused token)."""


class _Collect:
    """A file-like object that gathers pyarrow's writes so that each message leaves in one system call."""

    def __init__(self) -> None:
        self.parts: list[bytes] = []
        self.closed = False

    def write(self, data: Union[bytes, memoryview, pa.Buffer]) -> int:
        b = data.to_pybytes() if isinstance(data, pa.Buffer) else bytes(data)
        self.parts.append(b)
        return len(b)

    def flush(self) -> None:
        pass

    def close(self) -> None:
        self.closed = True

    def take(self) -> bytes:
        out = b"".join(self.parts)
        self.parts.clear()
        return out


class Sink(Protocol):
    """What the background writer needs from a destination."""

    def send(self, schema: pa.Schema, batch: Optional[pa.RecordBatch]) -> bool:
        """Writes `batch` (None: only make sure the stream is open). False when it was lost."""
        ...

    def close(self) -> None:
        """Writes the end-of-stream marker and closes."""
        ...

    def describe(self) -> str:
        ...


class _IpcOut:
    """An IPC stream writer over _Collect; `emit` receives every finished message's bytes."""

    def __init__(self, schema: pa.Schema) -> None:
        self.buf = _Collect()
        self.writer = pa.ipc.new_stream(self.buf, schema)

    def schema_bytes(self) -> bytes:
        return self.buf.take()

    def batch_bytes(self, batch: pa.RecordBatch) -> bytes:
        self.writer.write_batch(batch)
        return self.buf.take()

    def end_bytes(self) -> bytes:
        self.writer.close()
        return self.buf.take()


class FileSink:
    """Writes a trace file directly at `path` (not atomically: it is meant to be read while it grows)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._fd: Optional[int] = None
        self._ipc: Optional[_IpcOut] = None
        # Fail now (in attach), not on the first batch: a folder that does not exist, no permission.
        try:
            self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        except OSError as e:
            raise ProbeSinkError(f"moescope-probe: cannot create trace {path}: {e.strerror}") from None

    def describe(self) -> str:
        return self.path

    def _write(self, data: bytes) -> None:
        assert self._fd is not None
        view = memoryview(data)
        while view:
            n = os.write(self._fd, view)
            view = view[n:]

    def send(self, schema: pa.Schema, batch: Optional[pa.RecordBatch]) -> bool:
        if self._fd is None:
            return False
        if self._ipc is None:
            self._ipc = _IpcOut(schema)
            self._write(self._ipc.schema_bytes())
        if batch is not None:
            self._write(self._ipc.batch_bytes(batch))
        return True

    def close(self) -> None:
        if self._fd is None:
            return
        if self._ipc is not None:
            self._write(self._ipc.end_bytes())
        os.close(self._fd)
        self._fd = None


def parse_address(sink: str) -> Optional[tuple[str, Union[tuple[str, int], str]]]:
    """("tcp", (host, port)) for tcp://HOST:PORT, ("unix", path) for unix:PATH, None for a file path."""
    if sink.startswith("tcp://"):
        rest = sink[len("tcp://") :].rstrip("/")
        host, sep, port = rest.rpartition(":")
        if not sep or not port.isdigit() or not host:
            raise ProbeSinkError(f"moescope-probe: {sink!r} is not tcp://HOST:PORT")
        return "tcp", (host.strip("[]"), int(port))
    if sink.startswith("unix:"):
        path = sink[len("unix:") :]
        if path.startswith("//"):
            path = path[2:]
        if not path:
            raise ProbeSinkError(f"moescope-probe: {sink!r} names no socket path")
        return "unix", path
    return None


class SocketSink:
    """Streams to `moescope listen` over TCP or a unix socket (wire protocol: hello line, answer, IPC stream)."""

    BACKOFF_MIN = 0.1
    BACKOFF_MAX = 5.0

    def __init__(self, address: str, token: Optional[str], rank: int, world: int, connect_timeout: float = 5.0) -> None:
        parsed = parse_address(address)
        if parsed is None:
            raise ProbeSinkError(f"moescope-probe: {address!r} is not a socket address")
        self.address = address
        self.kind, self.target = parsed
        self.token = token
        self.rank = rank
        self.world = world
        self.timeout = connect_timeout
        self._sock: Optional[socket.socket] = None
        self._ipc: Optional[_IpcOut] = None
        self._backoff = self.BACKOFF_MIN
        self._next_try = 0.0
        self.refused: Optional[str] = None
        self.connections = 0
        self.last_error: Optional[str] = None
        # The first connection is made now so that a wrong token or address fails attach(), not the first step.
        try:
            self._connect()
        except ProbeSinkError:
            raise
        except OSError as e:
            self.last_error = f"cannot reach {address}: {e.strerror or e}"
            self._schedule_retry()

    def describe(self) -> str:
        return self.address

    def _hello(self) -> bytes:
        msg = {
            "moescope": 1,
            "token": self.token,
            "rank": self.rank,
            "world": self.world,
            "host": socket.gethostname(),
            "pid": os.getpid(),
        }
        line = json.dumps(msg, separators=(",", ":")).encode() + b"\n"
        if len(line) > HELLO_MAX:
            raise ProbeSinkError("moescope-probe: the hello line is longer than 4 KiB (token too long?)")
        return line

    def _connect(self) -> None:
        if self.kind == "tcp":
            assert isinstance(self.target, tuple)
            s = socket.create_connection(self.target, timeout=self.timeout)
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        else:
            assert isinstance(self.target, str)
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.settimeout(self.timeout)
            try:
                s.connect(self.target)
            except OSError:
                s.close()
                raise
        try:
            s.sendall(self._hello())
            answer = _read_line(s, HELLO_MAX)
        except OSError:
            s.close()
            raise
        try:
            reply = json.loads(answer)
        except ValueError:
            s.close()
            raise OSError(f"the listener answered {answer[:80]!r}, not JSON") from None
        if not isinstance(reply, dict) or reply.get("ok") is not True:
            s.close()
            why = reply.get("error", "refused") if isinstance(reply, dict) else "refused"
            self.refused = str(why)
            raise ProbeSinkError(f"moescope-probe: {self.address} refused the connection: {why}")
        s.settimeout(None)  # sends block only as long as the socket's buffer is full (the thread's own time)
        self._sock = s
        self._ipc = None
        self._backoff = self.BACKOFF_MIN
        self.connections += 1

    def _schedule_retry(self) -> None:
        self._next_try = time.monotonic() + self._backoff
        self._backoff = min(self.BACKOFF_MAX, self._backoff * 2)

    def _drop_connection(self, why: str) -> None:
        self.last_error = why
        if self._sock is not None:
            try:
                self._sock.close()
            except OSError:
                pass
        self._sock = None
        self._ipc = None
        self._schedule_retry()

    def send(self, schema: pa.Schema, batch: Optional[pa.RecordBatch]) -> bool:
        if self.refused is not None:
            return False
        if self._sock is None:
            if time.monotonic() < self._next_try:
                return False
            try:
                self._connect()
            except ProbeSinkError:
                return False
            except OSError as e:
                self.last_error = f"cannot reach {self.address}: {e.strerror or e}"
                self._schedule_retry()
                return False
        assert self._sock is not None
        try:
            if self._ipc is None:
                self._ipc = _IpcOut(schema)
                self._sock.sendall(self._ipc.schema_bytes())
            if batch is not None:
                self._sock.sendall(self._ipc.batch_bytes(batch))
            return True
        except OSError as e:
            self._drop_connection(f"connection to {self.address} lost: {e.strerror or e}")
            return False

    def close(self) -> None:
        if self._sock is None:
            return
        try:
            if self._ipc is not None:
                self._sock.sendall(self._ipc.end_bytes())
            self._sock.shutdown(socket.SHUT_WR)
            # Wait (briefly) for the listener to close its side: it has then read everything sent.
            self._sock.settimeout(2.0)
            while self._sock.recv(4096):
                pass
        except OSError:
            pass
        finally:
            self._sock.close()
            self._sock = None


def _read_line(s: socket.socket, limit: int) -> str:
    data = b""
    while not data.endswith(b"\n"):
        chunk = s.recv(1)
        if not chunk:
            raise OSError("the listener closed the connection without answering the hello")
        data += chunk
        if len(data) > limit:
            raise OSError("the listener's answer is longer than 4 KiB")
    return data.decode("utf-8", "replace").strip()
