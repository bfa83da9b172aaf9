"""State in a SQLite file survives a restart: members, identities, events, keys, credentials."""

from __future__ import annotations

from pathlib import Path

import httpx
import pluginlab_admin

from plabdata.emulator import EmulatorHandle, official_app, running


def _official(emu: EmulatorHandle) -> pluginlab_admin.App:
    return official_app(emu.settings)


def test_restart_on_the_same_db_keeps_everything(tmp_path: Path) -> None:
    db = tmp_path / "emulator.db"
    with running(db=db, seed=30) as first:
        secret, plugin_id = first.secret, first.plugin_id
        app = _official(first)
        member = app.get_auth().create_member("kept@example.com", "hunter22-clear")
        first.set_identity(member.id, "gitlab", provider_user_id="g1", refresh_token="r")
        app.get_event().create_custom("web", member_id=member.id)
        first.set_plan(member.id, "pro")
        old_kid = first.health()["kid"]
        new_kid = first.rotate_key()
        token = first.mint_token(member.id)
        before = first.stats()
        members_before = app.get_auth().get_members(limit=50).items

    with running(db=db, seed=30) as second:  # seed only fills an empty store
        assert second.secret == secret and second.plugin_id == plugin_id
        app = _official(second)
        assert app.get_auth().get_members(limit=50).items == members_before
        after = second.stats()
        for key in ("members", "identities", "events", "eventsByMember", "eventsBySource"):
            assert after[key] == before[key], key
        assert second.plan(member.id)["plan"] == "pro"
        assert app.get_auth().get_member_identities(member.id).gitlab is not None
        assert app.get_monetization().get_member_quota_usage(member.id).usage_count == 1
        kids = [key["kid"] for key in httpx.get(second.settings.cert_url).json()["keys"]]
        assert kids == [new_kid, old_kid]
        assert app.get_auth().verify_token(token).uid == member.id

    stored = b"".join(path.read_bytes() for path in tmp_path.iterdir())
    assert b"hunter22-clear" not in stored


def test_given_credentials_replace_stored_ones(tmp_path: Path) -> None:
    db = tmp_path / "emulator.db"
    with running(db=db, secret="first-secret") as first:
        assert first.secret.reveal() == "first-secret"
    with running(db=db, secret="second-secret") as second:
        assert second.secret.reveal() == "second-secret"
    with running(db=db) as third:
        assert third.secret.reveal() == "second-secret"
