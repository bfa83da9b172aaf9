"""What every chaos run shares: seeded faults and 429 storms, seeded kill points, the
kill-and-resume loop, the secret scan and the list of violations.

A run is named by its job and seed. The fault knobs, the storms, the kill points and the input
data are all drawn from generators seeded with ``(job, seed)``, so a failing seed is re-run with
``PLABDATA_CHAOS_SEED=<seed>``. The machine still decides which request a kill interrupts, so a
violation states what was seen, not only the seed.

    >>> run = ChaosRun("backfill", 7, emu, tmp_path, long=False)
    >>> with run.faults(run.draw_faults()):
    ...     run.until_complete(command, kills=run.draw_kills(300),
    ...                        finished=lambda attempt: attempt.returncode == 0)
    >>> run.check(server_count == sent, "…"); run.assert_clean()
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import httpx

from plabdata.emulator import EmulatorHandle, Faults

#: The CLI as a user runs it, in a child process.
CLI = (sys.executable, "-c", "from plabdata.cli import main; main()")
#: How long a Ctrl-C'd job may take to stop (flushing its journal) before it counts as hung.
SIGINT_GRACE_S = 30.0
#: How long one uninterrupted attempt may take.
ATTEMPT_TIMEOUT_S = 240.0
#: Re-runs allowed after an attempt that ended by itself without finishing the job (e.g. rows
#: still failing after the client's retries): "re-run until it completes", within reason.
MAX_RERUNS = 4
#: A violation list longer than this is cut in the failure message (all are counted).
SHOWN = 15


def cli_env(emu: EmulatorHandle, home: Path) -> dict[str, str]:
    """This process's environment with the emulator's ``PLUGINLAB_*`` settings, nothing else
    of plabdata's (a ``PLABDATA_RATE_LIMIT`` of the caller must not shape the child), and
    ``PLABDATA_HOME`` set to ``home`` inside the run's folder: a default journal of the child
    never lands in (or reads from) the user's own ``~/.local/share/plabdata``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PLUGINLAB_", "PLABDATA_"))}
    for line in emu.settings.export_lines():
        name, _, value = line.removeprefix("export ").partition("=")
        env[name] = value
    env["PLABDATA_HOME"] = str(home)
    return env


@dataclass(frozen=True)
class KillPoint:
    """When to signal an attempt: after it made ``after_requests`` contract requests (plus
    ``extra_s``), or ``after_seconds`` after it started (landing anywhere: imports, reading,
    planning, the walk, the writes)."""

    signal: signal.Signals
    after_requests: int | None = None
    after_seconds: float | None = None
    extra_s: float = 0.0

    def __str__(self) -> str:
        where = (
            f"after {self.after_requests} requests + {self.extra_s:.3f}s"
            if self.after_requests is not None
            else f"after {self.after_seconds:.2f}s"
        )
        return f"{self.signal.name} {where}"


@dataclass
class Attempt:
    """One child process: the signal it got (None: it ended by itself) and how it ended."""

    number: int
    signal: str | None
    returncode: int
    seconds: float
    stdout: Path
    stderr: Path
    started_at: float
    hung: bool = False

    def output(self) -> str:
        """Its stdout and stderr, for failure messages."""
        text = self.stdout.read_text(errors="replace") + self.stderr.read_text(errors="replace")
        return text[-3000:]


class _Storms:
    """429 storms while a job runs: now and then the emulator's rate limit drops to a seeded
    low value for a moment, and another job of the same plugin (this thread) empties its
    bucket at once, as a neighbour would; the job meets a burst of 429s, slows down to the
    announced limit and climbs back after the storm. The neighbour's own requests are counted
    apart, so the figures are the job's. Runs on its own control connection and generator."""

    def __init__(self, emu: EmulatorHandle, base: Faults, rng: random.Random) -> None:
        self.handle = EmulatorHandle(emu.url, emu.plugin_id, emu.secret)
        self.settings = emu.settings
        self.base = base
        self.rng = rng
        self.knobs = 0
        self.count = 0
        self.requests = self.rate_limited = self.injected = 0
        self.stop = threading.Event()
        self.thread: threading.Thread | None = None

    def start(self) -> None:
        """Storms from now on: the first after a seeded number of the job's requests, the next
        ones after more."""
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name="chaos-storms", daemon=True)
        self.thread.start()

    def pause(self) -> None:
        """No more storms until :meth:`start`; the base knobs back."""
        self.stop.set()
        if self.thread is not None:
            self.thread.join(timeout=30)
        self.thread = None

    def close(self) -> None:
        self.pause()
        self.handle.close()

    def job_requests(self) -> int:
        """Contract requests served so far, the neighbour's excepted."""
        return int(self.handle.stats()["requests"]) - self.requests

    def _knobs(self, **changes: Any) -> None:
        self.knobs += 1
        seed = self.base.random_seed * 1000 + self.knobs
        self.handle.set_faults(replace(self.base, random_seed=seed, **changes))

    def _run(self) -> None:
        after = self.rng.randint(3, 30)
        while self._wait_for(after):
            rate = float(self.rng.randint(20, 60))
            self._knobs(rate_limit=rate, burst=rate)
            self.count += 1
            asyncio.run(self._drain(int(rate) + 5))
            self.stop.wait(self.rng.uniform(0.3, 1.0))
            self._knobs()
            after = self.rng.randint(40, 150)

    def _wait_for(self, requests: int) -> bool:
        """Wait until the job made ``requests`` more contract requests; False when stopped."""
        goal = self.job_requests() + requests
        while not self.stop.wait(0.01):
            if self.job_requests() >= goal:
                return True
        return False

    async def _drain(self, n: int) -> None:
        url = f"{self.settings.members_url}/members?limit=1"
        self.requests += n  # before they are served: the job's count never includes them
        async with httpx.AsyncClient(headers=self.settings.headers(), timeout=30) as client:
            answers = await asyncio.gather(
                *(client.get(url) for _ in range(n)), return_exceptions=True
            )
        for answer in answers:
            status = getattr(answer, "status_code", 0)
            self.rate_limited += status == 429
            self.injected += status in (500, 502, 503)


@dataclass
class ChaosRun:
    """One seeded run of one job: draws, attempts, findings, figures.

    Attributes:
        job: ``load``, ``import`` or ``backfill``.
        seed: the seed everything is drawn from.
        emu: the emulator (reset by the ``emu`` fixture).
        workdir: where inputs, journals, outputs and the children's stdout/stderr go.
        long: the long mode (more kills per run, kills at any time, not only mid-work).
    """

    job: str
    seed: int
    emu: EmulatorHandle
    workdir: Path
    long: bool
    violations: list[str] = field(default_factory=list)
    attempts: list[Attempt] = field(default_factory=list)
    secrets: dict[str, str] = field(default_factory=dict)
    inputs: set[Path] = field(default_factory=set)
    stats: dict[str, Any] = field(default_factory=dict)
    storms: int = 0
    storm_maker: _Storms | None = None
    mistakes: int = 0
    started: float = field(default_factory=time.monotonic)

    def __post_init__(self) -> None:
        self.rng = random.Random(f"plabdata-chaos:{self.job}:{self.seed}")
        self.secrets.setdefault("the admin secret", self.emu.secret.reveal())

    # -- draws ------------------------------------------------------------------------------

    def draw_faults(self) -> Faults:
        """Every fault kind at once: latency with jitter, 5xx (500/502/503) before processing,
        committed writes whose response is dropped, and a rate limit the client learns from the
        headers — which the storms of :meth:`faults` cut now and then."""
        return Faults(
            latency_ms=round(self.rng.uniform(1, 4), 1),
            jitter_ms=round(self.rng.uniform(5, 20), 1),
            error_rate=round(self.rng.uniform(0.04, 0.12), 3),
            rate_limit=float(self.rng.randint(150, 300)),
            drop_rate=round(self.rng.uniform(0.04, 0.12), 3),
            random_seed=self.seed,
        )

    def draw_kills(self, expected_requests: int) -> list[KillPoint]:
        """Short mode: one SIGKILL and one SIGINT, in a seeded order, each after a seeded
        number of requests. Long mode: one to three kills of either signal; one in five at a
        seeded time instead (which may land before the first request)."""
        if self.long:
            signals = [
                self.rng.choice((signal.SIGKILL, signal.SIGINT))
                for _ in range(self.rng.randint(1, 3))
            ]
        else:
            signals = [signal.SIGKILL, signal.SIGINT]
            self.rng.shuffle(signals)
        points, left = [], expected_requests
        for sig in signals:
            if self.long and self.rng.random() < 0.2:
                points.append(KillPoint(sig, after_seconds=round(self.rng.uniform(0.3, 2.5), 2)))
                continue
            after = self.rng.randint(1, max(2, left // 2))
            points.append(
                KillPoint(sig, after_requests=after, extra_s=round(self.rng.uniform(0, 0.05), 3))
            )
            left = max(8, left - after)
        return points

    # -- running ----------------------------------------------------------------------------

    @contextlib.contextmanager
    def faults(self, base: Faults) -> Iterator[None]:
        """Faults and storms on for the block; the counters are kept in :attr:`stats` and the
        faults cleared on the way out, so the checks read the emulator undisturbed."""
        before = self.emu.stats()
        self.emu.set_faults(base)
        storms = self.storm_maker = _Storms(
            self.emu, base, random.Random(f"plabdata-chaos-storms:{self.seed}")
        )
        try:
            yield
        finally:
            storms.close()
            after = self.emu.stats()
            self.emu.clear_faults()
            self.storms = storms.count
            self.stats = {
                k: after[k] - before[k]
                for k in ("requests", "rateLimited", "injectedErrors", "drops")
            }
            self.stats["requests"] -= storms.requests
            self.stats["rateLimited"] -= storms.rate_limited
            self.stats["injectedErrors"] -= storms.injected
            self.stats["status409"] = int(after["responsesByStatus"].get("409", 0)) - int(
                before["responsesByStatus"].get("409", 0)
            )

    def until_complete(
        self,
        command: Sequence[str],
        *,
        kills: Sequence[KillPoint],
        finished: Callable[[Attempt], bool],
    ) -> Attempt:
        """Run ``command`` in a child; signal it at each kill point in turn and run it again,
        until an attempt ends by itself and ``finished`` says the job is done (a few re-runs
        allowed). Scans every output for secrets after each attempt. Returns the last attempt.
        """
        env = cli_env(self.emu, self.workdir / "plabdata-home")
        queue = list(kills)
        reruns = 0
        while True:
            attempt = self._attempt(command, env, queue[0] if queue else None)
            self.attempts.append(attempt)
            self.scan()
            if attempt.hung and attempt.signal:
                self.violate(
                    f"attempt {attempt.number} did not stop within "
                    f"{SIGINT_GRACE_S:.0f}s of {attempt.signal}"
                )
            elif attempt.hung:
                self.violate(
                    f"attempt {attempt.number} did not end within "
                    f"{ATTEMPT_TIMEOUT_S:.0f}s:\n{attempt.output()}"
                )
            if attempt.signal is not None:
                queue.pop(0)
                continue
            queue.clear()  # it ran to its end: the job has no more "middle" to kill
            if finished(attempt):
                return attempt
            reruns += 1
            if reruns > MAX_RERUNS:
                self.violate(
                    f"the job did not complete in {MAX_RERUNS} re-runs after its "
                    f"kills; last output:\n{attempt.output()}"
                )
                return attempt

    def mistake(self, command: Sequence[str], expect: str, *, reads: bool = False) -> None:
        """An operator's mistake: ``command`` must be refused — a non-zero exit whose output
        says ``expect`` — with every input byte-identical afterwards and, unless ``reads``,
        no contract request at all (``reads``: members may be read, none written)."""
        env = cli_env(self.emu, self.workdir / "plabdata-home")
        before = {path: path.read_bytes() for path in self.inputs if path.is_file()}
        requests = self._job_requests()
        stamps = self._member_stamps() if reads else None
        result = subprocess.run(
            list(command),
            env=env,
            cwd=self.workdir,
            capture_output=True,
            text=True,
            timeout=ATTEMPT_TIMEOUT_S,
        )
        output = result.stdout + result.stderr
        self.mistakes += 1
        label = " ".join(command[len(CLI) :])
        self.check(result.returncode != 0, f"mistake accepted (exit 0): {label}\n{output[-800:]}")
        self.check(expect in output, f"mistake {label}: no {expect!r} in:\n{output[-800:]}")
        self.check("Traceback" not in output, f"mistake {label}: a traceback:\n{output[-2000:]}")
        for path, data in before.items():
            self.check(
                path.is_file() and path.read_bytes() == data,
                f"mistake {label}: the input {path.name} was changed or removed",
            )
        if stamps is None:
            made = self._job_requests() - requests
            self.check(made == 0, f"mistake {label}: {made} requests before the refusal")
        else:
            self.check(self._member_stamps() == stamps, f"mistake {label}: members written")
        self.scan()

    def _member_stamps(self) -> dict[str, int]:
        from plabdata import Admin, load_members

        with Admin(self.emu.settings) as admin:
            frame = load_members(admin, progress=False)
        return dict(zip(frame["member_id"], frame["updated_at"].astype("int64"), strict=True))

    def _attempt(
        self, command: Sequence[str], env: Mapping[str, str], point: KillPoint | None
    ) -> Attempt:
        number = len(self.attempts)
        stdout = self.workdir / f"attempt{number}.stdout"
        stderr = self.workdir / f"attempt{number}.stderr"
        base = self._job_requests()
        started, started_at = time.monotonic(), time.time()
        sent: str | None = None
        hung = False
        storms = self.storm_maker
        with stdout.open("wb") as out, stderr.open("wb") as err:
            child = subprocess.Popen(
                list(command), env=dict(env), cwd=self.workdir, stdout=out, stderr=err
            )
            if storms is not None:
                storms.start()
            try:
                if point is not None and self._reached(child, point, base, started):
                    child.send_signal(point.signal)
                    sent = point.signal.name
                try:
                    child.wait(timeout=SIGINT_GRACE_S if sent else ATTEMPT_TIMEOUT_S)
                except subprocess.TimeoutExpired:
                    hung = True
            finally:
                if child.poll() is None:
                    child.kill()
                child.wait()
                if storms is not None:
                    storms.pause()
        return Attempt(
            number,
            sent,
            child.returncode,
            time.monotonic() - started,
            stdout,
            stderr,
            started_at,
            hung,
        )

    def _job_requests(self) -> int:
        """Contract requests served so far, the storms' neighbour's excepted."""
        storms = self.storm_maker
        return int(self.emu.stats()["requests"]) - (storms.requests if storms else 0)

    def _reached(
        self, child: subprocess.Popen[bytes], point: KillPoint, base: int, started: float
    ) -> bool:
        """Wait for the kill point; False when the child ended first."""
        deadline = started + ATTEMPT_TIMEOUT_S
        while child.poll() is None and time.monotonic() < deadline:
            if point.after_seconds is not None:
                if time.monotonic() - started >= point.after_seconds:
                    return True
            elif self._job_requests() - base >= (point.after_requests or 0):
                time.sleep(point.extra_s)
                return child.poll() is None
            time.sleep(0.01)
        return False

    # -- findings ---------------------------------------------------------------------------

    def violate(self, message: str) -> None:
        """Record one invariant violation (the test fails at :meth:`assert_clean`)."""
        self.violations.append(message)

    def check(self, ok: bool, message: str) -> None:
        """Record ``message`` as a violation unless ``ok``."""
        if not ok:
            self.violate(message)

    def scan(self) -> None:
        """Every file of the work dir but the inputs — stdout/stderr of every attempt, journals
        (with their -wal files), results, reports, rejected rows — must hold no secret."""
        for path in sorted(self.workdir.rglob("*")):
            if not path.is_file() or path in self.inputs:
                continue
            data = path.read_bytes()
            for label, value in self.secrets.items():
                message = f"{label} found in {path.name}"
                if value.encode() in data and message not in self.violations:
                    self.violate(message)

    def figures(self, rows: int, **extra: int) -> dict[str, Any]:
        """The run's counts for the summary and docs/reliability.md (``extra``: the job's own)."""
        signals = [a.signal for a in self.attempts if a.signal]
        return {
            "job": self.job,
            "seed": self.seed,
            "attempts": len(self.attempts),
            "kills": len(signals),
            "sigkill": signals.count("SIGKILL"),
            "sigint": signals.count("SIGINT"),
            "rows": rows,
            "requests": self.stats.get("requests", 0),
            "injected_5xx": self.stats.get("injectedErrors", 0),
            "status_429": self.stats.get("rateLimited", 0),
            "drops": self.stats.get("drops", 0),
            "storms": self.storms,
            "mistakes": self.mistakes,
            "violations": len(self.violations),
            "seconds": round(time.monotonic() - self.started, 1),
            **extra,
        }

    def assert_clean(self) -> None:
        """Fail with every violation, the seed and how to re-run it."""
        if not self.violations:
            return
        kills = ", ".join(
            f"#{a.number}: {a.signal or 'ran to its end'} (rc {a.returncode})"
            for a in self.attempts
        )
        shown = "\n  - ".join(self.violations[:SHOWN])
        more = len(self.violations) - SHOWN
        raise AssertionError(
            f"{self.job} seed {self.seed}: {len(self.violations)} invariant violation(s)\n"
            f"  - {shown}"
            + (f"\n  … and {more} more" if more > 0 else "")
            + f"\nattempts: {kills}\nre-run: PLABDATA_CHAOS_SEED={self.seed} "
            f"python -m pytest tests/chaos -k {self.job}"
        )
