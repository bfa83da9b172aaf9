"""Platform presets: each sample export imported into the emulator end to end, auto-detection,
the password rules (a hash is never sent, never kept), metadata, column_map, large NDJSON."""

from __future__ import annotations

import csv
import gzip
import io
import json
import logging
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pandas as pd
import pytest
from email_validator import EmailNotValidError, validate_email
from hypothesis import given, settings
from hypothesis import strategies as st

from plabdata.client._core import AsyncAdmin
from plabdata.client._sync import Admin
from plabdata.emulator import EmulatorHandle
from plabdata.errors import ValidationError
from plabdata.members._apply import apply_plan
from plabdata.members._loaders import load_members
from plabdata.members._plan import Plan, plan_member_changes
from plabdata.members._sheet import read_member_sheet
from plabdata.members._sheet_checks import _all_plain, _plain_email
from plabdata.members._sources import _auth0 as auth0
from plabdata.members._sources._common import IS_TRUE, any_of, iso_times, metadata_text
from plabdata.members._sources._files import _ndjson_lines, read_ndjson
from plabdata.members._sources._firebase import CSV_COLUMNS

ROOT = Path(__file__).resolve().parents[2]
EXPORTS = ROOT / "plabdata" / "samples" / "exports"
SAMPLES = {
    "auth0": "auth0_users.ndjson",
    "firebase": "firebase_users.json",
    "clerk": "clerk_users.csv",
    "supabase": "supabase_users.csv",
    "memberstack": "memberstack_members.csv",
}
#: (reset-needed, oauth-only) per sample: the CSVs of Clerk and Memberstack cannot tell OAuth.
NOTES = {
    "auth0": (23, 6),
    "firebase": (23, 6),
    "clerk": (23, 0),
    "supabase": (23, 6),
    "memberstack": (23, 0),
}
HASH = re.compile(r"\$2b\$10\$\S{20,}|c2FtcGxlLWhhc2gt\S+")


def _hashes(preset: str) -> set[str]:
    """Every password hash (and salt) the sample export holds."""
    text = (EXPORTS / SAMPLES[preset]).read_text(encoding="utf-8")
    found = {m.group(0).strip('",') for m in HASH.finditer(text)}
    found |= set(re.findall(r"c2FsdC\d{4}==", text))
    assert len(found) >= 10, preset
    return found


class Recording(httpx.AsyncHTTPTransport):
    """Real HTTP to the emulator, with every request body kept for the test to search."""

    def __init__(self) -> None:
        super().__init__()
        self.bodies: list[bytes] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.bodies.append(request.content)
        return await super().handle_async_request(request)


@pytest.fixture
def admin(emu: EmulatorHandle) -> Iterator[tuple[Admin, Recording]]:
    transport = Recording()
    with Admin(emu.settings) as client:
        plain = client.aio

        async def swap() -> AsyncAdmin:
            await plain.aclose()
            return AsyncAdmin(emu.settings, transport=transport)

        client.aio = client.run(swap())
        yield client, transport


def _plan(admin: Admin, sheet: object) -> Plan:
    members = load_members(admin, progress=False)
    return plan_member_changes(sheet, members, plugin_id=admin.settings.plugin_id)  # type: ignore[arg-type]


# ---------------------------------------------------------------------------- end to end


@pytest.mark.parametrize("preset", sorted(SAMPLES))
def test_each_preset_imports_its_sample_end_to_end(
    preset: str,
    admin: tuple[Admin, Recording],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    client, transport = admin
    caplog.set_level(logging.DEBUG)
    sheet = read_member_sheet(EXPORTS / SAMPLES[preset], source=preset)
    assert sheet.source_preset == preset
    # The one invalid row is named by row, column and problem; the other 29 proceed.
    assert len(sheet.rows) == 29 and len(sheet.invalid_rows) == 1
    error = sheet.errors.iloc[0]
    assert error["value"] == "not-an-address" and "not a valid email" in error["problem"]
    assert "zoë@bücher.example" in set(sheet.rows["email"])  # the IDN address
    reset, oauth = NOTES[preset]
    plan = _plan(client, sheet)
    counts = plan.counts()
    assert counts["create"] == 29 and counts["invalid"] == 1
    assert counts.get("reset_needed", 0) == reset and counts.get("oauth_only", 0) == oauth
    assert f"Passwords: {reset} create(s) had a password" in plan.describe()
    assert set(plan.ops["password_source"].dropna()) == {"generated"}

    results = apply_plan(client, plan, journal=tmp_path / "members.journal", progress=False)
    created = results[results["op"] == "create"]
    assert (created["status"] == "done").all() and len(created) == 29
    assert (created["note"] == "reset-needed").sum() == reset
    assert (created["note"] == "oauth-only").sum() == oauth

    members = load_members(client, progress=False).set_index("email")
    assert (members["metadata.migrated_from"] == preset).sum() == 29
    assert members["metadata.original_user_id"].notna().all()
    assert members.loc["zoë@bücher.example", "metadata.migrated_from"] == preset

    # A second import of the same export plans nothing.
    again = _plan(client, read_member_sheet(EXPORTS / SAMPLES[preset], source=preset))
    assert again.is_empty and again.counts()["unchanged"] == 29

    # No hash (nor salt) was sent, printed, logged, journaled, planned or returned.
    plan_file = plan.save(tmp_path / "plan.json")
    outputs = [
        b"".join(transport.bodies).decode("utf-8", "replace"),
        caplog.text,
        "".join(capsys.readouterr()),
        plan_file.read_text(encoding="utf-8"),
        (tmp_path / "members.journal").read_bytes().decode("utf-8", "replace"),
        results.to_csv(),
        sheet.rows.to_csv(),
        sheet.raw.to_csv(),
        sheet.issues.to_csv(),
        repr(sheet) + str(plan),
    ]
    creates = [b for b in transport.bodies if b.startswith(b'{"email"')]
    assert len(creates) == 29
    for secret in _hashes(preset):
        for text in outputs:
            assert secret not in text, preset


@pytest.mark.parametrize("preset", sorted(SAMPLES))
def test_auto_picks_the_right_preset_and_says_why(preset: str) -> None:
    sheet = read_member_sheet(EXPORTS / SAMPLES[preset], source="auto")
    assert sheet.source_preset == preset
    assert sheet.source_reason.startswith(f"auto chose {preset} (because it is ")
    assert repr(sheet).startswith(f"SheetResult(source='{EXPORTS / SAMPLES[preset]}', preset=")


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("people.csv", "full name,mail\nAda,ada@example.com\n"),
        ("events.ndjson", '{"event":"login","at":1}\n{"event":"logout","at":2}\n'),
        ("list.json", '[{"uid": 1, "mail": "a@example.com"}]'),
    ],
)
def test_auto_refuses_a_file_it_cannot_place(tmp_path: Path, name: str, text: str) -> None:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ValidationError) as raised:
        read_member_sheet(path, source="auto")
    message = str(raised.value)
    assert "cannot tell which platform exported this file" in message
    assert "source='generic' with column_map=" in message and "auth0" in message


def test_an_unknown_source_is_refused() -> None:
    with pytest.raises(ValidationError, match="unknown source 'okta'"):
        read_member_sheet(EXPORTS / SAMPLES["auth0"], source="okta")


# ---------------------------------------------------------------------------- formats


def _firebase_csv(tmp_path: Path) -> Path:
    """The sample's users written as firebase-tools' accountExporter writes its CSV."""
    users = json.loads((EXPORTS / SAMPLES["firebase"]).read_text(encoding="utf-8"))["users"]
    lines = []
    for user in users:
        cells = [""] * 28
        cells[0], cells[1] = user["localId"], user["email"]
        cells[2] = "true" if user["emailVerified"] else "false"
        cells[3], cells[4] = user.get("passwordHash", ""), user.get("salt", "")
        cells[5], cells[6] = user.get("displayName", ""), user.get("photoUrl", "")
        for info in user["providerUserInfo"]:
            at = {"google.com": 7, "facebook.com": 11, "twitter.com": 15, "github.com": 19}
            cells[at[info["providerId"]]] = info["rawId"]
        cells[23], cells[24] = user["createdAt"], user["lastSignedInAt"]
        cells[26] = "false"
        cells[27] = '"' + user["customAttributes"].replace('"', '""') + '"'
        lines.append(",".join(cells) + ",")
    path = tmp_path / "users.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_firebase_headerless_csv_reads_like_its_json(tmp_path: Path) -> None:
    from_json = read_member_sheet(EXPORTS / SAMPLES["firebase"], source="firebase")
    from_csv = read_member_sheet(_firebase_csv(tmp_path), source="auto")
    assert from_csv.source_preset == "firebase" and len(CSV_COLUMNS) == 28
    keep = ["email", "name", "is_verified", "password_note", "metadata.original_created_at"]
    keep += ["metadata.original_user_id", "metadata.app.plan", "metadata.app.devices"]
    pd.testing.assert_frame_equal(
        from_csv.rows[keep].reset_index(drop=True), from_json.rows[keep].reset_index(drop=True)
    )
    assert from_json.rows["metadata.original_created_at"].iloc[0] == "2021-03-01T09:30:15.123Z"


def test_auth0_csv_export_loses_its_quote_guard(tmp_path: Path) -> None:
    # Auth0's CSV puts ' before each text cell and quotes it (its CSV-injection guard).
    path = tmp_path / "auth0.csv"
    path.write_text(
        "user_id,email,email_verified,given_name,user_metadata.country,created_at,provider\n"
        '"\'auth0|5f7c","\'ada@example.com",true,"\'Ada","\'DE",2020-10-06T15:28:39.652Z,'
        '"\'auth0"\n'
        '"\'google-oauth2|11","\'alan@example.com",false,"\'Alan",,2021-01-02T03:04:05.006Z,'
        '"\'google-oauth2"\n',
        encoding="utf-8",
    )
    sheet = read_member_sheet(path, source="auto")
    assert sheet.source_preset == "auth0", sheet.source_reason
    rows = sheet.rows.set_index("email")
    assert rows.loc["ada@example.com", "given_name"] == "Ada"
    assert rows.loc["ada@example.com", "metadata.country"] == "DE"
    assert rows.loc["ada@example.com", "metadata.original_user_id"] == "auth0|5f7c"
    assert rows.loc["ada@example.com", "password_note"] == "reset-needed"
    assert rows.loc["alan@example.com", "password_note"] == "oauth-only"


def test_gzipped_ndjson_and_a_bad_line(tmp_path: Path) -> None:
    lines = (EXPORTS / SAMPLES["auth0"]).read_text(encoding="utf-8").splitlines()
    lines.insert(3, '{"email": "broken@example.com", ')  # line 4: not JSON
    path = tmp_path / "export.json.gz"
    path.write_bytes(gzip.compress(("\n".join(lines) + "\n").encode()))
    sheet = read_member_sheet(path, source="auto")
    assert sheet.source_preset == "auth0"
    bad = sheet.errors[sheet.errors["row"] == 4].iloc[0]
    assert "line 4 is not valid JSON" in bad["problem"]
    assert len(sheet.rows) == 29  # the 29 valid users proceed (the invalid email too is out)


def test_pyarrow_blocks_and_line_by_line_read_the_same_users(tmp_path: Path) -> None:
    text = (EXPORTS / SAMPLES["auth0"]).read_text(encoding="utf-8")
    path = tmp_path / "a.ndjson"
    path.write_text(text, encoding="utf-8")
    fast = read_member_sheet(path, source="auth0")
    # A date-like metadata string pyarrow would make a timestamp: that block goes line by line.
    slow_text = text.replace('"company":"Company 0"', '"company":"2021-01-01"', 1)
    path.write_text(slow_text, encoding="utf-8")
    slow = read_member_sheet(path, source="auth0")
    assert slow.rows["metadata.company"].iloc[0] == "2021-01-01"  # the file's text, kept
    columns = [c for c in fast.rows.columns if c != "metadata.company"]
    pd.testing.assert_frame_equal(fast.rows[columns], slow.rows[columns])
    # Small blocks: the same users, rows and issues as one block.
    blocks = list(read_ndjson(path, block_bytes=2000))
    assert len(blocks) > 5
    assert sum(len(b) for b in blocks) == 30
    assert [int(r) for b in blocks for r in b.rows] == list(range(1, 31))


#: Blocks whose columns pyarrow reads with different types: the C-speed mapping must give the
#: value-by-value mapping's columns and issues for each.
_TYPED_BLOCKS: dict[str, list[dict[str, object]]] = {
    "text": [
        {
            "user_id": "auth0|a",
            "email": "a@x.io",
            "email_verified": "true",
            "name": "a@x.io",
            "created_at": "2020-10-06T15:28:39.652Z",
            "user_metadata": {"n": "3", "s": ""},
        },
        {
            "user_id": None,
            "email": "b@x.io",
            "email_verified": None,
            "name": "B",
            "created_at": "",
            "user_metadata": {"n": None, "s": "x"},
        },
    ],
    "numbers": [
        {
            "user_id": 17,
            "email": "a@x.io",
            "email_verified": True,
            "created_at": None,
            "username": 5,
            "user_metadata": {"n": 3, "ok": False, "r": 1.0},
        },
        {
            "user_id": None,
            "email": "b@x.io",
            "email_verified": False,
            "created_at": "2020-10-06T15:28:39.652Z",
            "username": None,
            "user_metadata": {"n": None, "ok": None, "r": 2.5},
        },
        {
            "user_id": 2**40,
            "email": "c@x.io",
            "email_verified": None,
            "created_at": "2020-10-06T15:28:39.652Z",
            "username": 0,
            "user_metadata": {"n": -4, "ok": True, "r": None},
        },
    ],
    "floats": [
        {"user_id": 1.0, "email": "a@x.io", "user_metadata": {"r": 1e300, "n": 1e15}},
        {"user_id": 2.5, "email": "b@x.io", "user_metadata": {"r": -0.5, "n": None}},
    ],
    "odd times": [
        {"user_id": "auth0|a", "email": "a@x.io", "created_at": "2021-02-30T10:00:00.000Z"},
        {"user_id": "auth0|b", "email": "b@x.io", "created_at": "2022-05-19T18:57:35+02:00"},
        {"user_id": "auth0|c", "email": "c@x.io", "created_at": "2020-10-06T15:28:39.652Z"},
        {"user_id": "auth0|d", "email": "d@x.io", "created_at": "yesterday"},
    ],
    "canonical times, one not a day": [
        {"user_id": "auth0|a", "email": "a@x.io", "created_at": "2020-10-06T15:28:39.652Z"},
        {"user_id": "auth0|b", "email": "b@x.io", "created_at": "2021-02-30T10:00:00.000Z"},
    ],
    "long text": [
        {"user_id": "auth0|a", "email": "a@x.io", "user_metadata": {"blob": "z" * 3000}},
        {"user_id": "auth0|b", "email": "b@x.io", "user_metadata": {"blob": "short"}},
    ],
    "identities": [
        {
            "user_id": "auth0|a",
            "email": "a@x.io",
            "identities": [{"provider": "auth0", "isSocial": False}],
        },
        {
            "user_id": "auth0|b",
            "email": "b@x.io",
            "identities": [{"provider": "github", "isSocial": True}, {"provider": None}],
        },
        {"user_id": "auth0|c", "email": "c@x.io", "identities": []},
        {"user_id": "auth0|d", "email": "d@x.io", "identities": [{"isSocial": None}]},
    ],
    "identities of odd types": [
        {"user_id": "auth0|a", "email": "a@x.io", "identities": [{"provider": 1, "isSocial": "1"}]},
        {
            "user_id": "auth0|b",
            "email": "b@x.io",
            "identities": [{"provider": 2, "isSocial": "true"}],
        },
    ],
}


@pytest.mark.parametrize("kind", sorted(_TYPED_BLOCKS))
def test_the_c_speed_mapping_gives_the_value_by_value_columns(tmp_path: Path, kind: str) -> None:
    path = tmp_path / "u.ndjson"
    users = _TYPED_BLOCKS[kind]
    path.write_text("\n".join(json.dumps(u) for u in users) + "\n", "utf-8")
    (fast_records,) = read_ndjson(path)
    assert fast_records.arrow_scalars, "pyarrow read the block"
    slow_records = _ndjson_lines(path.read_bytes(), 1)  # json.loads, line by line
    assert not slow_records.arrow_scalars and not slow_records.arrow_lists
    fast, slow = auth0.mapper(fast_records).finish(), auth0.mapper(slow_records).finish()
    assert fast.columns.keys() == slow.columns.keys()
    for header, (target, values) in fast.columns.items():
        assert target == slow.columns[header][0]
        assert values.tolist() == slow.columns[header][1].tolist(), header
    assert fast.issues == slow.issues
    for name in fast_records.arrow_lists:
        for key, accept in (("provider", any_of({"auth0"})), ("isSocial", IS_TRUE)):
            one_by_one = fast_records.list_any(name, key, lambda v, a=accept: a(v))
            assert fast_records.list_any(name, key, accept).tolist() == one_by_one.tolist()


# ---------------------------------------------------------------------------- values


def test_metadata_values_become_text_with_clear_issues(tmp_path: Path) -> None:
    users = [
        {
            "user_id": "auth0|1",
            "email": "a@example.com",
            "email_verified": True,
            "user_metadata": {
                "n": 3,
                "ratio": 1.0,
                "ok": False,
                "tags": ["x", "y"],
                "deep": {"a": {"b": "c"}},
                "rows": [[1, 2], [3]],
                "blob": "z" * 3000,
            },
        }
    ]
    path = tmp_path / "u.ndjson"
    path.write_text("\n".join(json.dumps(u) for u in users) + "\n", encoding="utf-8")
    sheet = read_member_sheet(path, source="auth0")
    row = sheet.rows.iloc[0]
    assert (
        row["metadata.n"] == "3" and row["metadata.ratio"] == "1" and row["metadata.ok"] == "false"
    )
    assert row["metadata.tags"] == '["x","y"]' and row["metadata.deep.a.b"] == "c"
    assert row["metadata.rows"] == "[[1,2],[3]]"
    assert "metadata.blob" not in sheet.rows or pd.isna(row["metadata.blob"])
    problems = dict(zip(sheet.warnings["column"], sheet.warnings["problem"], strict=True))
    assert "kept as JSON text" in problems["user_metadata.rows"]
    assert "longer than 2,048 characters" in problems["user_metadata.blob"]
    assert sheet.ok  # warnings keep the row


def test_metadata_text_rules() -> None:
    assert metadata_text(None) == (None, None)
    assert metadata_text(2.5) == ("2.5", None)
    assert metadata_text([1, 2.0]) == ("[1,2]", None)
    text, problem = metadata_text([{"b": 1, "a": None}])
    assert text == '[{"b":1}]' and problem and "JSON text" in problem


def test_sign_up_times_in_every_platform_shape() -> None:
    stamps, bad = iso_times(
        pd.Series(
            [
                "2024-06-29 20:25:06.126079+00",  # Supabase (Postgres)
                "2020-10-06T15:28:39.652Z",  # Auth0
                "2021-02-30T10:00:00.000Z",  # not a day
                "2022-05-19T18:57:35+02:00",
                None,
            ],
            dtype=object,
        )
    )
    assert stamps.tolist() == [
        "2024-06-29T20:25:06.126Z",
        "2020-10-06T15:28:39.652Z",
        None,
        "2022-05-19T16:57:35.000Z",
        None,
    ]
    assert bad.tolist() == [False, False, True, False, False]
    millis, _ = iso_times(pd.Series(["1486324027000"], dtype=object), unit="ms")
    assert millis.tolist() == ["2017-02-05T19:47:07.000Z"]


# ---------------------------------------------------------------------------- column_map


def test_column_map_reads_an_export_no_preset_knows(tmp_path: Path) -> None:
    path = tmp_path / "legacy.csv"
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["uid", "mail", "First name", "Password", "pw_hash", "joined", "tier"])
    writer.writerow(
        ["u1", "ada@example.com", "Ada", "x", "$2b$10$abcdefghijklmnopqrstuv", "2020-01-02", "pro"]
    )
    writer.writerow(["u2", "alan@example.com", "Alan", "", "", "2020-01-03", "free"])
    path.write_text(out.getvalue(), encoding="utf-8")
    sheet = read_member_sheet(
        path,
        source="generic",
        column_map={
            "uid": "original_user_id",
            "mail": "email",
            "pw_hash": "password_hash",
            "joined": "original_created_at",
            "tier": "metadata.plan",
        },
    )
    rows = sheet.rows.set_index("email")
    assert rows.loc["ada@example.com", "given_name"] == "Ada"  # the sheet's header rules
    assert rows.loc["ada@example.com", "password_note"] == "reset-needed"
    assert pd.isna(rows.loc["alan@example.com", "password_note"])
    assert rows.loc["ada@example.com", "metadata.original_created_at"] == "2020-01-02T00:00:00.000Z"
    assert rows.loc["alan@example.com", "metadata.plan"] == "free"
    assert "password" not in sheet.rows  # a Password column is never taken as one
    assert "never sends an export's values as passwords" in " ".join(sheet.warnings["problem"])
    assert "$2b$10$abcdefghijklmnopqrstuv" not in sheet.raw.to_csv()


def test_column_map_overrides_a_preset_and_refuses_mistakes() -> None:
    path = EXPORTS / SAMPLES["auth0"]
    sheet = read_member_sheet(
        path, source="auth0", column_map={"user_metadata.company": "metadata.org", "picture": None}
    )
    assert "metadata.org" in sheet.rows and "metadata.company" not in sheet.rows
    assert "picture_url" not in sheet.rows
    with pytest.raises(ValidationError, match="never sends an export's values as passwords"):
        read_member_sheet(path, source="auth0", column_map={"passwordHash": "password"})
    with pytest.raises(ValidationError, match="unknown field 'shoe_size'"):
        read_member_sheet(path, source="auth0", column_map={"email": "shoe_size"})
    with pytest.raises(ValidationError, match="which the export does not have"):
        read_member_sheet(path, source="auth0", column_map={"nope": "metadata.x"})


def test_column_map_is_columns_for_a_plain_sheet() -> None:
    frame = pd.DataFrame({"Mail": ["a@example.com"], "Org": ["x"]})
    sheet = read_member_sheet(frame, column_map={"Org": "metadata.org"})
    assert sheet.rows["metadata.org"].tolist() == ["x"] and sheet.source_preset is None
    with pytest.raises(ValidationError, match="not both"):
        read_member_sheet(frame, columns={"Org": "name"}, column_map={"Org": "metadata.org"})


# ---------------------------------------------------------------------------- emails


def _reference(email: str) -> tuple[str | None, bool]:
    try:
        return validate_email(email, check_deliverability=False).normalized.lower(), True
    except EmailNotValidError:
        return None, False


_ATOM = st.text("abcz09.-_+'=", min_size=1, max_size=12)
_LABEL = st.text("abz09-", min_size=1, max_size=12)


@settings(max_examples=400, deadline=None)
@given(
    _ATOM, st.lists(_LABEL, min_size=1, max_size=3), st.sampled_from(["com", "io", "test", "x1"])
)
def test_the_plain_email_fast_path_agrees_with_email_validator(
    local: str, labels: list[str], tld: str
) -> None:
    email = f"{local}@{'.'.join(labels)}.{tld}"
    if _plain_email(email):  # the fast path only ever says "valid, as written"
        assert _reference(email) == (email, True)
    assert _all_plain([email]) == _plain_email(email)


def test_the_fast_path_over_a_column_matches_one_by_one() -> None:
    emails = ["ada@example.com", "bob.b@x.io", "c@host.local", "d--e@x.com", "a" * 65 + "@x.com"]
    assert [_plain_email(e) for e in emails] == [True, True, False, False, False]
    assert _all_plain(emails[:2]) and not _all_plain(emails[:3])


def test_metadata_written_as_json_text_is_spread_into_keys_or_flagged(tmp_path: Path) -> None:
    """Memberstack's Metadata cell (and Clerk's CSV metadata, Firebase's customAttributes)
    is JSON text: each key becomes metadata, a cell that is not an object is a warning."""
    path = tmp_path / "memberstack.csv"
    rows = [
        ["Member ID", "Email", "Verified", "Metadata"],
        ["mem_sb_1", "ada@example.com", "true", '{"theme": "light", "seats": 2}'],
        ["mem_sb_2", "grace@example.com", "true", "[1, 2]"],
        ["mem_sb_3", "alan@example.com", "true", "{not json"],
        ["mem_sb_4", "edsger@example.com", "true", ""],
    ]
    with path.open("w", newline="", encoding="utf-8") as out:
        csv.writer(out).writerows(rows)
    sheet = read_member_sheet(path, source="memberstack")
    by_email = sheet.rows.set_index("email")
    assert by_email.loc["ada@example.com", "metadata.app.theme"] == "light"
    assert by_email.loc["ada@example.com", "metadata.app.seats"] == "2"
    assert pd.isna(by_email.loc["grace@example.com", "metadata.app.theme"])
    flagged = sheet.issues[sheet.issues["problem"].str.contains("not a JSON object")]
    assert sorted(flagged["row"].tolist()) == [3, 4]
    assert set(flagged["severity"]) == {"warning"}
    assert len(sheet.rows) == 4  # a warning leaves the member in
