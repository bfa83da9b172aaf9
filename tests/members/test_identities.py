"""Identity refresh in bulk (``refresh_identities``) and the single-call surface of ``Admin``.

Everything runs against the emulator. Identities far from expiry (and providers that are not
refreshed) are *kept* in the result as ``skipped`` with the reason — never silently dropped.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import timedelta

import pandas as pd
import pytest

import plabdata
from plabdata import (
    Admin,
    AuthError,
    BadRequest,
    Identity,
    Member,
    NotFound,
    QuotaUsage,
    RefreshTokenFailed,
    Secret,
    ValidationError,
)
from plabdata.emulator import EmulatorHandle
from plabdata.members._identities import REFRESH_COLUMNS, REFRESH_STATUSES, refresh_identities
from plabdata.members._loaders import load_identities

MINUTE_MS = 60_000
DAY_MS = 24 * 60 * MINUTE_MS


@pytest.fixture
def admin(emu: EmulatorHandle) -> Iterator[Admin]:
    with plabdata.connect(emu.settings) as admin:
        yield admin


def _now_ms() -> int:
    return int(time.time() * 1000)


def _give(emu: EmulatorHandle, member_id: str, provider: str, **fields: object) -> None:
    """Create or change an identity. Every optional timestamp gets a value unless given:
    ``load_identities`` currently fails on a timestamp column that is missing in every row
    (frames.identities_frame, reported to the lead)."""
    defaults = {
        "lastUsedAtMs": _now_ms() - DAY_MS,
        "refreshTokenExpiresAtMs": _now_ms() + 30 * DAY_MS,
        "refreshToken": f"rt-{member_id[-8:]}-{provider}-0123456789",
    }
    emu.set_identity(member_id, provider, **{**defaults, **fields})


def _identity_cast(
    emu: EmulatorHandle, admin: Admin, *, extra: int = 0
) -> dict[tuple[str, str], str]:
    """Members with one identity each, in every situation (plus ``extra`` more due soon);
    returns the expected status per (member_id, provider)."""
    now = _now_ms()
    cast = {
        "soon": ("google", {"accessTokenExpiresAtMs": now + 5 * MINUTE_MS}, "refreshed"),
        "expired": ("gitlab", {"accessTokenExpiresAtMs": now - DAY_MS}, "refreshed"),
        "revoked": (
            "google",
            {"accessTokenExpiresAtMs": now + 5 * MINUTE_MS, "refreshTokenRevoked": True},
            "reauth-needed",
        ),
        "github": ("github", {"accessTokenExpiresAtMs": now + 5 * MINUTE_MS}, "skipped"),
        "far": ("google", {"accessTokenExpiresAtMs": now + 3 * DAY_MS}, "skipped"),
        "no-expiry": ("gitlab", {}, "skipped"),
    }
    for n in range(extra):
        provider = ("google", "gitlab")[n % 2]
        cast[f"extra{n}"] = (provider, {"accessTokenExpiresAtMs": now + n * MINUTE_MS}, "refreshed")
    expected: dict[tuple[str, str], str] = {}
    for name, (provider, fields, status) in cast.items():
        member = admin.create_member(f"{name}@refresh.example", "pw-long-enough")
        _give(
            emu,
            member.id,
            provider,
            accessToken=f"at-{name}-{provider}-0123456789",
            refreshToken=f"rt-{name}-{provider}-0123456789",
            **fields,
        )
        expected[(member.id, provider)] = status
    return expected


def _statuses(result: pd.DataFrame) -> dict[tuple[str, str], str]:
    return {
        (str(m), str(p)): str(s)
        for m, p, s in zip(result.member_id, result.provider, result.status, strict=True)
    }


# ---------------------------------------------------------------------------- bulk refresh


def test_refresh_renews_due_tokens_and_flags_revoked_ones(emu, admin):
    expected = _identity_cast(emu, admin)
    before = load_identities(admin, progress=False)
    requests_before = emu.stats()["requests"]

    result = refresh_identities(admin, before, expiring_within="1h", progress=False)

    assert list(result.columns) == list(REFRESH_COLUMNS)
    assert result.dtypes.to_dict() == {
        **REFRESH_COLUMNS,
        "provider": result.dtypes["provider"],
    }
    assert str(result.access_token_expires_at_after.dtype) == "datetime64[ms, UTC]"
    assert _statuses(result) == expected
    assert set(result.status) <= set(REFRESH_STATUSES)
    # One request per due identity: github, far-off and expiry-less ones were never attempted.
    due = sum(status != "skipped" for status in expected.values())
    assert emu.stats()["requests"] - requests_before == due
    assert (result.loc[result.status == "skipped", "attempts"] == 0).all()
    assert result.loc[result.status == "skipped", "error"].notna().all()

    for row in result.itertuples():
        live = admin.get_identities(row.member_id)[row.provider]
        live_ms = live.access_token_expires_at_ms
        live_expiry = pd.NaT if live_ms is None else pd.Timestamp(live_ms, unit="ms", tz="UTC")
        if row.status == "refreshed":
            assert row.attempts == 1 and pd.isna(row.error)
            assert row.access_token_expires_at_after == live_expiry
            assert live_expiry > row.access_token_expires_at_before
            assert live_expiry > pd.Timestamp.now(tz="UTC") + pd.Timedelta("50min")
        else:
            assert pd.isna(row.access_token_expires_at_after)
            if pd.notna(row.access_token_expires_at_before):
                assert live_expiry == row.access_token_expires_at_before  # untouched
    revoked = result[result.status == "reauth-needed"].iloc[0]
    assert "refresh-token-failed" in revoked.error


def test_the_result_is_the_same_under_injected_faults(emu, admin):
    expected = _identity_cast(emu, admin, extra=16)
    identities = load_identities(admin, progress=False)
    emu.set_faults(error_rate=0.3, drop_rate=0.1, random_seed=11)

    result = refresh_identities(admin, identities, concurrency=4, progress=False)

    stats = emu.stats()
    emu.clear_faults()
    assert stats["injectedErrors"] + stats["drops"] > 0
    assert _statuses(result) == expected
    attempted = result[result.status != "skipped"]
    assert attempted.attempts.sum() > len(attempted)  # the faults hit, retries absorbed them
    for row in attempted[attempted.status == "refreshed"].itertuples():
        live = admin.get_identities(row.member_id)[row.provider]
        assert live.access_token_expires_at_ms is not None
        assert live.access_token_expires_at_ms > _now_ms() + 50 * MINUTE_MS


def test_result_holds_no_tokens(emu, admin):
    _identity_cast(emu, admin)
    with_tokens = load_identities(admin, include_tokens=True, progress=False)
    old_tokens = set(with_tokens.access_token.dropna()) | set(with_tokens.refresh_token.dropna())
    assert len(old_tokens) >= 10

    result = refresh_identities(admin, with_tokens, progress=False)

    new = load_identities(admin, include_tokens=True, progress=False)
    tokens = old_tokens | set(new.access_token.dropna()) | set(new.refresh_token.dropna())
    assert list(result.columns) == list(REFRESH_COLUMNS)
    text = result.to_csv() + repr(result) + result.to_string()
    assert not [token for token in tokens if token in text]


def test_member_deleted_meanwhile_fails_with_the_reason(emu, admin):
    member = admin.create_member("gone@refresh.example", "pw-long-enough")
    _give(emu, member.id, "google", accessTokenExpiresAtMs=_now_ms() + MINUTE_MS)
    identities = load_identities(admin, [member.id], progress=False)
    admin.delete_member(member.id)

    result = refresh_identities(admin, identities, progress=False)

    row = result.iloc[0]
    assert row.status == "failed"
    assert "member-not-found" in row.error and row.attempts == 1


def test_loads_identities_when_none_given_and_reports_each_once(emu, admin):
    emu.seed(60)
    everything = load_identities(admin, progress=False)

    result = refresh_identities(admin, progress=False)

    assert len(result) == len(everything)
    assert set(zip(result.member_id, result.provider.astype(str), strict=True)) == set(
        zip(everything.member_id, everything.provider.astype(str), strict=True)
    )
    refreshable = result.provider.isin(["google", "gitlab"])
    assert (result.loc[~refreshable, "status"] == "skipped").all()
    assert (result.loc[refreshable, "status"] != "failed").all()


def test_duplicates_are_refreshed_once(emu, admin):
    member = admin.create_member("dup@refresh.example", "pw-long-enough")
    _give(emu, member.id, "gitlab", accessTokenExpiresAtMs=_now_ms() + MINUTE_MS)
    once = load_identities(admin, [member.id], progress=False)
    requests_before = emu.stats()["requests"]
    result = refresh_identities(admin, pd.concat([once, once, once]), progress=False)
    assert len(result) == 1 and result.status.iloc[0] == "refreshed"
    assert emu.stats()["requests"] - requests_before == 1


def test_window_and_now_decide_what_is_due(emu, admin):
    member = admin.create_member("window@refresh.example", "pw-long-enough")
    in_two_days = _now_ms() + 2 * DAY_MS
    _give(emu, member.id, "google", accessTokenExpiresAtMs=in_two_days)
    identities = load_identities(admin, [member.id], progress=False)

    not_yet = refresh_identities(admin, identities, expiring_within="1D", progress=False)
    assert not_yet.status.tolist() == ["skipped"]
    assert "does not expire within" in not_yet.error.iloc[0]

    later = pd.Timestamp.now(tz="UTC") + pd.Timedelta(days=2, minutes=30)
    due = refresh_identities(
        admin, identities, expiring_within=timedelta(hours=1), now=later, progress=False
    )
    assert due.status.tolist() == ["refreshed"]


def test_selected_providers_only(emu, admin):
    expected = _identity_cast(emu, admin)
    identities = load_identities(admin, progress=False)
    result = refresh_identities(admin, identities, providers="gitlab", progress=False)
    statuses = _statuses(result)
    assert set(statuses) == set(expected)
    for key, status in statuses.items():
        assert status == (expected[key] if key[1] == "gitlab" else "skipped")


def test_bad_arguments_are_refused_before_any_request(emu, admin):
    frame = pd.DataFrame({"member_id": ["mem_x"], "provider": ["google"]})
    with pytest.raises(ValidationError, match="access_token_expires_at"):
        refresh_identities(admin, frame, progress=False)
    identities = load_identities(admin, [], progress=False)
    with pytest.raises(ValueError, match="positive"):
        refresh_identities(admin, identities, expiring_within="-1h", progress=False)
    with pytest.raises(ValueError, match="not a duration"):
        refresh_identities(admin, identities, expiring_within="soon", progress=False)
    assert emu.stats()["requests"] == 0
    empty = refresh_identities(admin, identities, progress=False)
    assert empty.empty and list(empty.columns) == list(REFRESH_COLUMNS)


# ---------------------------------------------------------------------------- single calls


def test_get_member_and_by_email(emu, admin):
    created = admin.create_member("Ada@Lookup.example", "pw-long-enough", metadata={"team": "a"})
    by_id = admin.get_member(created.id)
    by_email = admin.get_member_by_email("ada@lookup.example")
    assert isinstance(by_id, Member) and by_id == by_email == created
    assert by_id.email == "ada@lookup.example" and by_id.metadata == {"team": "a"}
    assert by_id.sign_in_method == "email-and-password" and by_id.has_password is True
    assert admin.get_member("mem_" + "0" * 40) is None
    assert admin.get_member_by_email("nobody@lookup.example") is None


def test_get_identities_typed_with_secret_tokens(emu, admin):
    member = admin.create_member("ids@lookup.example", "pw-long-enough")
    assert admin.get_identities(member.id) == {}
    emu.set_identity(
        member.id,
        "google",
        accessToken="ya29.single-call-token",
        refreshToken="1//0single-call-refresh",
        accessTokenExpiresAtMs=1_900_000_000_000,
    )
    identities = admin.get_identities(member.id)
    google = identities["google"]
    assert isinstance(google, Identity) and list(identities) == ["google"]
    assert google.access_token_expires_at_ms == 1_900_000_000_000
    assert isinstance(google.access_token, Secret)
    assert google.access_token.reveal() == "ya29.single-call-token"
    assert "single-call" not in repr(google)
    with pytest.raises(NotFound) as caught:
        admin.get_identities("mem_" + "0" * 40)
    assert caught.value.status == 404 and caught.value.method == "GET"


def test_refresh_identity_token_single_call(emu, admin):
    member = admin.create_member("one@lookup.example", "pw-long-enough")
    emu.set_identity(member.id, "gitlab", refreshToken="rt-1", accessTokenExpiresAtMs=0)
    emu.set_identity(member.id, "github", accessToken="gho_x")
    identity = admin.refresh_identity_token(member.id, "gitlab")
    assert identity.access_token_expires_at_ms is not None
    assert identity.access_token_expires_at_ms > _now_ms()
    assert isinstance(identity.access_token, Secret)

    emu.set_identity(member.id, "gitlab", refreshTokenRevoked=True)
    with pytest.raises(RefreshTokenFailed) as caught:
        admin.refresh_identity_token(member.id, "gitlab")
    assert (caught.value.status, caught.value.code) == (422, "refresh-token-failed")
    with pytest.raises(BadRequest):
        admin.refresh_identity_token(member.id, "github")


def test_events_and_quota_usage(emu, admin):
    member = admin.create_member("quota@lookup.example", "pw-long-enough")
    usage = admin.get_quota_usage(member.id)
    assert isinstance(usage, QuotaUsage) and usage.usage_count == 0
    assert admin.create_event("chat", member_id=member.id, country_code="fr") is None
    admin.create_event("chat", member_id=member.id, is_in_quota=False)
    admin.create_event("anonymous")
    assert admin.get_quota_usage(member.id).usage_count == 1
    events = emu.events(member_id=member.id)
    assert len(events) == 2 and len(emu.events()) == 3
    with pytest.raises(BadRequest):
        admin.create_event("much-too-long-source")
    with pytest.raises(NotFound):
        admin.create_event("chat", member_id="mem_" + "0" * 40)
    with pytest.raises(NotFound):
        admin.get_quota_usage("mem_" + "0" * 40)
    assert len(emu.events()) == 3


def test_auth_errors_are_raised_not_read_as_absent(emu):
    wrong = emu.settings.replace(secret=Secret("not-the-secret"))
    with plabdata.connect(wrong) as admin:
        with pytest.raises(AuthError) as caught:
            admin.get_member("mem_" + "0" * 40)
        assert caught.value.status == 401
        with pytest.raises(AuthError):
            admin.get_member_by_email("a@b.example")
    assert emu.secret.reveal() not in str(caught.value)
