"""Deterministic demo data: realistic members, identities and this month's usage events.

Member ``i`` of ``random_seed`` s is drawn from its own generator, ``Random("…:s:i")``, so
``seed(1000)`` yields the first 1000 members of ``seed(2000)``, and the same call gives the
same members (ids, emails, names, plans, fields) on any machine and any day. Signup dates are
spread over the 18 months before the fixed :data:`ANCHOR_MS` (2026-11-01T00:00Z).

Two things follow the emulator's clock instead, because they only make sense relative to
"now": token expiries / last use of identities, and usage events (placed in the current
calendar month so quotas show real usage). Their counts and token strings are still
deterministic. A clock set before the anchor (``serve --start-days-ago``) moves the anchor
back to it, so no member signs up in the emulator's future.

Seeding twice with the same ``random_seed`` continues the index sequence (a counter kept in
the store, cleared by reset), so emails never collide.

    >>> data = generate(3, random_seed=0, plugin_id="plg_demo", start_index=0, now=ANCHOR_MS)
    >>> len(data.members)
    3
"""

from __future__ import annotations

import functools
import hashlib
import random
import string
from dataclasses import dataclass, field
from datetime import UTC, datetime

from plabdata.emulator.model import (
    IdentityRecord,
    MemberRecord,
    hash_password,
    member_id_for,
    month_bounds,
    now_ms,
)
from plabdata.emulator.store import Store

ANCHOR_MS = int(datetime(2026, 11, 1, tzinfo=UTC).timestamp() * 1000)
SIGNUP_WINDOW_MS = 548 * 86_400_000  # 18 months
_MINUTE = 60_000
_DAY = 86_400_000

_METHODS = (
    ("email-and-password", 45),
    ("magic-email-code", 15),
    ("google", 25),
    ("github", 8),
    ("gitlab", 5),
    ("microsoft", 2),
)
_PLANS = (("free", 70), ("pro", 25), ("unlimited", 5))
# fmt: off
_FIRST = (
    "Ada", "Alan", "Amara", "Ana", "Anders", "Aryan", "Beatriz", "Bilal", "Carmen", "Chen",
    "Chiara", "Chloe", "Daniel", "Dmitri", "Elena", "Emeka", "Emma", "Farah", "Felix", "Fatima",
    "Gabriel", "Grace", "Hana", "Hiroshi", "Ingrid", "Isabel", "Jamal", "James", "Jin", "Julia",
    "Kai", "Kamala", "Karim", "Laura", "Leila", "Liam", "Lucas", "Maya", "Mateo", "Mei",
    "Mohammed", "Nadia", "Noah", "Olga", "Omar", "Priya", "Rafael", "Rosa", "Sakura", "Samuel",
    "Sofia", "Tariq", "Thomas", "Valentina", "Wei", "Yara", "Yusuf", "Zoe",
)
# fmt: on
# fmt: off
_LAST = (
    "Abebe", "Adeyemi", "Alvarez", "Andersen", "Bauer", "Becker", "Bianchi", "Brown", "Castro",
    "Chen", "Costa", "Dubois", "Eriksen", "Fernandez", "Fischer", "Garcia", "Gonzalez", "Haddad",
    "Hansen", "Hoffmann", "Ivanova", "Jansen", "Johnson", "Kim", "Kowalski", "Kumar", "Larsen",
    "Lee", "Lopez", "Martin", "Meyer", "Moreau", "Mueller", "Nakamura", "Nguyen", "Novak",
    "Okafor", "Oliveira", "Patel", "Petrov", "Popescu", "Rahman", "Rossi", "Santos", "Schmidt",
    "Silva", "Singh", "Smith", "Suzuki", "Tanaka", "Taylor", "Wagner", "Wang", "Williams",
    "Yilmaz", "Zhang",
)
# fmt: on
_FREE_MAIL = (
    ("gmail.com", 40),
    ("outlook.com", 12),
    ("yahoo.com", 8),
    ("icloud.com", 6),
    ("proton.me", 5),
    ("hotmail.com", 4),
)
_WORK_MAIL = (
    "acme.io",
    "globex.com",
    "initech.co",
    "hooli.xyz",
    "umbrella-labs.com",
    "stark.dev",
    "wayne.enterprises",
    "cyberdyne.ai",
    "aperture-science.org",
)
_TAGS = ("plugins", "chatgpt", "test", "news", "ai")
_COMPANIES = ("Acme", "Globex", "Initech", "Hooli", "Umbrella Labs", "Stark", "Cyberdyne")
_SOURCES = ("web", "chatgpt-store", "referral", "ads", "newsletter", "producthunt")
_ROLES = ("Founder", "Engineer", "Data analyst", "Product manager", "Marketer", "Student")
_TEAM_SIZES = ("1", "2-10", "11-50", "51-200", "200+")
_EVENT_SOURCES = (("WEB_UI", 55), ("API", 25), ("SLACK", 12), ("DISCORD", 8))
_COUNTRIES = (
    ("US", 35),
    ("GB", 10),
    ("DE", 9),
    ("FR", 8),
    ("IN", 8),
    ("CA", 6),
    ("BR", 6),
    ("JP", 5),
    ("NG", 4),
    ("ES", 4),
    ("AU", 5),
)
_SUBDIVISIONS = {
    "US": ("CA", "NY", "TX", "WA", "FL"),
    "CA": ("ON", "QC", "BC"),
    "GB": ("ENG", "SCT"),
    "DE": ("BE", "BY"),
    "AU": ("NSW", "VIC"),
}
_URLSAFE = string.ascii_letters + string.digits + "-_"


EventRow = tuple[str | None, str, str | None, str | None, bool, int]


@dataclass
class DemoData:
    """What one seeding call adds."""

    members: list[MemberRecord] = field(default_factory=list)
    identities: list[IdentityRecord] = field(default_factory=list)
    events: list[EventRow] = field(default_factory=list)


@functools.cache
def _demo_password_hash() -> str:
    # One fixed hash for every seeded password member: hashing thousands would dominate seeding.
    return hash_password("demo-password", salt=b"plabdata-seeded!")


def _weighted(rng: random.Random, choices: tuple[tuple[str, int], ...]) -> str:
    return rng.choices([c for c, _ in choices], weights=[w for _, w in choices])[0]


def _token(rng: random.Random, length: int, alphabet: str = _URLSAFE) -> str:
    return "".join(rng.choices(alphabet, k=length))


def _email(rng: random.Random, first: str, last: str) -> str:
    first, last = first.lower(), last.lower()
    local = rng.choice(
        (
            f"{first}.{last}",
            f"{first}{last}",
            f"{first[0]}.{last}",
            f"{first}_{last}",
            f"{first}{rng.randint(1, 99)}",
            f"{last}.{first}",
        )
    )
    if rng.random() < 0.08:
        local += "+" + rng.choice(_TAGS)
    domain = _weighted(rng, _FREE_MAIL) if rng.random() < 0.75 else rng.choice(_WORK_MAIL)
    return f"{local}@{domain}"


def _identity(
    rng: random.Random, member_id: str, provider: str, created: int, now: int
) -> IdentityRecord:
    identity = IdentityRecord(member_id=member_id, provider=provider, provider_user_id="")
    identity.last_used_at_ms = max(created, now - rng.randint(0, 30 * _DAY))
    roll = rng.random()
    if roll < 0.45:
        expires = now - rng.randint(_MINUTE, 30 * _DAY)
    elif roll < 0.60:
        expires = now + rng.randint(_MINUTE // 6, 10 * _MINUTE)
    else:
        expires = now + rng.randint(10 * _MINUTE, 60 * _MINUTE)
    if provider == "google":
        identity.provider_user_id = str(rng.randint(10**20, 10**21 - 1))
        identity.access_token = "ya29." + _token(rng, 120)
        identity.refresh_token = "1//0" + _token(rng, 99)
        identity.access_token_expires_at_ms = expires
        if rng.random() < 0.04:
            identity.refresh_token_expires_at_ms = now - rng.randint(_DAY, 60 * _DAY)
    elif provider == "github":
        # GitHub OAuth-app tokens do not expire and come without a refresh token.
        identity.provider_user_id = str(rng.randint(100_000, 150_000_000))
        identity.access_token = "gho_" + _token(rng, 36, string.ascii_letters + string.digits)
    elif provider == "gitlab":
        identity.provider_user_id = str(rng.randint(1_000_000, 20_000_000))
        identity.access_token = _token(rng, 64, "0123456789abcdef")
        identity.refresh_token = _token(rng, 64, "0123456789abcdef")
        identity.access_token_expires_at_ms = expires + rng.randint(0, 60 * _MINUTE)
    else:
        identity.provider_user_id = "-".join(
            _token(rng, n, "0123456789abcdef") for n in (8, 4, 4, 4, 12)
        )
        identity.access_token = "EwB" + _token(rng, 160)
        identity.refresh_token = "M.C5" + _token(rng, 180)
        identity.access_token_expires_at_ms = expires
        identity.refresh_token_expires_at_ms = now + rng.randint(30 * _DAY, 90 * _DAY)
    if identity.refresh_token is not None and rng.random() < 0.04:
        identity.refresh_token_revoked = True
    return identity


def _usage_count(rng: random.Random, plan: str) -> int:
    roll = rng.random()
    bands: tuple[tuple[float, int, int], ...]
    if plan == "free":
        bands = ((0.45, 0, 0), (0.75, 1, 30), (0.87, 31, 84), (0.95, 85, 99), (1.0, 100, 130))
    elif plan == "pro":
        bands = ((0.35, 0, 0), (0.90, 1, 100), (1.0, 101, 400))
    else:
        bands = ((0.30, 0, 0), (1.0, 1, 200))
    for upper, low, high in bands:
        if roll < upper:
            return rng.randint(low, high)
    return 0


def _events(rng: random.Random, member_id: str, plan: str, now: int) -> list[EventRow]:
    month_start, _ = month_bounds(now)
    in_quota = _usage_count(rng, plan)
    extra = rng.randint(0, 3) if in_quota else 0  # a few events that never count
    rows: list[EventRow] = []
    for number in range(in_quota + extra):
        country = _weighted(rng, _COUNTRIES) if rng.random() < 0.7 else None
        subdivisions = _SUBDIVISIONS.get(country or "")
        subdivision = rng.choice(subdivisions) if subdivisions and rng.random() < 0.6 else None
        received = month_start + int(rng.random() * max(1, now - month_start))
        source = _weighted(rng, _EVENT_SOURCES)
        rows.append((member_id, source, country, subdivision, number < in_quota, received))
    return rows


def _member(
    rng: random.Random,
    plugin_id: str,
    email: str,
    names: tuple[str, str],
    anchor: int,
    created_between: tuple[int, int] | None,
) -> MemberRecord:
    first, last = names
    method = _weighted(rng, _METHODS)
    if created_between is None:
        created = anchor - rng.randint(0, SIGNUP_WINDOW_MS)
        updated = created if rng.random() < 0.5 else rng.randint(created, anchor)
    else:
        start, end = created_between
        created = updated = start + int(rng.random() * max(1, end - start))
    member = MemberRecord(
        id=member_id_for(email, plugin_id),
        email=email,
        sign_in_method=method,
        is_verified=rng.random() < 0.8,
        created_at_ms=created,
        updated_at_ms=updated,
        password_hash=_demo_password_hash() if method == "email-and-password" else None,
        plan=_weighted(rng, _PLANS),
    )
    oauth = method in ("google", "github", "gitlab", "microsoft")
    if rng.random() < (0.95 if oauth else 0.45):
        member.name, member.given_name, member.family_name = f"{first} {last}", first, last
    if method == "google" and rng.random() < 0.7:
        member.picture_url = f"https://lh3.googleusercontent.com/a/{_token(rng, 40)}=s96-c"
    elif method == "github":
        member.picture_url = f"https://avatars.githubusercontent.com/u/{rng.randint(1, 10**8)}?v=4"
    elif rng.random() < 0.1:
        digest = hashlib.md5(email.encode()).hexdigest()
        member.picture_url = f"https://www.gravatar.com/avatar/{digest}"
    if rng.random() < 0.4:
        member.metadata = {"company": rng.choice(_COMPANIES), "source": rng.choice(_SOURCES)}
    if rng.random() < 0.25:
        member.custom_fields = {"role": rng.choice(_ROLES), "teamSize": rng.choice(_TEAM_SIZES)}
    return member


def generate(
    count: int,
    *,
    random_seed: int,
    plugin_id: str,
    start_index: int,
    now: int,
    taken_emails: set[str] | None = None,
    created_between: tuple[int, int] | None = None,
    with_events: bool = True,
) -> DemoData:
    """Members ``start_index .. start_index+count-1`` of ``random_seed``, with their data.

    An email already in ``taken_emails`` gets the member's index appended to its local part.
    Signups spread over the 18 months before ``min(ANCHOR_MS, now)``, or over
    ``created_between`` (new signups while time passes, see ``churn``); ``with_events=False``
    leaves this month's usage out.
    """
    anchor = min(ANCHOR_MS, now)
    taken = set() if taken_emails is None else set(taken_emails)
    data = DemoData()
    for index in range(start_index, start_index + count):
        rng = random.Random(f"plabdata-seed:{random_seed}:{index}")
        first, last = rng.choice(_FIRST), rng.choice(_LAST)
        email = _email(rng, first, last)
        if email in taken:
            local, domain = email.split("@")
            email = f"{local}.{index}@{domain}"
        taken.add(email)
        member = _member(rng, plugin_id, email, (first, last), anchor, created_between)
        data.members.append(member)
        if member.sign_in_method in ("google", "github", "gitlab", "microsoft"):
            providers = [member.sign_in_method]
            if rng.random() < 0.15:
                others = [p for p in ("google", "github", "gitlab") if p not in providers]
                providers.append(rng.choice(others))
            for provider in providers:
                data.identities.append(
                    _identity(rng, member.id, provider, member.created_at_ms, now)
                )
        if with_events:
            data.events.extend(_events(rng, member.id, member.plan, now))
    return data


def identity_for(
    rng: random.Random, member_id: str, provider: str, created: int, now: int
) -> IdentityRecord:
    """A realistic identity at ``provider`` (tokens, expiries) linked at ``created``."""
    return _identity(rng, member_id, provider, created, now)


def usage_event(rng: random.Random, member_id: str, received_at_ms: int) -> EventRow:
    """One in-quota usage event of the member, with a realistic source and location."""
    country = _weighted(rng, _COUNTRIES) if rng.random() < 0.7 else None
    subdivisions = _SUBDIVISIONS.get(country or "")
    subdivision = rng.choice(subdivisions) if subdivisions and rng.random() < 0.6 else None
    return (member_id, _weighted(rng, _EVENT_SOURCES), country, subdivision, True, received_at_ms)


def profile_fields(rng: random.Random) -> tuple[str, str, dict[str, str]]:
    """A first name, a last name and a metadata map, as a member might set them."""
    metadata = {"company": rng.choice(_COMPANIES), "source": rng.choice(_SOURCES)}
    return rng.choice(_FIRST), rng.choice(_LAST), metadata


def seed_members(
    store: Store, count: int, *, random_seed: int = 0, plugin_id: str, now: int | None = None
) -> list[str]:
    """Add ``count`` demo members (continuing this seed's sequence); returns their ids."""
    counter = f"seed:{random_seed}"
    start = int(store.get_meta(counter) or 0)
    data = generate(
        count,
        random_seed=random_seed,
        plugin_id=plugin_id,
        start_index=start,
        now=now_ms() if now is None else now,
        taken_emails=store.all_emails(),
    )
    store.insert_bulk(data.members, data.identities, data.events)
    store.set_meta(counter, str(start + count))
    return [member.id for member in data.members]
