"""The leak scan: secrets never reach logs, exceptions, reprs, journals, results or exports.

One run drives every job plabdata has — loaders, a member import with passwords (sheet → plan
→ apply, journaled, under injected faults, resumed), an events backfill (journaled, faulted,
re-run), a bulk identity refresh, failing token verifications and failing webhooks — with
logging at DEBUG captured three ways (pytest's ``caplog``, a root handler writing a file, and
the process's stdout/stderr). Then everything that came out is searched for:

- the admin secret (and a wrong one tried along the way),
- every member password of the import sheet (``pw-<uuid4>``),
- every identity access / refresh token the emulator held before or after the run (fetched
  *after* the scan window, in a separate step),
- the webhook secrets, the HMACs a forger would need, and the user tokens verified.

Files are searched as bytes and also decoded: XLSX unzipped, Parquet read back, SQLite
tables dumped (as well as the raw database, WAL and lock files). The scanner proves it can
fail: a canary written to a scratch file and to the log must be found.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import io
import json
import logging
import secrets
import sqlite3
import traceback
import uuid
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import fields, is_dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pandas as pd
import pyarrow.parquet as pq
import pytest

import plabdata
from plabdata import PlabdataError, Secret
from plabdata.emulator import EmulatorHandle, running
from plabdata.members._identities import refresh_identities
from plabdata.members._loaders import (
    load_identities,
    load_member_base,
    load_members,
    load_quota_usage,
)
from plabdata.tables._export import export_frame

SQLITE_MAGIC = b"SQLite format 3\x00"
PARQUET_MAGIC = b"PAR1"


def _distinct(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex}"


# ---------------------------------------------------------------------------- the scanner


def _variants(needle: str) -> set[str]:
    """The forms a leaked value could take in text: as is, URL- and JSON-encoded, base64."""
    forms = {needle, quote(needle, safe=""), json.dumps(needle)[1:-1]}
    forms.add(base64.b64encode(needle.encode()).decode().rstrip("="))
    return {form.lower() for form in forms}


def _decoded_views(name: str, data: bytes) -> Iterator[tuple[str, str]]:
    """Text views of a file: raw bytes (UTF-8 and UTF-16), plus its decoded content."""
    yield name, data.decode("utf-8", errors="replace")
    yield f"{name} (utf-16)", data.decode("utf-16-le", errors="replace")
    if data.startswith(b"PK"):
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            for member in archive.namelist():
                yield from _decoded_views(f"{name}!{member}", archive.read(member))
    if data.startswith(PARQUET_MAGIC):
        table = pq.read_table(io.BytesIO(data))
        yield f"{name} (parquet rows)", table.to_pandas().to_csv()
        yield f"{name} (parquet metadata)", repr(table.schema.metadata)
    if data.startswith(SQLITE_MAGIC):
        yield f"{name} (sqlite tables)", _dump_sqlite(Path(name))


def _dump_sqlite(path: Path) -> str:
    connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        lines = []
        tables = connection.execute("SELECT name, sql FROM sqlite_master").fetchall()
        for table, sql in tables:
            lines.append(repr(sql))
            if sql and sql.upper().startswith("CREATE TABLE"):
                for row in connection.execute(f'SELECT * FROM "{table}"'):
                    lines.append(repr(row))
        return "\n".join(lines)
    finally:
        connection.close()


def _views_of_files(root: Path) -> Iterator[tuple[str, str]]:
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        yield from _decoded_views(str(path), path.read_bytes())


def _views_of_object(label: str, value: object, depth: int = 0) -> Iterator[tuple[str, str]]:
    """repr / str of an object, its HTML repr, its tables, its fields — recursively."""
    yield label, repr(value)
    yield f"{label} (str)", str(value)
    if isinstance(value, BaseException):
        yield f"{label} (traceback)", "".join(traceback.format_exception(value))
        yield f"{label} (args)", repr(value.args)
    if isinstance(value, pd.DataFrame):
        yield f"{label} (csv)", value.to_csv()
        yield f"{label} (attrs)", repr(value.attrs)
        return
    html = getattr(value, "_repr_html_", None)
    if callable(html):
        yield f"{label} (html)", str(html())
    if depth >= 3:
        return
    children: dict[str, object] = {}
    if is_dataclass(value) and not isinstance(value, type):
        children = {f.name: getattr(value, f.name) for f in fields(value)}
    elif isinstance(value, BaseException) or (
        hasattr(value, "__dict__") and type(value).__module__.startswith("plabdata")
    ):
        children = dict(vars(value))
    elif isinstance(value, dict):
        children = {str(k): v for k, v in value.items()}
    elif isinstance(value, list | tuple):
        children = {str(i): v for i, v in enumerate(value)}
    for key, child in children.items():
        if not isinstance(child, str | int | float | bool | type(None)):
            yield from _views_of_object(f"{label}.{key}", child, depth + 1)


def scan(views: Iterator[tuple[str, str]], needles: dict[str, str]) -> list[tuple[str, str]]:
    """(where, which needle) for every needle found in any view (case-insensitive)."""
    forms = {name: _variants(value) for name, value in needles.items()}
    hits = []
    for where, text in views:
        lowered = text.lower()
        for name, variants in forms.items():
            if any(form in lowered for form in variants):
                hits.append((where, name))
    return hits


# ---------------------------------------------------------------------------- the run


class RecordingSecrets:
    """Stands in for the ``secrets`` module in ``plabdata.members._apply``: remembers every value it
    makes, so the passwords generated for sheet rows without one become needles too."""

    def __init__(self) -> None:
        self.made: list[str] = []

    def __getattr__(self, name: str) -> Any:
        real = getattr(secrets, name)
        if not callable(real):
            return real

        def recording(*args: Any, **kwargs: Any) -> Any:
            value = real(*args, **kwargs)
            if isinstance(value, str) and len(value) >= 16:
                self.made.append(value)
            return value

        return recording


class Run:
    """Everything the jobs returned or raised, and the files they wrote."""

    def __init__(self, root: Path) -> None:
        self.inputs = root / "inputs"  # holds the passwords on purpose: not scanned
        self.out = root / "artifacts"
        self.inputs.mkdir()
        self.out.mkdir()
        self.returned: list[tuple[str, object]] = []

    def keep(self, label: str, value: object) -> Any:
        self.returned.append((label, value))
        return value

    def raises(self, label: str, call: Callable[[], object]) -> BaseException:
        try:
            value = call()
        except PlabdataError as exc:
            self.returned.append((label, exc))
            return exc
        raise AssertionError(f"{label}: expected an error, got {value!r}")

    def export(self, name: str, frame: pd.DataFrame) -> None:
        for suffix in (".parquet", ".csv", ".xlsx"):
            export_frame(frame, self.out / f"{name}{suffix}")


def _write_sheet(run: Run, members: pd.DataFrame, passwords: list[str]) -> Path:
    existing = members["email"].dropna().tolist()
    rows = [
        {"Email": f"new{i}@leak.example", "Name": f"New {i}", "Password": passwords[i]}
        for i in range(6)
    ]
    rows += [
        # an existing member, renamed, with a password the API cannot set on an update
        {"Email": existing[0], "Name": "Renamed", "Password": passwords[6]},
        {"Email": "not-an-email", "Name": "Bad", "Password": passwords[7]},
        {"Email": "verified@leak.example", "Verified": "maybe", "Password": passwords[8]},
        {"Email": "taken@leak.example", "Name": "Taken", "Password": passwords[9]},
        {"Email": "generated@leak.example", "Name": "No password given"},
    ]
    frame = pd.DataFrame(rows, columns=["Email", "Name", "Verified", "Password"])
    frame.to_csv(run.inputs / "members.csv", index=False)
    frame.to_excel(run.inputs / "members.xlsx", index=False)
    return run.inputs / "members.csv"


def _write_events(run: Run, emails: list[str]) -> Path:
    rows = [
        {
            "timestamp": f"2026-10-05T00:{i % 60:02d}:00Z",
            "email": email,
            "source": "WEB_UI",
            "country": "FR",
            "in_quota": "yes",
        }
        for i, email in enumerate(emails * 2)
    ]
    rows += [
        {"timestamp": "yesterday-ish", "email": emails[0], "source": "WEB_UI"},
        {"timestamp": "2026-10-05T01:00:00Z", "email": "stranger@leak.example"},
        {"timestamp": "2026-10-05T01:00:00Z", "email": emails[1], "country": "ZZZ"},
    ]
    path = run.inputs / "events.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def _import_members(run: Run, admin: plabdata.Admin, emu: EmulatorHandle, passwords: list[str]):
    from plabdata.members._apply import apply_plan
    from plabdata.members._plan import Plan, plan_member_changes
    from plabdata.members._sheet import read_member_sheet

    members = load_members(admin, progress=False)
    sheet_path = _write_sheet(run, members, passwords)
    sheet = run.keep("sheet", read_member_sheet(sheet_path))
    run.keep("sheet (xlsx)", read_member_sheet(run.inputs / "members.xlsx"))
    run.keep("sheet.original_rows", sheet.original_rows(sheet.invalid_rows))
    run.export("sheet_issues", sheet.issues)
    plan = run.keep("plan", plan_member_changes(sheet, members, plugin_id=emu.plugin_id))
    run.keep("plan.describe", plan.describe())
    run.keep("plan.frame", plan.to_frame())
    run.export("plan", plan.to_frame())
    saved = plan.save(run.out / "plan.json")
    loaded = run.keep("plan (loaded)", Plan.load(saved))
    run.raises("apply without passwords", lambda: apply_plan(admin, loaded, progress=False))
    run.keep("dry run", apply_plan(admin, plan, dry_run=True, progress=False))

    # Taken meanwhile: its create fails with a conflict, which must not quote the password.
    admin.create_member("taken@leak.example", "pw-unrelated-123456")
    journal = run.out / "members.journal.sqlite"
    emu.set_faults(error_rate=0.25, drop_rate=0.25, random_seed=5)
    try:
        first = apply_plan(admin, plan, journal=journal, concurrency=4, progress=True)
    finally:
        emu.clear_faults()
    run.keep("apply results", first)
    run.export("apply_results", first)
    again = loaded.with_passwords(read_member_sheet(sheet_path))
    second = run.keep("apply (resumed)", apply_plan(admin, again, journal=journal, progress=True))
    run.export("apply_results_resumed", second)
    # Its create met the 409 (stale / failed) — or, when an injected 5xx came first, was
    # resolved by the email lookup as in-doubt-resolved. Either way it was not a clean "done".
    taken = first.loc[first["email"] == "taken@leak.example"].iloc[0]
    assert taken["status"] != "done"


def _backfill(run: Run, admin: plabdata.Admin, emu: EmulatorHandle) -> None:
    from plabdata.events._backfill import backfill_events

    members = load_members(admin, progress=False)
    events = _write_events(run, members["email"].dropna().tolist()[:12])
    journal = run.out / "events.journal.sqlite"
    common = {"journal": journal, "source_name": "WEB_UI", "concurrency": 4}
    run.keep(
        "backfill dry run",
        backfill_events(
            admin,
            events,
            dry_run=True,
            report_path=run.out / "dry_rows.parquet",
            rejects_path=run.out / "dry_rejects.csv",
            **common,
        ),
    )
    emu.set_faults(error_rate=0.25, drop_rate=0.2, random_seed=9)
    try:
        report = backfill_events(
            admin,
            events,
            report_path=run.out / "rows.parquet",
            rejects_path=run.out / "rejects.csv",
            load_quota=True,
            **common,
        )
    finally:
        emu.clear_faults()
    rerun = backfill_events(
        admin,
        events,
        report_path=run.out / "rows2.parquet",
        rejects_path=run.out / "rejects2.csv",
        **common,
    )
    for label, value in (("backfill", report), ("backfill rerun", rerun)):
        run.keep(label, value)
        run.keep(f"{label}.summary", value.summary())
        run.keep(f"{label}.rows", value.rows())
        run.keep(f"{label}.rejected", value.rejected())
    run.export("backfill_rows", report.rows())


def _identity_tokens_via_http(emu: EmulatorHandle, member_ids: list[str]) -> set[str]:
    """Every token the emulator holds, read with plain httpx (no plabdata, no logging)."""
    settings = emu.settings
    found: set[str] = set()
    with httpx.Client(headers=settings.headers()) as http:
        for member_id in member_ids:
            body = http.get(f"{settings.members_url}/members/{member_id}/identities").json()
            for identity in body.values():
                found.update(identity.get(k) for k in ("accessToken", "refreshToken"))
    return {token for token in found if token}


def _run_everything(run: Run, emu: EmulatorHandle, passwords: list[str], extra: dict[str, str]):
    settings = emu.settings
    admin = run.keep("admin", plabdata.connect(settings))
    try:
        run.keep("settings", settings)
        run.keep("async admin", admin.aio)
        run.keep("export lines", settings.export_lines(include_secret=False))
        members = run.keep("members", load_members(admin))
        run.keep("identities", load_identities(admin, members))
        run.keep("quota", load_quota_usage(admin, members))
        base = run.keep("member base", load_member_base(admin, progress=False))
        run.export("member_base", base)
        run.export("identities", load_identities(admin, members, progress=False))

        run.raises(
            "create conflict", lambda: admin.create_member(members["email"].iloc[0], passwords[10])
        )
        run.raises("create refused", lambda: admin.create_member("no email", passwords[11]))
        wrong = settings.replace(secret=Secret(extra["wrong admin secret"]), max_attempts=1)
        with plabdata.connect(wrong) as denied:
            run.raises("wrong secret", lambda: denied.get_member(members["member_id"].iloc[0]))
        nowhere = settings.replace(auth_url="http://127.0.0.1:9", max_attempts=1)
        with plabdata.connect(nowhere) as unreachable:
            run.raises("no server", lambda: unreachable.get_member("mem_x"))

        _import_members(run, admin, emu, passwords)
        _backfill(run, admin, emu)

        refreshed = run.keep("refresh", refresh_identities(admin, expiring_within="2h"))
        run.export("refresh", refreshed)
        _tokens_and_webhooks(run, emu, extra)
    finally:
        admin.close()


def _tokens_and_webhooks(run: Run, emu: EmulatorHandle, extra: dict[str, str]) -> None:
    from plabdata.auth._tokens import TokenVerifier, verify_bearer, verify_token
    from plabdata.auth._webhooks import parse_webhook, sign_webhook, verify_webhook

    settings = emu.settings
    member_id = emu.seed(1, random_seed=99)[0]
    expired = emu.mint_token(member_id, expires_in=-3600)
    foreign = emu.mint_token(member_id, aud="plugin:someone-else:admin")
    header, payload, signature = emu.mint_token(member_id).split(".")
    tampered = ".".join([header, payload[:-4] + "AAAA", signature])
    extra.update(
        {
            "expired user token": expired,
            "foreign user token": foreign,
            "tampered user token": tampered,
        }
    )
    run.raises("expired token", lambda: verify_token(expired, settings=settings))
    run.raises("foreign token", lambda: verify_bearer(f"Bearer {foreign}", settings=settings))
    with TokenVerifier(settings) as verifier:
        run.keep("verifier", verifier)
        run.raises("tampered token", lambda: verifier.verify(tampered))

    secret = extra["webhook secret"]
    body = json.dumps({"event": "member.created", "member": {"id": member_id}})
    forged = body.replace("created", "deleted")
    extra["HMAC of the forged body"] = sign_webhook(forged, secret)
    extra["HMAC under the wrong secret"] = sign_webhook(body, extra["wrong webhook secret"])
    good = sign_webhook(body, secret)
    run.raises("webhook tampered", lambda: verify_webhook(forged, good, secret))
    run.raises(
        "webhook wrong secret",
        lambda: verify_webhook(body, good, Secret(extra["wrong webhook secret"])),
    )
    headers = {
        "X-PluginLab-Signature": good,
        "X-PluginLab-Event": "member.created",
        "X-PluginLab-Delivery-Id": "d1",
        "X-PluginLab-Hook-Id": "h1",
        "X-PluginLab-Plugin-Id": emu.plugin_id,
        "X-PluginLab-Timestamp": "1",
    }
    run.raises("webhook replayed", lambda: parse_webhook(headers, body, secret))


@pytest.fixture
def debug_log(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> Iterator[Path]:
    """Everything logged at DEBUG, by any logger, also written to a file."""
    path = tmp_path / "debug.log"
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setLevel(logging.DEBUG)
    handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
    root = logging.getLogger()
    plabdata_logger = logging.getLogger("plabdata")
    previous = plabdata_logger.level
    root.addHandler(handler)
    caplog.set_level(logging.DEBUG)
    plabdata_logger.setLevel(logging.DEBUG)
    try:
        yield path
    finally:
        root.removeHandler(handler)
        handler.close()
        plabdata_logger.setLevel(previous)


def test_no_secret_leaks_anywhere(tmp_path, debug_log, caplog, capfd, monkeypatch):
    apply_module = pytest.importorskip("plabdata.members._apply")  # the import and backfill jobs
    pytest.importorskip("plabdata.events")
    generated = RecordingSecrets()
    monkeypatch.setattr(apply_module, "secrets", generated)
    admin_secret = _distinct("sk-leak")
    passwords = [_distinct("pw") for _ in range(12)]
    extra = {
        "wrong admin secret": _distinct("sk-wrong"),
        "webhook secret": _distinct("whsec"),
        "wrong webhook secret": _distinct("whsec-wrong"),
    }
    canary = _distinct("canary")
    run = Run(tmp_path)

    with running(secret=admin_secret) as emu:
        seeded = emu.seed(40, random_seed=3)
        for i, member_id in enumerate(seeded[:6]):
            emu.set_identity(
                member_id,
                ("google", "gitlab")[i % 2],
                accessToken=_distinct("ya29.leak"),
                refreshToken=_distinct("1//0leak"),
                accessTokenExpiresAtMs=0,
                refreshTokenRevoked=i == 4,
            )
        tokens_before = _identity_tokens_via_http(emu, seeded)

        _run_everything(run, emu, passwords, extra)
        logging.getLogger("plabdata.tests").debug("positive control: %s", canary)
        (run.out / "scratch.txt").write_text(f"positive control {canary}\n")
        out, err = capfd.readouterr()

        # Separate step, outside what is scanned: the tokens the emulator now holds.
        with plabdata.connect(emu.settings) as admin:
            after = load_identities(admin, include_tokens=True, progress=False)
    tokens_after = set(after["access_token"].dropna()) | set(after["refresh_token"].dropna())
    assert len(tokens_before) > 20 and len(tokens_after - tokens_before) >= 5

    needles = {"admin secret": admin_secret, **extra, "canary": canary}
    needles.update({f"password #{i}": p for i, p in enumerate(passwords)})
    assert generated.made, "no password was generated for the sheet row without one"
    needles.update({f"generated password #{i}": p for i, p in enumerate(generated.made)})
    needles.update({f"identity token {t[:8]}…": t for t in tokens_before | tokens_after})

    def views() -> Iterator[tuple[str, str]]:
        yield "caplog", caplog.text
        for record in caplog.records:
            yield f"log record {record.name}", repr(record.__dict__)
        yield from _views_of_files(tmp_path / "artifacts")
        yield "debug.log file", debug_log.read_text(encoding="utf-8")
        yield "stdout", out
        yield "stderr", err
        for label, value in run.returned:
            yield from _views_of_object(label, value)

    hits = scan(views(), needles)

    # Positive controls per kind of needle: where they are meant to be, the scanner finds them.
    in_inputs = {name for _, name in scan(_views_of_files(run.inputs), needles)}
    assert {f"password #{i}" for i in range(10)} <= in_inputs  # the sheet, CSV and XLSX
    token_needles = {k: v for k, v in needles.items() if k.startswith("identity token")}
    in_frame = {name for _, name in scan(_views_of_object("tokens", after), token_needles)}
    assert {name for name, t in token_needles.items() if t in tokens_after} <= in_frame
    assert scan(iter([("headers", repr(emu.settings.headers()))]), needles) == [
        ("headers", "admin secret")
    ]

    canary_hits = {where for where, name in hits if name == "canary"}
    assert any(where.endswith("scratch.txt") for where in canary_hits), "the scanner is blind"
    assert "debug.log file" in canary_hits and "caplog" in canary_hits, "logging not captured"
    leaks = sorted({(where, name) for where, name in hits if name != "canary"})
    assert not leaks, "secrets leaked:\n" + "\n".join(f"  {n} in {w}" for w, n in leaks)
    # The scan looked where the secrets would have been: the journals and exports were read.
    text = "\n".join(text for _, text in _views_of_files(tmp_path / "artifacts"))
    assert "new0@leak.example" in text and "WEB_UI" in text


def test_scanner_sees_through_encodings(tmp_path):
    """Each file format the jobs write hides a needle from a naive byte search; not from ours."""
    needle = _distinct("needle")
    frame = pd.DataFrame({"value": [needle] * 200})
    export_frame(frame, tmp_path / "a.parquet")
    export_frame(frame, tmp_path / "a.xlsx")
    with sqlite3.connect(tmp_path / "a.sqlite") as db:
        db.execute("CREATE TABLE t (v TEXT)")
        db.execute("INSERT INTO t VALUES (?)", (needle,))
    (tmp_path / "a.json").write_text(json.dumps({"v": quote(needle, safe="")}))
    (tmp_path / "a.b64").write_text(base64.b64encode(needle.encode()).decode())
    hits = {
        Path(where.split(" ")[0].split("!")[0]).name
        for where, _ in scan(_views_of_files(tmp_path), {"needle": needle})
    }
    assert hits == {"a.parquet", "a.xlsx", "a.sqlite", "a.json", "a.b64"}
    assert not scan(_views_of_files(tmp_path), {"other": _distinct("needle")})
    digest = hmac.new(b"k", b"m", hashlib.sha256).hexdigest()
    assert scan(iter([("x", f"sig={digest.upper()}")]), {"hmac": digest})
