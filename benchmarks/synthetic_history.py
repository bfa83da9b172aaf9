"""Synthetic member bases for the history benchmarks: 100,000 members, evolved week by week.

The frames have the columns and dtypes of ``plabdata.load_member_base`` (members, providers,
quota, plan label) and churn like the emulator's ``advance``: signups, deletions, plan moves,
new identities, verifications, metadata edits and fresh usage each week. Vectorised with
numpy so 26 weekly snapshots of 100,000 members take seconds to make, not an emulator hour.

    >>> bases = list(weekly_bases(1_000, weeks=3))
    >>> len(bases), len(bases[0])
    (3, 1000)
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator

import numpy as np
import pandas as pd

from plabdata.tables._dtypes import BOOLEAN, INT, SIGN_IN_METHOD, STRING, TIMESTAMP
from plabdata.wire import SIGN_IN_METHODS

WEEK = pd.Timedelta(days=7)
START = pd.Timestamp("2026-06-03T06:00:00Z")
_METHOD_WEIGHTS = np.array([45, 15, 25, 8, 5, 2], dtype=float) / 100
_PLANS = np.array(["free", "pro", "unlimited"])
_LIMITS = np.array([100, 5000, 0])
_COMPANIES = np.array(["Acme", "Globex", "Initech", "Hooli", "Umbrella Labs", "Stark"])
_FIRST = np.array(["Ada", "Alan", "Chen", "Emma", "Farah", "Jin", "Kai", "Maya", "Omar", "Zoe"])
_LAST = np.array(["Kim", "Lee", "Patel", "Rossi", "Silva", "Smith", "Tanaka", "Wang"])


def _ids(start: int, count: int) -> np.ndarray:
    return np.array(
        ["mem_" + hashlib.sha1(str(i).encode()).hexdigest() for i in range(start, start + count)],
        dtype=object,
    )


def _new_members(rng: np.random.Generator, start: int, count: int, at: pd.Timestamp) -> dict:
    method = rng.choice(len(SIGN_IN_METHODS), size=count, p=_METHOD_WEIGHTS)
    oauth = method >= 2
    first, last = rng.choice(_FIRST, count), rng.choice(_LAST, count)
    named = rng.random(count) < np.where(oauth, 0.95, 0.45)
    plan = rng.choice(3, size=count, p=[0.7, 0.25, 0.05])
    created = at - pd.to_timedelta(rng.integers(0, 7 * 86_400, count), unit="s")
    provider_names = np.array(["", "", "google", "github", "gitlab", "microsoft"])
    return {
        "member_id": _ids(start, count),
        "email": np.array([f"user{i}@example.com" for i in range(start, start + count)]),
        "is_verified": rng.random(count) < 0.8,
        "has_password": method == 0,
        "sign_in_method": np.array(SIGN_IN_METHODS)[method],
        "name": np.where(named, np.char.add(np.char.add(first, " "), last), None),
        "given_name": np.where(named, first, None),
        "family_name": np.where(named, last, None),
        "picture_url": np.where(oauth, "https://avatars.example.com/u/1", None),
        "created_at": created,
        "updated_at": created,
        "metadata.company": np.where(rng.random(count) < 0.4, rng.choice(_COMPANIES, count), None),
        "providers": provider_names[method],
        "n_identities": oauth.astype(int),
        "plan_index": plan,
    }


def _frame(columns: dict, at: pd.Timestamp, rng: np.random.Generator) -> pd.DataFrame:
    plan = columns["plan_index"]
    usage = np.where(
        rng.random(len(plan)) < 0.45, 0, rng.exponential(np.array([40, 800, 300])[plan])
    ).astype(int)
    frame = pd.DataFrame(
        {
            "member_id": pd.array(columns["member_id"], dtype=STRING),
            "email": pd.array(columns["email"], dtype=STRING),
            "is_verified": pd.array(columns["is_verified"], dtype=BOOLEAN),
            "has_password": pd.array(columns["has_password"], dtype=BOOLEAN),
            "sign_in_method": pd.Categorical(columns["sign_in_method"], dtype=SIGN_IN_METHOD),
            "name": pd.array(columns["name"], dtype=STRING),
            "given_name": pd.array(columns["given_name"], dtype=STRING),
            "family_name": pd.array(columns["family_name"], dtype=STRING),
            "picture_url": pd.array(columns["picture_url"], dtype=STRING),
            "created_at": pd.Series(columns["created_at"]).astype(TIMESTAMP).array,
            "updated_at": pd.Series(columns["updated_at"]).astype(TIMESTAMP).array,
            "metadata.company": pd.array(columns["metadata.company"], dtype=STRING),
            "providers": pd.array(columns["providers"], dtype=STRING),
            "n_identities": pd.array(columns["n_identities"], dtype=INT),
            "quota_interval": pd.array(["month"] * len(plan), dtype=STRING),
            "quota_usage_count": pd.array(usage, dtype=INT),
            "quota_usage_limit": pd.array(_LIMITS[plan], dtype=INT),
            "quota_is_unlimited": pd.array(plan == 2, dtype=BOOLEAN),
            "quota_is_over_limit": pd.array((plan < 2) & (usage >= _LIMITS[plan]), dtype=BOOLEAN),
            "quota_reset_in_days": pd.array([int(28 - at.day % 28)] * len(plan), dtype=INT),
        }
    )
    labels = _PLANS[plan]
    frame["plan"] = pd.Categorical(labels, categories=sorted(set(labels)))
    return frame


def evolve(
    columns: dict, rng: np.random.Generator, next_index: int, at: pd.Timestamp
) -> tuple[dict, int]:
    """One week of churn on a base's raw columns: new arrays (``columns`` is kept) and how
    many members joined."""
    n = len(columns["member_id"])
    keep = rng.random(n) >= 0.01  # 1 % leave
    out = {name: np.asarray(values)[keep].copy() for name, values in columns.items()}
    m = int(keep.sum())
    moves = rng.random(m) < 0.02
    plan = out["plan_index"]
    up = moves & (plan < 2) & (rng.random(m) < 0.75)
    down = moves & ~up & (plan > 0)
    plan[up] += 1
    plan[down] -= 1
    unverified = ~out["is_verified"].astype(bool)
    out["is_verified"] = out["is_verified"] | (unverified & (rng.random(m) < 0.10))
    linked = (rng.random(m) < 0.01) & (out["n_identities"] < 2)
    out["providers"] = np.where(
        linked,
        np.where(
            out["providers"] == "", "github", np.char.add(out["providers"].astype(str), ",gitlab")
        ),
        out["providers"],
    )
    out["n_identities"] = out["n_identities"] + linked
    edited = rng.random(m) < 0.005
    out["metadata.company"] = np.where(edited, rng.choice(_COMPANIES, m), out["metadata.company"])
    out["updated_at"] = np.where(edited, at, out["updated_at"])
    count = int(rng.binomial(n, 0.011))  # ~1.1 % join: the base stays near its size
    joined = _new_members(rng, next_index, count, at)
    return {name: np.concatenate([out[name], joined[name]]) for name in out}, count


def weekly_bases(
    n_members: int = 100_000, weeks: int = 26, *, seed: int = 0
) -> Iterator[pd.DataFrame]:
    """``weeks`` member bases, one a week from :data:`START`, each as of its snapshot time
    (``frame.attrs["at"]``)."""
    rng = np.random.default_rng(seed)
    at = START
    columns = _new_members(rng, 0, n_members, at)
    columns["created_at"] = at - pd.to_timedelta(rng.integers(0, 548 * 86_400, n_members), "s")
    columns["updated_at"] = columns["created_at"]
    next_index = n_members
    for week in range(weeks):
        if week:
            at = at + WEEK
            columns, joined = evolve(columns, rng, next_index, at)
            next_index += joined
        frame = _frame(columns, at, rng)
        frame.attrs["at"] = at
        yield frame
