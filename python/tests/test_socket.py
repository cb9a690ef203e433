"""The socket sink against a stand-in listener (the wire protocol of docs/live.md, in a few lines of Python)
and against the real `moescope listen` when the built CLI has it."""
from __future__ import annotations

import io
import json
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Optional

import numpy as np
import pyarrow as pa
import pytest
import torch

import moescope_probe
from conftest import CLI, ROOT
from test_trace import node, read, tiny_mixtral


class StandIn:
    """Accepts producers on loopback; per connection: the hello, and the Arrow stream bytes that followed."""

    def __init__(self, token: Optional[str] = None, port: int = 0) -> None:
        self.token = token
        self.srv = socket.socket()
        self.srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.srv.bind(("127.0.0.1", port))
        self.srv.listen()
        self.port = self.srv.getsockname()[1]
        self.conns: list[tuple[dict, bytes]] = []
        self.open: list[socket.socket] = []
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                c, _ = self.srv.accept()
            except OSError:
                return
            threading.Thread(target=self._one, args=(c,), daemon=True).start()

    def _one(self, c: socket.socket) -> None:
        self.open.append(c)
        f = c.makefile("rb")
        hello = json.loads(f.readline(4097))
        if hello.get("token") != self.token:
            c.sendall(b'{"ok": false, "error": "wrong token"}\n')
            c.close()
            return
        c.sendall(b'{"ok": true}\n')
        data = b""
        try:
            while chunk := f.read1(65536):
                data += chunk
        except OSError:
            pass
        self.conns.append((hello, data))

    def kill(self) -> None:
        """Goes away: stops accepting (shutdown wakes the blocked accept) and drops every connection."""
        try:
            self.srv.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.srv.close()
        self.thread.join(5)
        for c in self.open:
            try:
                c.shutdown(socket.SHUT_RDWR)
                c.close()
            except OSError:
                pass


def rows_of(data: bytes) -> pa.Table:
    return pa.ipc.open_stream(io.BytesIO(data)).read_all()


def test_streams_the_same_rows_as_the_file_sink(tmp_path: Path) -> None:
    server = StandIn(token="s3cret")
    model = tiny_mixtral()
    x = torch.randint(0, 128, (2, 8))
    with moescope_probe.attach(model, f"tcp://127.0.0.1:{server.port}", token="s3cret"), torch.no_grad():
        model(input_ids=x)
    with moescope_probe.attach(model, str(tmp_path / "f.arrows")), torch.no_grad():
        model(input_ids=x)
    deadline = time.time() + 10
    while not server.conns and time.time() < deadline:
        time.sleep(0.05)
    hello, data = server.conns[0]
    assert hello["moescope"] == 1 and hello["rank"] == 0 and hello["world"] == 1 and hello["pid"] == os.getpid()
    got, want = rows_of(data), read(tmp_path / "f.arrows")
    assert got.column("experts").equals(want.column("experts")) and got.column("weights").equals(want.column("weights"))
    assert got.schema.metadata[b"moescope"].startswith(b'{"format":1')
    server.kill()


def test_a_wrong_token_fails_attach(monkeypatch: pytest.MonkeyPatch) -> None:
    server = StandIn(token="right")
    monkeypatch.setenv("MOESCOPE_TOKEN", "wrong")
    with pytest.raises(moescope_probe.ProbeSinkError, match="refused the connection: wrong token"):
        moescope_probe.attach(tiny_mixtral(), f"tcp://127.0.0.1:{server.port}")
    server.kill()


def test_reconnects_after_the_listener_comes_back_and_counts_the_loss() -> None:
    server = StandIn()
    port = server.port
    model = tiny_mixtral()
    probe = moescope_probe.attach(model, f"tcp://127.0.0.1:{port}")
    with torch.no_grad():
        probe.step(0)
        model(input_ids=torch.randint(0, 128, (1, 4)))
        probe.step(1)  # step 0 is complete: sent
        deadline = time.time() + 60
        while probe.writer.stats.batches < 1:
            assert time.time() < deadline, "step 0 was never sent"
            model(input_ids=torch.randint(0, 128, (1, 4)))
            time.sleep(0.2)
        server.kill()
        time.sleep(0.3)
        lost_from = 2
        for s in range(lost_from, lost_from + 3):  # the listener is gone: these steps cannot be delivered
            probe.step(s)
            model(input_ids=torch.randint(0, 128, (1, 4)))
            time.sleep(0.4)
        server2 = StandIn(port=port)
        deadline = time.time() + 20
        s = lost_from + 3
        while probe.writer.sink.connections < 2 and time.time() < deadline:  # type: ignore[attr-defined]
            probe.step(s)
            model(input_ids=torch.randint(0, 128, (1, 4)))
            s += 1
            time.sleep(0.3)
        probe.step(s)
        model(input_ids=torch.randint(0, 128, (1, 4)))
    report = probe.close()
    deadline = time.time() + 10
    while not server2.conns and time.time() < deadline:
        time.sleep(0.05)
    assert server2.conns, "no reconnection"
    hello, data = server2.conns[0]
    t = rows_of(data)  # a new hello and a new schema message on the new connection
    assert t.num_rows > 0
    dropped = [d for d in t.column("dropped").to_pylist() if d]
    assert report.steps_dropped >= 1 and sum(dropped) == report.steps_dropped
    server2.kill()


def _has_listen() -> bool:
    if not CLI.exists():
        return False
    r = subprocess.run([node(), str(CLI), "listen", "--help"], capture_output=True, text=True, cwd=ROOT)
    return r.returncode == 0


@pytest.mark.skipif(not _has_listen(), reason="this build of moescope has no `listen` command yet")
def test_two_ranks_into_the_real_listener(tmp_path: Path) -> None:
    """Two gloo ranks stream to one `moescope listen --record`: every token of both, loads = the sum of theirs."""
    record = tmp_path / "all.arrows"
    lst = subprocess.Popen(
        [node(), str(CLI), "listen", "--port", "0", "--record", str(record), "--no-ui", "--exit-when-idle", "3"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
    )
    port = None
    deadline = time.time() + 60
    assert lst.stderr is not None
    while port is None and time.time() < deadline:
        line = lst.stderr.readline()
        if not line:
            break
        import re

        m = re.search(r"127\.0\.0\.1:(\d+)", line)
        if m:
            port = int(m.group(1))
    assert port, "listen printed no port"
    script = Path(__file__).parent / "two_ranks.py"
    run = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2", str(script),
         f"tcp://127.0.0.1:{port}", str(tmp_path)],
        capture_output=True, text=True, timeout=600,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    out, err = lst.communicate(timeout=120)
    assert lst.returncode == 0, err[-2000:]
    merged = read(record)
    ranks = merged.column("rank").to_numpy()
    own = [np.load(tmp_path / f"ids{r}.npy") for r in range(2)]
    assert sorted(np.unique(ranks).tolist()) == [0, 1]
    for r in range(2):
        assert int((ranks == r).sum()) == own[r].shape[0]
    ids = merged.column("experts").combine_chunks().values.to_numpy().reshape(merged.num_rows, -1)
    want = sum(np.bincount(o.reshape(-1), minlength=8) for o in own)
    assert np.array_equal(np.bincount(ids.reshape(-1), minlength=8), want)
