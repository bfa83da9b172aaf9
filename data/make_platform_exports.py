"""Write the five sample platform exports in ``plabdata/samples/exports/`` (deterministic).

One small export per platform, in each platform's documented export format (see
``docs/migrations.md``), 30 users each, made from one fixed list of people:

- users with a password hash (bcrypt / scrypt strings: made-up, never real),
- OAuth-only users (Google / GitHub identities, no password),
- unverified users,
- nested metadata, including a list of objects (kept as JSON text, with a warning),
- an IDN address (``zoë@bücher.example``),
- one invalid row (an address without a domain).

    python data/make_platform_exports.py            # rewrites the five files
    python data/make_platform_exports.py --check    # exit 1 if a file differs
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

OUT = Path(__file__).resolve().parents[1] / "plabdata" / "samples" / "exports"
USERS = 30
FIRST = ["Ada", "Grace", "Alan", "Edsger", "Barbara", "Donald", "Frances", "Ken", "Radia", "Linus"]
LAST = ["Lovelace", "Hopper", "Turing", "Dijkstra", "Liskov", "Knuth", "Allen", "Thompson"]
START = datetime(2021, 3, 1, 9, 30, 15, 123000, tzinfo=UTC)


def people() -> list[dict[str, Any]]:
    """The same 30 people for every platform; ``kind`` is how each signs in."""
    out = []
    for i in range(USERS):
        given, family = FIRST[i % len(FIRST)], LAST[i % len(LAST)]
        kind = "oauth" if i % 5 == 3 else "password"
        email = f"{given.lower()}.{family.lower()}{i}@example.com"
        if i == 7:
            given, family, email = "Zoë", "Bücher", "zoë@bücher.example"
        if i == 11:
            email = "not-an-address"  # the invalid row
        out.append(
            {
                "i": i,
                "given": given,
                "family": family,
                "email": email,
                "verified": i % 4 != 1,
                "kind": kind,
                "provider": "google" if i % 2 else "github",
                "created": START + timedelta(days=11 * i, hours=i, seconds=7 * i),
                "plan": ["free", "pro", "team"][i % 3],
                "company": f"Company {i % 6}",
                "theme": "dark" if i % 2 else "light",
                "seats": i % 9 + 1,
                "beta": i % 3 == 0,
                "tags": ["early", "ops"] if i % 6 == 0 else None,
                "devices": [{"os": "ios", "v": 17}, {"os": "web"}] if i == 4 else None,
                "photo": f"https://images.example.com/u/{i}.png" if i % 3 else None,
            }
        )
    return out


def _iso(stamp: datetime) -> str:
    return stamp.strftime("%Y-%m-%dT%H:%M:%S.") + f"{stamp.microsecond // 1000:03d}Z"


def _ms(stamp: datetime) -> int:
    return int(stamp.timestamp() * 1000)


def _bcrypt(i: int) -> str:
    return "$2b$10$" + f"{i:02d}sampleNotARealHashSampleNotARealHash0000000"[:53]


def _user_meta(p: dict[str, Any]) -> dict[str, Any]:
    meta: dict[str, Any] = {"company": p["company"], "prefs": {"theme": p["theme"]}}
    if p["tags"]:
        meta["tags"] = p["tags"]
    if p["devices"]:
        meta["devices"] = p["devices"]
    return meta


def auth0() -> str:
    """Auth0's user export job, JSON format: NDJSON, one user per line."""
    lines = []
    for p in people():
        uid = f"{p['i']:024x}"
        social = p["kind"] == "oauth"
        connection = "google-oauth2" if p["provider"] == "google" else "github"
        user: dict[str, Any] = {
            "user_id": f"{connection}|{p['i'] + 100000}" if social else f"auth0|{uid}",
            "email": p["email"],
            "email_verified": p["verified"],
            "given_name": p["given"],
            "family_name": p["family"],
            "name": f"{p['given']} {p['family']}" if p["i"] % 7 else p["email"],
            "nickname": p["given"].lower(),
            "picture": p["photo"] or f"https://s.gravatar.com/avatar/{uid}.png",
            "created_at": _iso(p["created"]),
            "updated_at": _iso(p["created"] + timedelta(days=30)),
            "identities": [
                {
                    "connection": connection if social else "Username-Password-Authentication",
                    "provider": connection if social else "auth0",
                    "user_id": str(p["i"] + 100000) if social else uid,
                    "isSocial": social,
                }
            ],
            "user_metadata": _user_meta(p),
            "app_metadata": {"plan": p["plan"], "seats": p["seats"], "beta": p["beta"]},
            "logins_count": p["i"] * 3,
        }
        if not social and p["i"] % 2 == 0:
            # Merged in from Auth0's password-hash export (a support ticket): a bcrypt hash.
            user["passwordHash"] = _bcrypt(p["i"])
        lines.append(json.dumps(user, ensure_ascii=False, separators=(",", ":")))
    return "\n".join(lines) + "\n"


def firebase() -> str:
    """``firebase auth:export users.json``: ``{"users": [`` … ``]}``, 2-space objects."""
    users = []
    for p in people():
        user: dict[str, Any] = {
            "localId": f"fb{p['i']:026d}",
            "email": p["email"],
            "emailVerified": p["verified"],
            "displayName": f"{p['given']} {p['family']}",
            "lastSignedInAt": str(_ms(p["created"] + timedelta(days=3))),
            "createdAt": str(_ms(p["created"])),
        }
        if p["photo"]:
            user["photoUrl"] = p["photo"]
        if p["kind"] == "password":
            user["passwordHash"] = f"c2FtcGxlLWhhc2gt{p['i']:04d}bm90LXJlYWw="
            user["salt"] = f"c2FsdC{p['i']:04d}=="
        claims: dict[str, Any] = {"plan": p["plan"], "beta": p["beta"]}
        if p["devices"]:
            claims["devices"] = p["devices"]
        user["customAttributes"] = json.dumps(claims)
        if p["kind"] == "oauth":
            provider = "google.com" if p["provider"] == "google" else "github.com"
            user["providerUserInfo"] = [
                {
                    "providerId": provider,
                    "rawId": str(p["i"] + 500000),
                    "email": p["email"],
                    "displayName": f"{p['given']} {p['family']}",
                }
            ]
        else:
            user["providerUserInfo"] = []
        users.append(json.dumps(user, indent=2, ensure_ascii=False))
    return '{"users": [\n' + ",\n".join(users) + "]}"


def clerk() -> str:
    """The Clerk Dashboard's user export: CSV with the documented 13 columns."""
    header = [
        "id",
        "first_name",
        "last_name",
        "username",
        "primary_email_address",
        "primary_phone_number",
        "verified_email_addresses",
        "unverified_email_addresses",
        "verified_phone_numbers",
        "unverified_phone_numbers",
        "totp_secret",
        "password_digest",
        "password_hasher",
    ]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    for p in people():
        verified = p["email"] if p["verified"] else ""
        unverified = "" if p["verified"] else p["email"]
        password = p["kind"] == "password"
        writer.writerow(
            [
                f"user_2{p['i']:025d}",
                p["given"],
                p["family"],
                f"{p['given'].lower()}{p['i']}" if p["i"] % 2 else "",
                p["email"],
                f"+1555010{p['i']:04d}" if p["i"] % 4 == 0 else "",
                verified,
                unverified,
                "",
                "",
                "",
                _bcrypt(p["i"]) if password else "",
                "bcrypt" if password else "",
            ]
        )
    return out.getvalue()


def supabase() -> str:
    """``select * from auth.users`` exported as CSV from Supabase's SQL editor."""
    header = [
        "instance_id",
        "id",
        "aud",
        "role",
        "email",
        "encrypted_password",
        "email_confirmed_at",
        "invited_at",
        "confirmation_token",
        "recovery_token",
        "last_sign_in_at",
        "raw_app_meta_data",
        "raw_user_meta_data",
        "is_super_admin",
        "created_at",
        "updated_at",
        "phone",
        "phone_confirmed_at",
        "is_sso_user",
        "deleted_at",
        "is_anonymous",
    ]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    for p in people():
        oauth = p["kind"] == "oauth"
        provider = p["provider"] if oauth else "email"
        stamp = p["created"].strftime("%Y-%m-%d %H:%M:%S.") + f"{p['created'].microsecond:06d}+00"
        user_meta: dict[str, Any] = _user_meta(p)
        if oauth:
            user_meta |= {
                "iss": f"https://{provider}.example",
                "sub": str(p["i"] + 700000),
                "full_name": f"{p['given']} {p['family']}",
                "avatar_url": p["photo"] or f"https://avatars.example.com/{p['i']}",
                "email": p["email"],
                "email_verified": True,
                "provider_id": str(p["i"] + 700000),
            }
        else:
            user_meta |= {"first_name": p["given"], "last_name": p["family"]}
        writer.writerow(
            [
                "00000000-0000-0000-0000-000000000000",
                f"5b2c{p['i']:04d}-1d3e-4f5a-8b6c-7d8e9f0a1b2c",
                "authenticated",
                "authenticated",
                p["email"],
                "" if oauth else _bcrypt(p["i"]),
                stamp if p["verified"] or oauth else "",
                "",
                "",
                "",
                stamp,
                json.dumps({"provider": provider, "providers": [provider], "plan": p["plan"]}),
                json.dumps(user_meta, ensure_ascii=False),
                "",
                stamp,
                stamp,
                "",
                "",
                "false",
                "",
                "false",
            ]
        )
    return out.getvalue()


def memberstack() -> str:
    """A Memberstack members CSV (the import/1.0-export columns, custom fields as columns)."""
    header = [
        "Member ID",
        "Email",
        "Verified",
        "Created At",
        "Plans",
        "Hashed Password",
        "Stripe Customer ID",
        "Login Redirect",
        "first-name",
        "last-name",
        "company",
        "Metadata",
    ]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    for p in people():
        meta: dict[str, Any] = {"theme": p["theme"], "seats": p["seats"]}
        if p["devices"]:
            meta["devices"] = p["devices"]
        writer.writerow(
            [
                f"mem_sb_{p['i']:020d}",
                p["email"],
                "true" if p["verified"] else "false",
                _iso(p["created"]),
                f"pln_{p['plan']}-a1b2" + (",pln_newsletter-c3d4" if p["i"] % 5 == 0 else ""),
                _bcrypt(p["i"]) if p["kind"] == "password" else "",
                f"cus_Sample{p['i']:06d}" if p["plan"] != "free" else "",
                "/welcome" if p["i"] % 2 else "",
                p["given"],
                p["family"],
                p["company"],
                json.dumps(meta),
            ]
        )
    return out.getvalue()


FILES = {
    "auth0_users.ndjson": auth0,
    "firebase_users.json": firebase,
    "clerk_users.csv": clerk,
    "supabase_users.csv": supabase,
    "memberstack_members.csv": memberstack,
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare, do not write")
    args = parser.parse_args(argv)
    OUT.mkdir(parents=True, exist_ok=True)
    stale = []
    for name, make in FILES.items():
        text = make()
        path = OUT / name
        if args.check:
            if not path.is_file() or path.read_text(encoding="utf-8") != text:
                stale.append(name)
        else:
            path.write_text(text, encoding="utf-8")
            print(f"wrote {path.relative_to(OUT.parents[2])}")
    if stale:
        print(f"out of date: {', '.join(stale)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
