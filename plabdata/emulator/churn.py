"""Time passing on the emulator: seeded, realistic churn of the member base, step by step.

``POST /_emulator/clock/advance {"days": 7, "churn": true, "randomSeed": 1}`` moves the
clock forward in steps of at most a week and, in each step, changes the member base the way
a live plugin's changes: new **signups** (demo members, created at times inside the step,
mostly on the free plan), **deletions**, **plan moves** (upgrades more often than
downgrades), **new identities** (a member links another provider; now and then one is
unlinked), **verifications**, **profile edits** (a name or the metadata) and **usage**
(in-quota events at times inside the step, so quota counts move and some members go over).

Rates are per week, scaled to the step's length:

| what | per week |
|---|---|
| signups | 3 % of the members (at least a few) |
| deletions | 1 % (free members more, unlimited less) |
| plan moves | 2 % (free → pro mostly; pro → free, pro → unlimited; unlimited → pro) |
| identities | 1 % link another provider; 0.2 % unlink one (never their sign-in method's) |
| verifications | 8 % of the unverified |
| profile edits | 1 % |
| usage | 60 % of members active; events a day by plan: free 1.5, pro 10, unlimited 20 |

(usage per member is heavy-tailed around those means, so some free members go over 100)

Every draw comes from ``Random("plabdata-churn:<randomSeed>:<step>")`` with the step
counted by the store, so the same seed on the same member base (same plugin id, hence same
member ids) gives the same churn.

    >>> counts = churn_step(store, plugin_id="plg_x", random_seed=1, start_ms=0, end_ms=DAY)
    >>> counts.to_json()["signups"] >= 0                   # doctest: +SKIP
    True
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, fields

from plabdata.emulator.clock import Clock
from plabdata.emulator.model import PROVIDERS, IdentityRecord, MemberRecord
from plabdata.emulator.seed import (
    EventRow,
    generate,
    identity_for,
    profile_fields,
    usage_event,
)
from plabdata.emulator.store import Store

DAY = 86_400_000
WEEK = 7 * DAY
#: The longest step one churn pass covers; longer advances are cut into such steps.
MAX_STEP_MS = WEEK
SIGNUP_RATE = 0.03
MIN_SIGNUPS = 3
DELETE_RATE = 0.01
PLAN_MOVE_RATE = 0.02
LINK_RATE = 0.01
UNLINK_RATE = 0.002
VERIFY_RATE = 0.08
PROFILE_RATE = 0.01
ACTIVE_SHARE = 0.6
#: Mean in-quota events per day of an active member, by plan.
DAILY_EVENTS = {"free": 1.5, "pro": 10.0, "unlimited": 20.0}
_DELETE_WEIGHT = {"free": 1.3, "pro": 0.6, "unlimited": 0.3}
_MOVES = {
    "free": (("pro", 0.9), ("unlimited", 0.1)),
    "pro": (("free", 0.65), ("unlimited", 0.35)),
    "unlimited": (("pro", 1.0),),
}
_STEP_KEY = "churn:steps"


@dataclass
class ChurnCounts:
    """What one advance changed."""

    signups: int = 0
    deletions: int = 0
    upgrades: int = 0
    downgrades: int = 0
    identities_added: int = 0
    identities_removed: int = 0
    verified: int = 0
    profile_edits: int = 0
    events: int = 0

    def add(self, other: ChurnCounts) -> None:
        """Add another step's counts to these."""
        for item in fields(self):
            setattr(self, item.name, getattr(self, item.name) + getattr(other, item.name))

    def to_json(self) -> dict[str, int]:
        """Control-API view (camelCase)."""
        return {_camel(item.name): getattr(self, item.name) for item in fields(self)}


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def _binomial(rng: random.Random, n: int, p: float) -> int:
    return sum(rng.random() < p for _ in range(n))


def _inside(rng: random.Random, start: int, end: int) -> int:
    return start + int(rng.random() * max(1, end - start))


def _activity(random_seed: int, member_id: str) -> float:
    """A member's lasting appetite for the plugin: 0 for the inactive, up to ~2 (heavy)."""
    level = random.Random(f"plabdata-activity:{random_seed}:{member_id}").random()
    return 0.0 if level >= ACTIVE_SHARE else 2 * (1 - level / ACTIVE_SHARE) ** 1.5 + 0.05


def _new_step(store: Store) -> int:
    step = int(store.get_meta(_STEP_KEY) or 0) + 1
    store.set_meta(_STEP_KEY, str(step))
    return step


@dataclass
class Advance:
    """What ``advance`` did: the clock before and after, its steps and the churn applied."""

    from_ms: int
    to_ms: int
    steps: int
    counts: ChurnCounts


def advance(
    store: Store,
    clock: Clock,
    *,
    plugin_id: str,
    ms: int,
    churn: bool = True,
    random_seed: int = 0,
) -> Advance:
    """Move ``clock`` forward by ``ms``, applying churn in steps of at most a week."""
    if ms <= 0:
        raise ValueError("the clock only moves forward")
    total = ChurnCounts()
    start = end = 0
    steps = 0
    left = ms
    while left > 0:
        step = min(left, MAX_STEP_MS)
        begin, end = clock.advance(step)
        start = begin if steps == 0 else start
        if churn:
            total.add(
                churn_step(
                    store,
                    plugin_id=plugin_id,
                    random_seed=random_seed,
                    start_ms=begin,
                    end_ms=end,
                )
            )
        left -= step
        steps += 1
    return Advance(start, end, steps, total)


def churn_step(
    store: Store, *, plugin_id: str, random_seed: int, start_ms: int, end_ms: int
) -> ChurnCounts:
    """Apply one step of churn for the time ``[start_ms, end_ms)`` (at most a week)."""
    rng = random.Random(f"plabdata-churn:{random_seed}:{_new_step(store)}")
    scale = (end_ms - start_ms) / WEEK
    members = store.all_members()
    identities = store.all_identities()
    counts = ChurnCounts()
    changed: dict[str, MemberRecord] = {}
    new_identities: list[IdentityRecord] = []
    removed: list[tuple[str, str]] = []
    deleted: list[str] = []
    for member in members:
        if rng.random() < DELETE_RATE * scale * _DELETE_WEIGHT.get(member.plan, 1.0):
            deleted.append(member.id)
            continue
        _move_plan(rng, member, PLAN_MOVE_RATE * scale, changed, counts)
        if not member.is_verified and rng.random() < min(1.0, VERIFY_RATE * scale):
            member.is_verified = True
            member.updated_at_ms = max(member.updated_at_ms, _inside(rng, start_ms, end_ms))
            changed[member.id] = member
            counts.verified += 1
        if rng.random() < PROFILE_RATE * scale:
            _edit_profile(rng, member, start_ms, end_ms)
            changed[member.id] = member
            counts.profile_edits += 1
        mine = identities.get(member.id, [])
        if rng.random() < LINK_RATE * scale:
            linked = _link(rng, member, mine, start_ms, end_ms)
            if linked is not None:
                new_identities.append(linked)
                counts.identities_added += 1
        elif len(mine) > 1 and rng.random() < UNLINK_RATE * scale:
            extra = [i for i in mine if i.provider != member.sign_in_method]
            if extra:
                removed.append((member.id, rng.choice(extra).provider))
                counts.identities_removed += 1
    counts.deletions = len(deleted)
    gone = set(deleted)
    signups = _signups(store, rng, plugin_id, random_seed, len(members), scale, start_ms, end_ms)
    counts.signups = len(signups.members)
    events = _usage(
        rng,
        random_seed,
        [m for m in members if m.id not in gone] + signups.members,
        start_ms,
        end_ms,
    )
    counts.events = len(events)
    store.apply_churn(
        new_members=signups.members,
        new_identities=signups.identities + new_identities,
        changed_members=list(changed.values()),
        deleted_ids=deleted,
        removed_identities=removed,
        events=events,
    )
    return counts


def _move_plan(
    rng: random.Random,
    member: MemberRecord,
    rate: float,
    changed: dict[str, MemberRecord],
    counts: ChurnCounts,
) -> None:
    moves = _MOVES.get(member.plan)
    if not moves or rng.random() >= rate:
        return
    target = rng.choices([p for p, _ in moves], weights=[w for _, w in moves])[0]
    order = ("free", "pro", "unlimited")
    if order.index(target) > order.index(member.plan):
        counts.upgrades += 1
    else:
        counts.downgrades += 1
    member.plan = target
    changed[member.id] = member


def _edit_profile(rng: random.Random, member: MemberRecord, start: int, end: int) -> None:
    first, last, metadata = profile_fields(rng)
    if member.name is None or rng.random() < 0.3:
        member.name, member.given_name, member.family_name = f"{first} {last}", first, last
    else:
        member.metadata = metadata
    member.updated_at_ms = max(member.updated_at_ms + 1, _inside(rng, start, end))


def _link(
    rng: random.Random, member: MemberRecord, mine: list[IdentityRecord], start: int, end: int
) -> IdentityRecord | None:
    have = {identity.provider for identity in mine}
    free = [p for p in PROVIDERS if p not in have]
    if not free:
        return None
    linked_at = _inside(rng, start, end)
    return identity_for(rng, member.id, rng.choice(free), linked_at, end)


class _Signups:
    def __init__(self, members: list[MemberRecord], identities: list[IdentityRecord]) -> None:
        self.members = members
        self.identities = identities


def _signups(
    store: Store,
    rng: random.Random,
    plugin_id: str,
    random_seed: int,
    base: int,
    scale: float,
    start: int,
    end: int,
) -> _Signups:
    """Demo members continuing the seed's sequence, signed up inside the step."""
    count = _binomial(rng, base, SIGNUP_RATE * scale) + _binomial(rng, MIN_SIGNUPS, min(1, scale))
    if count == 0:
        return _Signups([], [])
    counter = f"seed:{random_seed}"
    first = int(store.get_meta(counter) or 0)
    data = generate(
        count,
        random_seed=random_seed,
        plugin_id=plugin_id,
        start_index=first,
        now=end,
        taken_emails=store.all_emails(),
        created_between=(start, end),
        with_events=False,
    )
    store.set_meta(counter, str(first + count))
    for member in data.members:
        member.plan = "pro" if rng.random() < 0.08 else "free"  # new members start small
    return _Signups(data.members, data.identities)


def _usage(
    rng: random.Random, random_seed: int, members: list[MemberRecord], start: int, end: int
) -> list[EventRow]:
    """In-quota events inside the step: heavy-tailed counts around each member's rate."""
    events: list[EventRow] = []
    for member in members:
        activity = _activity(random_seed, member.id)
        since = max(start, member.created_at_ms)
        if activity == 0.0 or since >= end:
            continue
        mean = DAILY_EVENTS.get(member.plan, 1.0) * activity * (end - since) / DAY
        count = math.floor(rng.expovariate(1 / mean)) if mean > 0 else 0
        events.extend(usage_event(rng, member.id, _inside(rng, since, end)) for _ in range(count))
    return events
