"""Frames built from records: dtypes hold even for the awkward shapes."""

from __future__ import annotations

import pandas as pd

from plabdata.client._records import Identity, Member
from plabdata.tables._export import neutralise_formulas
from plabdata.tables._frames import (
    IDENTITY_COLUMNS,
    MEMBER_COLUMNS,
    identities_frame,
    members_frame,
)


def test_identities_with_no_timestamps_at_all_keep_their_dtypes():
    # A github identity has no expiries: a frame of only such rows once lost its time zone.
    frame = identities_frame([("m1", Identity("github", "1"))])
    for name, dtype in IDENTITY_COLUMNS.items():
        assert frame[name].dtype == dtype, name
    assert frame.access_token_expires_at.isna().all()


def test_empty_frames_have_every_documented_column():
    assert list(members_frame([]).columns) == list(MEMBER_COLUMNS)
    assert list(identities_frame([]).columns) == list(IDENTITY_COLUMNS)


def test_unknown_sign_in_method_and_extra_fields_are_kept():
    member = Member.from_json(
        {
            "id": "mem_1",
            "auth": {
                "email": "a@x.io",
                "isVerified": True,
                "hasPassword": False,
                "signInMethod": "apple",
                "mfa": True,
            },
            "customFields": {},
            "metadata": {"k": "v"},
            "createdAtMs": 1,
            "updatedAtMs": 2,
            "lastLoginAtMs": 3,
        }
    )
    frame = members_frame([member])
    assert frame.sign_in_method.iloc[0] == "apple"
    assert frame["extra.lastLoginAtMs"].iloc[0] == "3"
    assert frame["extra.auth.mfa"].iloc[0] == "True"
    assert frame["metadata.k"].iloc[0] == "v"


def test_formula_neutralising_leaves_other_cells_alone():
    frame = pd.DataFrame({"a": ["=1+1", "ok", None, "@x", "-3"], "n": [1, 2, 3, 4, 5]})
    safe = neutralise_formulas(frame)
    assert safe.a.tolist()[:2] == ["'=1+1", "ok"]
    assert pd.isna(safe.a.iloc[2])
    assert safe.a.iloc[3] == "'@x" and safe.a.iloc[4] == "'-3"
    assert safe.n.tolist() == [1, 2, 3, 4, 5]
