"""Deterministic demo data: same seed, same members; a realistic mix; no email collisions."""

from __future__ import annotations

from collections import Counter
from typing import Any

import httpx
import pytest

from plabdata.emulator import ANCHOR_MS, EmulatorHandle
from plabdata.emulator.model import PLANS, is_plausible_email, month_bounds
from plabdata.emulator.seed import DemoData, generate

NOW = ANCHOR_MS + 20 * 86_400_000


@pytest.fixture(scope="module")
def demo() -> DemoData:
    return generate(2000, random_seed=0, plugin_id="plg_test", start_index=0, now=NOW)


def _all_members(api: httpx.Client, members_path: str) -> list[dict[str, Any]]:
    members: list[dict[str, Any]] = []
    cursor = "None"
    while cursor is not None:
        page = api.get(members_path + "/members", params={"limit": 50, "startAfter": cursor})
        members.extend(page.json()["items"])
        cursor = page.json()["nextPageToken"]
    return members


def test_same_seed_same_members(emu: EmulatorHandle, api: httpx.Client, members_path: str) -> None:
    emu.seed(150, random_seed=4)
    first = _all_members(api, members_path)
    emu.reset()
    emu.seed(150, random_seed=4)
    assert _all_members(api, members_path) == first
    emu.reset()
    emu.seed(150, random_seed=5)
    assert _all_members(api, members_path) != first


def test_seeding_twice_continues_the_sequence(emu: EmulatorHandle) -> None:
    twice = emu.seed(40) + emu.seed(40)
    assert len(set(twice)) == 80
    emu.reset()
    assert emu.seed(80) == twice


def test_other_seed_never_collides(emu: EmulatorHandle) -> None:
    emu.seed(300, random_seed=1)
    emu.seed(300, random_seed=1)
    emu.seed(300, random_seed=2)
    assert emu.stats()["members"] == 900


def test_mix_of_sign_in_methods_plans_and_fields(demo: DemoData) -> None:
    members = demo.members
    methods = Counter(member.sign_in_method for member in members)
    share = {method: count / len(members) for method, count in methods.items()}
    assert share["email-and-password"] == pytest.approx(0.45, abs=0.05)
    assert share["magic-email-code"] == pytest.approx(0.15, abs=0.04)
    assert share["google"] == pytest.approx(0.25, abs=0.04)
    assert share["github"] == pytest.approx(0.08, abs=0.03)
    assert share["gitlab"] == pytest.approx(0.05, abs=0.02)
    assert 0 < share["microsoft"] < 0.05
    plans = Counter(member.plan for member in members)
    assert plans["free"] / 2000 == pytest.approx(0.70, abs=0.05)
    assert plans["pro"] / 2000 == pytest.approx(0.25, abs=0.05)
    assert plans["unlimited"] / 2000 == pytest.approx(0.05, abs=0.02)
    assert sum(member.is_verified for member in members) / 2000 == pytest.approx(0.8, abs=0.04)
    assert any(member.picture_url for member in members)
    assert any("company" in member.metadata for member in members)
    assert any(member.custom_fields for member in members)
    assert any("+" in member.email for member in members)
    assert len({member.email.split("@")[1] for member in members}) > 8
    assert len({member.email for member in members}) == 2000
    assert all(is_plausible_email(member.email) for member in members)
    assert all(
        (member.password_hash is not None) == (member.sign_in_method == "email-and-password")
        for member in members
    )


def test_signup_dates_precede_the_anchor(demo: DemoData) -> None:
    created = [member.created_at_ms for member in demo.members]
    assert min(created) >= ANCHOR_MS - 548 * 86_400_000 and max(created) <= ANCHOR_MS
    assert max(created) - min(created) > 400 * 86_400_000
    assert all(member.updated_at_ms >= member.created_at_ms for member in demo.members)


def test_identities_match_oauth_members(demo: DemoData) -> None:
    by_member: dict[str, list[str]] = {}
    for identity in demo.identities:
        by_member.setdefault(identity.member_id, []).append(identity.provider)
        assert identity.provider_user_id and identity.access_token
    for member in demo.members:
        providers = by_member.get(member.id, [])
        if member.sign_in_method in ("google", "github", "gitlab", "microsoft"):
            assert member.sign_in_method in providers
        else:
            assert providers == []
    assert any(len(providers) == 2 for providers in by_member.values())
    expiries = [i.access_token_expires_at_ms for i in demo.identities if i.provider == "google"]
    assert any(e is not None and e < NOW for e in expiries)
    assert any(e is not None and NOW < e < NOW + 3_600_000 for e in expiries)
    assert any(identity.refresh_token_revoked for identity in demo.identities)


def test_usage_puts_some_free_members_near_or_over_the_limit(demo: DemoData) -> None:
    start, _ = month_bounds(NOW)
    usage: Counter[str] = Counter()
    for member_id, _source, _country, _sub, in_quota, received in demo.events:
        assert start <= received <= NOW
        if in_quota and member_id is not None:
            usage[member_id] += 1
    limit = PLANS["free"].usage_limit
    free = [member.id for member in demo.members if member.plan == "free"]
    assert any(0.85 * limit <= usage[m] < limit for m in free)
    assert any(usage[m] >= limit for m in free)
    assert any(usage[m] == 0 for m in free)


def test_seeded_quota_shows_over_limit_members(emu: EmulatorHandle, api: httpx.Client) -> None:
    ids = emu.seed(100)
    over = [
        member_id
        for member_id in ids
        if api.get(f"/v1/admin/members/{member_id}/quota-usage").json()["isOverLimit"]
    ]
    assert over
