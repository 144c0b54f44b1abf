"""Periodic jobs: expiry of unpaid orders, SLA timers, auto-completion...

Centers return :class:`Job` objects from ``center_jobs``. Inside ``mallcore
serve`` every worker runs a :class:`JobRunner` thread; a job's run is claimed
through a lease row in ``job_leases`` (a conditional UPDATE), so across all
workers each job runs about once per interval. The lease is only an economy:
every job must itself be safe when two runners race (it is also run from
``mallcore jobs run`` by deployments that schedule jobs separately), which
centers get with conditional updates (``UPDATE ... WHERE status = 'x'``).
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Callable
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import msgspec
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from . import tables as t
from .types import utcnow

if TYPE_CHECKING:
    from .db import Database
    from .metrics import Metrics


class Job(msgspec.Struct, frozen=True):
    """``fn(kernel)`` every ``interval`` seconds; returns how many things it did (or None)."""

    name: str
    interval: float
    # Called with the kernel (typed loosely: this module sits below the kernel).
    fn: Callable[[Any], Any]
    description: str = ""


class JobRunner:
    """Runs jobs on a thread, each about once per interval across every runner.

    ``kernel`` is only passed on: it is each job's argument.
    """

    def __init__(
        self,
        db: Database,
        jobs: list[Job],
        *,
        kernel: Any,
        log: Any,
        tick_seconds: float,
        metrics: Metrics | None = None,
    ) -> None:
        self.db = db
        self.metrics = metrics
        self.kernel = kernel
        self.log = log
        self.tick_seconds = tick_seconds
        self.jobs = {job.name: job for job in jobs}
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{id(self):x}"
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def run(self, name: str) -> Any:
        """Run one job now, without a lease (the job is race-safe by contract)."""
        job = self.jobs[name]
        log = self.log.bind(job=name)
        started = time.perf_counter()
        try:
            result = job.fn(self.kernel)
        except Exception:
            log.exception("job.failed")
            if self.metrics is not None:
                self.metrics.job_ran(name, ok=False)
            raise
        if self.metrics is not None:
            self.metrics.job_ran(name, ok=True)
        if result:
            log.info("job.ran", result=result, ms=round((time.perf_counter() - started) * 1000, 1))
        return result

    def claim(self, job: Job) -> bool:
        now = utcnow()
        until = now + timedelta(seconds=job.interval)
        jl = t.job_leases.c
        with self.db.transaction() as conn:
            taken = conn.execute(
                t.job_leases.update()
                .where(jl.name == job.name, sa.or_(jl.expires_at < now, jl.owner == self.owner))
                .where(
                    sa.or_(jl.last_run_at.is_(None), jl.last_run_at <= now - timedelta(seconds=job.interval))
                )
                .values(owner=self.owner, expires_at=until, last_run_at=now)
            ).rowcount
            if taken:
                return True
            exists = conn.execute(sa.select(jl.name).where(jl.name == job.name)).first()
            if exists:
                return False
        try:
            with self.db.transaction() as conn:
                conn.execute(
                    t.job_leases.insert().values(
                        name=job.name, owner=self.owner, expires_at=until, last_run_at=now
                    )
                )
            return True
        except IntegrityError:
            return False

    def tick(self) -> None:
        for job in self.jobs.values():
            if self._stop.is_set():
                return
            try:
                claimed = self.claim(job)
            except Exception:
                self.log.exception("job.claim_failed", job=job.name)
                continue
            if claimed:
                try:
                    self.run(job.name)
                except Exception:
                    pass  # run() logged it; the next interval tries again

    def start(self) -> None:
        if self._thread is not None or not self.jobs:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="mallcore-jobs", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.wait(self.tick_seconds):
            self.tick()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
