"""The member ``Plan``: what applying a sheet would do, to review, save and apply later.

:func:`~plabdata.plan_member_changes` (:mod:`plabdata.members._plan`) builds one;
:func:`~plabdata.apply_plan` carries it out. This module holds the object itself: its views
(``creates``, ``updates``, ``counts()``…), its text and HTML summaries, the journal key of
each op, and its JSON file (:meth:`Plan.save`, :meth:`Plan.load`).

What the plan holds, and what it never holds:

- **creates** — new emails, with the fields to set and ``password_source``: ``"sheet"`` (the
  sheet's ``password`` column) or ``"generated"`` (a strong random password made *at apply
  time*, sent once and never stored, logged or shown; such members sign in by resetting it or
  with another sign-in method).
- **updates** — member id and only the changed fields, each with its before and after value.
- **deletes** — only with ``delete_missing=True``, capped by ``max_deletes``.
- **unsupported** — differences the API cannot apply (an email change, ``is_verified`` or the
  sign-in method of an existing member, custom fields), one line each: reported, never dropped.
- an **unchanged** count, and the sheet's **invalid** rows when planned from a
  :class:`~plabdata.SheetResult`.

Passwords: a plan in memory keeps the sheet's passwords as :class:`~plabdata.config.Secret`
objects; :meth:`Plan.save` writes none of them (only ``password_source``). A loaded plan whose
creates take their password from the sheet needs it again: ``Plan.load(p).with_passwords(
read_member_sheet(sheet))`` — ``apply_plan`` refuses to start without it. A loaded plan is
checked again for one op per member (:class:`~plabdata.errors.PlanError`).

    >>> plan.save("plan.json")
    >>> Plan.load("plan.json").with_passwords(read_member_sheet("members.xlsx")).counts()
"""

from __future__ import annotations

import hashlib
import html
import json
import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from plabdata.config import Secret
from plabdata.errors import PlanError
from plabdata.members._diff import (
    INVALID_COLUMNS,
    OP_COLUMNS,
    ROW_COLUMNS,
    changes_frame,
    check_one_op_per_member,
    typed,
)
from plabdata.members._sheet import SheetResult
from plabdata.tables._keys import email_key, email_keys

PLAN_FORMAT = "plabdata.member-plan"
PLAN_VERSION = 1
OPS = ("create", "update", "delete", "unsupported")


@dataclass(frozen=True, repr=False, eq=False)
class Plan:
    """What applying a sheet would do. Build with :func:`~plabdata.plan_member_changes`.

    Attributes:
        ops: one row per create / update / delete / unsupported difference (``op_id``, ``op``,
            ``row``, ``email``, ``member_id``, ``password_source``, ``expected_updated_at_ms``,
            ``problem``).
        changes: one row per (op, field): ``before`` and ``after`` values.
        unchanged_rows: the rows already in line (``row``, ``email``, ``member_id``).
        invalid: the sheet rows left out as invalid (``row``, ``email``, ``problem``).
        plugin_id: the plugin the current members came from (checked when applying).
        meta: how the plan was made (key, blank_means, source, created_at, current_count).
    """

    ops: pd.DataFrame
    changes: pd.DataFrame
    unchanged_rows: pd.DataFrame
    invalid: pd.DataFrame
    plugin_id: str | None
    meta: dict[str, Any] = field(default_factory=dict)
    passwords: dict[str, Secret] = field(default_factory=dict)

    # -- views ------------------------------------------------------------------------------

    def _kind(self, op: str) -> pd.DataFrame:
        frame = self.to_frame()
        return frame[frame["op"] == op].reset_index(drop=True)

    @property
    def creates(self) -> pd.DataFrame:
        """The creates, one row each (see :meth:`to_frame`)."""
        return self._kind("create")

    @property
    def updates(self) -> pd.DataFrame:
        """The updates: member id, changed ``fields``, ``before`` and ``after`` maps."""
        return self._kind("update")

    @property
    def deletes(self) -> pd.DataFrame:
        """The deletes (only with ``delete_missing=True``)."""
        return self._kind("delete")

    @property
    def unsupported(self) -> pd.DataFrame:
        """Differences the API cannot apply, with the reason in ``problem``."""
        return self._kind("unsupported")

    @property
    def unchanged(self) -> int:
        """How many desired rows already match their member."""
        return len(self.unchanged_rows)

    def counts(self) -> dict[str, int]:
        """Ops per kind, plus ``unchanged`` and ``invalid`` rows — and, when the plan creates
        members from a platform export, ``reset_needed`` and ``oauth_only``: the creates whose
        ``password_note`` says they need a password reset (or a magic-email-code sign-in) or
        signed in with a social provider only.

        Example:
            >>> plan.counts()
            {'create': 3, 'update': 1, 'delete': 0, 'unsupported': 0, 'unchanged': 9, 'invalid': 1}
        """
        by_kind = self.ops["op"].value_counts()
        out = {op: int(by_kind.get(op, 0)) for op in OPS}
        out = {**out, "unchanged": self.unchanged, "invalid": len(self.invalid)}
        return {**out, **self.password_notes()}

    def password_notes(self) -> dict[str, int]:
        """``{"reset_needed": n, "oauth_only": m}`` among the creates (empty for a plain sheet).

        Example:
            >>> plan.password_notes()
            {'reset_needed': 23, 'oauth_only': 6}
        """
        if "password_note" not in self.ops:
            return {}
        notes = self.ops.loc[self.ops["op"] == "create", "password_note"].dropna()
        if notes.empty:
            return {}
        found = notes.value_counts()
        return {k.replace("-", "_"): int(found.get(k, 0)) for k in ("reset-needed", "oauth-only")}

    @property
    def is_empty(self) -> bool:
        """True when applying would change nothing (no create, update or delete)."""
        return not self.ops["op"].isin(["create", "update", "delete"]).any()

    @property
    def needs_passwords(self) -> list[str]:
        """Emails of creates whose sheet password is not attached (see :meth:`with_passwords`)."""
        wanted = self.ops.loc[
            (self.ops["op"] == "create") & (self.ops["password_source"] == "sheet"), "email"
        ]
        return [e for e in wanted.tolist() if e not in self.passwords]

    def to_frame(self) -> pd.DataFrame:
        """One row per op: ``op, row, email, member_id, fields, before, after,
        password_source, expected_updated_at, problem`` (``before`` / ``after`` are dicts).

        Example:
            >>> plan.to_frame().query("op == 'update'")[["email", "fields"]]
        """
        cached: pd.DataFrame | None = self.__dict__.get("_frame")
        if cached is not None:
            return cached.copy()
        before, after = _maps(self.changes)
        fields = {op_id: ", ".join(m) for op_id, m in after.items()}
        frame = self.ops.drop(columns=["expected_updated_at_ms"]).copy()
        op_ids = frame["op_id"].tolist()
        frame.insert(4, "fields", pd.Series([fields.get(i) for i in op_ids], dtype="string"))
        frame.insert(5, "before", pd.Series([before.get(i, {}) for i in op_ids], dtype=object))
        frame.insert(6, "after", pd.Series([after.get(i, {}) for i in op_ids], dtype=object))
        stamps = pd.to_datetime(
            self.ops["expected_updated_at_ms"].astype("float64"), unit="ms", utc=True
        )
        frame.insert(8, "expected_updated_at", stamps.astype("datetime64[ms, UTC]"))
        frame = frame.drop(columns="op_id")
        object.__setattr__(self, "_frame", frame)
        return frame.copy()

    # -- text -------------------------------------------------------------------------------

    def __repr__(self) -> str:
        c = self.counts()
        return (
            f"Plan(plugin_id={self.plugin_id!r}: {c['create']} creates, {c['update']} "
            f"updates, {c['delete']} deletes, {c['unchanged']} unchanged, "
            f"{c['unsupported']} unsupported, {c['invalid']} invalid rows)"
        )

    def __str__(self) -> str:
        return self.describe()

    def describe(self, limit: int = 5) -> str:
        """A readable summary: counts, then the first ``limit`` rows of each kind.

        Example:
            >>> print(plan.describe(limit=10))
        """
        c = self.counts()
        lines = [repr(self)]
        if "reset_needed" in c:
            lines.append(
                f"Passwords: {c['reset_needed']} create(s) had a password at the old platform "
                "(its hash is never sent): each gets a generated password and signs in by "
                f"resetting it or with a magic email code; {c['oauth_only']} signed in only "
                "with a social provider (oauth-only)."
            )
        if self.is_empty:
            lines.append("Nothing to do: every valid row already matches its member.")
        frame = self.to_frame()
        for op in (*OPS, "invalid"):
            part = self.invalid if op == "invalid" else frame[frame["op"] == op]
            if part.empty:
                continue
            count = c[op]
            lines.append(f"\n{op} ({count}):")
            for item in part.head(limit).to_dict("records"):
                lines.append("  " + _describe_op(item))
            if count > limit:
                lines.append(f"  … and {count - limit} more")
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        # Emails, names, metadata and problems come from sheets and the API: all escaped.
        c = self.counts()
        cells = "".join(f"<td>{html.escape(k)}: <b>{v}</b></td>" for k, v in c.items())
        out = [
            f"<p>Plan for plugin <code>{html.escape(str(self.plugin_id))}</code></p>",
            f"<table><tr>{cells}</tr></table>",
        ]
        frame = self.to_frame()
        for op in OPS:
            part = frame[frame["op"] == op]
            if len(part):
                out.append(f"<h4>{op} ({len(part)})</h4>")
                out.append(part.head(20).to_html(index=False, na_rep="", escape=True))
        if len(self.invalid):
            out.append(f"<h4>invalid rows ({len(self.invalid)})</h4>")
            out.append(self.invalid.head(20).to_html(index=False, na_rep="", escape=True))
        return "\n".join(out)

    # -- passwords --------------------------------------------------------------------------

    def with_passwords(self, sheet: SheetResult | pd.DataFrame) -> Plan:
        """A copy with the sheet's passwords attached (a saved plan keeps none).

        Example:
            >>> plan = Plan.load("plan.json").with_passwords(read_member_sheet("members.xlsx"))
        """
        rows = sheet.rows if isinstance(sheet, SheetResult) else sheet
        if "password" not in rows.columns:
            raise PlanError("the sheet has no password column")
        # Matched by the canonical key (a re-exported sheet may spell an address otherwise),
        # stored under the plan's own spelling, which is what apply_plan looks up.
        found = {
            str(key): value if isinstance(value, Secret) else Secret(str(value))
            for key, value in zip(email_keys(rows["email"]), rows["password"], strict=True)
            if isinstance(key, str) and value is not None and not pd.isna(value)
        }
        passwords = {e: found[email_key(e)] for e in self.needs_passwords if email_key(e) in found}
        return replace(self, passwords={**self.passwords, **passwords})

    # -- keys -------------------------------------------------------------------------------

    def op_keys(self) -> pd.Series:
        """A deterministic journal key per op (indexed by ``op_id``): a hash of the op kind,
        the member, the expected ``updated_at`` and the target values — never a password.
        The same plan, or a re-plan of the same sheet against the same state, gives the same
        keys, so a re-run continues where the last one stopped.
        """
        _, after = _maps(self.changes)
        keys = {}
        for item in self.ops.to_dict("records"):
            target = sorted(after.get(item["op_id"], {}).items())
            parts = [
                item["op"],
                item["email"],
                item["member_id"],
                item["password_source"],
                item["expected_updated_at_ms"],
                target,
            ]
            text = json.dumps(parts, default=_json_default)
            keys[item["op_id"]] = hashlib.sha256(text.encode()).hexdigest()[:32]
        return pd.Series(keys, dtype="string", name="key")

    # -- files ------------------------------------------------------------------------------

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the plan as JSON to review and apply later. No passwords are written.

        Example:
            >>> plan.save("plan.json"); Plan.load("plan.json").counts() == plan.counts()
            True
        """
        head = {
            "format": PLAN_FORMAT,
            "version": PLAN_VERSION,
            "plugin_id": self.plugin_id,
            "meta": self.meta,
        }
        parts = [json.dumps(head, default=_json_default)[:-1]]
        for name, frame in (
            ("ops", self.ops),
            ("changes", self.changes),
            ("unchanged", self.unchanged_rows),
            ("invalid", self.invalid),
        ):
            parts.append(f', "{name}": {frame.to_json(orient="records", force_ascii=False)}')
        text = "".join(parts) + "}\n"
        target = Path(path)
        tmp = target.with_name(target.name + ".tmp")
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(target)
        return target

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Plan:
        """Read a plan written by :meth:`save`.

        Example:
            >>> plan = Plan.load("plan.json")
        """
        try:
            doc = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise PlanError(f"{path}: not a readable plan file ({exc})") from None
        if not isinstance(doc, dict) or doc.get("format") != PLAN_FORMAT:
            raise PlanError(f"{path}: not a plabdata member plan")
        if doc.get("version") != PLAN_VERSION:
            raise PlanError(f"{path}: plan version {doc.get('version')} is not supported")
        ops = typed(pd.DataFrame(doc["ops"]), OP_COLUMNS)
        check_one_op_per_member(ops, f"{path}: ")
        return cls(
            ops=ops,
            changes=changes_frame(pd.DataFrame(doc["changes"])),
            unchanged_rows=typed(pd.DataFrame(doc["unchanged"]), ROW_COLUMNS),
            invalid=typed(pd.DataFrame(doc["invalid"]), INVALID_COLUMNS),
            plugin_id=doc.get("plugin_id"),
            meta=dict(doc.get("meta") or {}),
        )


def _maps(changes: pd.DataFrame) -> tuple[dict[int, dict[str, Any]], dict[int, dict[str, Any]]]:
    """``({op_id: {field: before}}, {op_id: {field: after}})`` in the plan's field order."""
    before: dict[int, dict[str, Any]] = {}
    after: dict[int, dict[str, Any]] = {}
    for op_id, name, old, new in zip(
        changes["op_id"].tolist(),
        changes["field"].tolist(),
        changes["before"].tolist(),
        changes["after"].tolist(),
        strict=True,
    ):
        before.setdefault(op_id, {})[name] = old
        after.setdefault(op_id, {})[name] = new
    return before, after


def _json_default(value: Any) -> Any:
    if value is None or value is pd.NA or (isinstance(value, float) and value != value):
        return None
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, Secret):
        raise TypeError("refusing to serialise a password")
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    return value


def _describe_op(item: dict[Any, Any]) -> str:
    if "fields" not in item:  # an invalid row
        return f"row {item['row']}: {item['email']!r}: {item['problem']}"
    where = f"row {item['row']}" if not pd.isna(item["row"]) else "not in sheet"
    who = item["email"] if not pd.isna(item["email"]) else item["member_id"]
    head = f"{where}: {item['op']} {who}"
    if item["op"] == "create":
        after = item["after"] if isinstance(item["after"], dict) else {}
        extra = ", ".join(f"{k}={v!r}" for k, v in after.items())
        note = item.get("password_note")
        note = f", {note}" if isinstance(note, str) else ""
        password = f"(password: {item['password_source']}{note})"
        return f"{head} {password}{'; ' + extra if extra else ''}"
    if item["op"] == "delete":
        return f"{head} ({item['member_id']})"
    before = item["before"] if isinstance(item["before"], dict) else {}
    after = item["after"] if isinstance(item["after"], dict) else {}
    diffs = "; ".join(f"{k}: {before.get(k)!r} → {after.get(k)!r}" for k in after)
    tail = f" — {item['problem']}" if item["op"] == "unsupported" else ""
    return f"{head}: {diffs}{tail}"


def op_key_frame(plan: Plan) -> pd.DataFrame:
    """The plan's ops with their journal ``key`` column (used by ``apply_plan``)."""
    return plan.ops.assign(key=plan.ops["op_id"].map(plan.op_keys()).astype("string"))


def targets(plan: Plan) -> dict[int, dict[str, Any]]:
    """``{op_id: {field: after}}`` for each op with changes (used by ``apply_plan``)."""
    return _maps(plan.changes)[1]
