"""The outbox reaches JetStream exactly once per event through a NATS restart and a relay
killed (SIGKILL) in the middle of a batch; the outbox lag in /metrics shows the outage.

Runs a private nats-server (JetStream, file storage) on a free port, never the machine's."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import msgspec
import pytest
import sqlalchemy as sa

from mallcore.kernel import tables as t
from mallcore.kernel import utcnow

NATS_SERVER = shutil.which("nats-server") or "/usr/sbin/nats-server"
MALLCORE = str(Path(sys.executable).parent / "mallcore")

pytestmark = [
    pytest.mark.skipif(not Path(NATS_SERVER).exists(), reason="needs nats-server (JetStream) installed"),
    pytest.mark.skipif(
        not __import__("importlib").util.find_spec("nats"), reason="needs nats-py (the nats extra)"
    ),
    pytest.mark.timeout(240),
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Nats:
    """A private JetStream server whose store survives its restarts."""

    def __init__(self, folder: Path) -> None:
        self.port = free_port()
        self.store = folder / "jetstream"
        self.log = folder / "nats.log"
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def start(self) -> None:
        cmd = [NATS_SERVER, "-js", "-sd", str(self.store), "-a", "127.0.0.1", "-p", str(self.port)]
        self.proc = subprocess.Popen(cmd, stdout=self.log.open("ab"), stderr=subprocess.STDOUT)
        wait_for(lambda: _listening(self.port), 20, "nats-server did not start")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(20)
            self.proc = None


def _listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


def wait_for(check, seconds: float, message: str) -> None:
    deadline = time.time() + seconds
    while not check():
        assert time.time() < deadline, message
        time.sleep(0.05)


def add_events(kernel, n: int, start: int) -> None:
    old = utcnow() - timedelta(seconds=30)
    rows = [
        {"topic": "test.event", "order_id": None, "payload": {"n": start + i}, "created_at": old}
        for i in range(n)
    ]
    with kernel.db.transaction() as conn:
        conn.execute(t.outbox.insert(), rows)


def stream_count(url: str, stream: str) -> int:
    async def count() -> int:
        import nats

        nc = await nats.connect(url, connect_timeout=2, max_reconnect_attempts=0)
        try:
            return (await nc.jetstream().stream_info(stream)).state.messages
        except Exception:
            return 0
        finally:
            await nc.close()

    try:
        return asyncio.run(count())
    except Exception:
        return -1


def read_stream(url: str, stream: str) -> list[int]:
    async def read() -> list[int]:
        import nats

        nc = await nats.connect(url)
        js = nc.jetstream()
        sub = await js.pull_subscribe("relay.>", durable="check", stream=stream)
        ids: list[int] = []
        while True:
            try:
                msgs = await sub.fetch(500, timeout=1)
            except Exception:
                break
            for msg in msgs:
                ids.append(msgspec.json.decode(msg.data)["id"])
                await msg.ack()
        await nc.close()
        return ids

    return asyncio.run(read())


def outbox_ids(kernel) -> list[int]:
    with kernel.db.transaction(write=False) as conn:
        return list(conn.execute(sa.select(t.outbox.c.id).order_by(t.outbox.c.id)).scalars())


def position(kernel) -> int:
    with kernel.db.transaction(write=False) as conn:
        return int(conn.execute(sa.select(t.outbox_cursors.c.position)).scalar() or 0)


def test_relay_delivers_once_through_a_nats_restart_and_a_kill_mid_batch(mallcore, tmp_path):
    kernel = mallcore.kernel(config={"http": {"metrics": {"outbox_relays": ["nats"]}}})
    db = kernel.config.database
    config = tmp_path / "relay.toml"
    schema = f'schema = "{db.schema}"\n' if db.schema else ""
    config.write_text(
        f'[database]\nurl = "{db.url}"\n{schema}migrate_on_start = false\n'
        '[centers]\nenabled = ["catalog", "payment"]\n[jobs]\nenabled = false\n'
        '[logging]\nlevel = "info"\nformat = "json"\n'
    )
    nats = Nats(tmp_path)
    nats.start()
    stream = "RELAYTEST"
    env = {k: v for k, v in os.environ.items() if not k.startswith("MALLCORE_")}
    relay_log = (tmp_path / "relay.log").open("ab")

    def relay(*extra: str) -> subprocess.Popen:
        cmd = [MALLCORE, "--config", str(config), "outbox", "relay", "--nats", nats.url, "--stream", stream]
        cmd += ["--prefix", "relay", "--settle", "0", *extra]
        return subprocess.Popen(cmd, stdout=relay_log, stderr=subprocess.STDOUT, env=env)

    running = relay("--batch", "200")
    try:
        # 1. the relay keeps up, then NATS goes away while events keep coming, then comes back
        add_events(kernel, 500, 0)
        wait_for(lambda: stream_count(nats.url, stream) == 500, 60, "first events never relayed")
        assert kernel.events.outbox_lag(["nats"])["nats"] == 0.0
        nats.stop()
        add_events(kernel, 500, 500)
        time.sleep(2)  # the relay fails, rolls back and retries
        assert running.poll() is None, "the relay died with NATS"
        assert kernel.events.outbox_lag(["nats"])["nats"] >= 29  # the oldest waiting event
        text = mallcore.client(kernel, None).get("/metrics").text
        assert 'mallcore_outbox_lag_seconds{relay="nats"}' in text
        nats.start()
        wait_for(lambda: stream_count(nats.url, stream) == 1000, 90, "events after the restart never relayed")
        wait_for(lambda: position(kernel) == outbox_ids(kernel)[-1], 30, "position never caught up")
        assert kernel.events.outbox_lag(["nats"])["nats"] == 0.0
    finally:
        running.send_signal(signal.SIGKILL)
        running.wait(20)

    # 2. a relay with a big batch killed half-way through publishing it
    add_events(kernel, 3000, 1000)
    before = position(kernel)
    victim = relay("--batch", "3000")
    try:
        wait_for(lambda: stream_count(nats.url, stream) > 1100, 60, "the big batch never started")
    finally:
        victim.send_signal(signal.SIGKILL)
        victim.wait(20)
    published = stream_count(nats.url, stream)
    assert 1000 < published < 4000 and position(kernel) == before  # mid-batch: published, not recorded
    finisher = relay("--batch", "3000", "--once")
    assert finisher.wait(120) == 0
    nats_ids = read_stream(nats.url, stream)
    nats.stop()
    expected = outbox_ids(kernel)
    assert len(expected) == 4000
    assert sorted(nats_ids) == expected  # every event, each once
