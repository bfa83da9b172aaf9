"""The member-history report: one self-contained HTML file, checked by parsing it and by
opening it in a real headless browser."""

from __future__ import annotations

import base64
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from matplotlib.image import imread

import plabdata
from plabdata.demo import PLAN_NAMES, emulator_admin
from plabdata.emulator import EmulatorHandle
from plabdata.widgets.report import write_report

CHROMIUM = Path("/usr/bin/chromium")
PNG = b"\x89PNG\r\n\x1a\n"
NASTY_EMAIL = "<b>bold</b>@evil.io"
NASTY_NOTE = "<script>alert('x')</script>"


class _Resources(HTMLParser):
    """Every tag, and every attribute that could fetch something."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.images: list[str] = []
        self.fetching: list[tuple[str, str, str]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        for name, value in attrs:
            if tag == "img" and name == "src":
                self.images.append(value or "")
            elif name in {"src", "href", "srcset", "data", "poster", "action"}:
                self.fetching.append((tag, name, value or ""))

    def handle_data(self, data: str) -> None:
        self.text.append(data)


@pytest.fixture
def store(emu: EmulatorHandle, tmp_path: Path) -> Path:
    """Three weeks of history from the emulator, the last interval with a member whose email
    and metadata are HTML."""
    folder = tmp_path / "snapshots"
    with emulator_admin(emu) as admin:
        plabdata.build_history(emu, admin, folder, weeks=2, members=80, plan_names=PLAN_NAMES)
        emu.advance(days=7, random_seed=1)
        admin.create_member(NASTY_EMAIL, "password1", metadata={"note": NASTY_NOTE})
        plabdata.snapshot_member_base(admin, folder)
    return folder


def test_the_report_is_one_self_contained_escaped_file(store: Path, tmp_path: Path) -> None:
    out = write_report(store, tmp_path / "out" / "report.html")
    assert out == tmp_path / "out" / "report.html" and out.is_file()
    text = out.read_text(encoding="utf-8")
    parsed = _Resources()
    parsed.feed(text)
    # Charts embedded as PNG data URIs; nothing to fetch, no script, no stylesheet link.
    assert len(parsed.images) == 6
    for src in parsed.images:
        assert src.startswith("data:image/png;base64,")
        assert base64.b64decode(src.split(",", 1)[1]).startswith(PNG)
    assert parsed.fetching == []
    assert not {"script", "link", "iframe", "object", "embed"} & set(parsed.tags)
    assert "url(" not in text and "@import" not in text and "http://" not in text
    # Member data is text, never markup.
    assert NASTY_EMAIL not in text and NASTY_NOTE not in text
    assert "&lt;b&gt;bold&lt;/b&gt;@evil.io" in text
    assert NASTY_EMAIL in "".join(parsed.text)
    for heading in ("Plans over time", "Cohort retention", "Plan transitions", "How members"):
        assert heading in text
    assert "4 snapshots since" in text


def test_a_store_with_one_snapshot_reports_today_only(emu: EmulatorHandle, tmp_path: Path) -> None:
    emu.seed(20)
    with emulator_admin(emu) as admin:
        plabdata.snapshot_member_base(admin, tmp_path / "s", plan_names=PLAN_NAMES)
    text = write_report(tmp_path / "s", tmp_path / "r.html").read_text()
    assert "One snapshot so far" in text and "20</b>" in text
    assert text.count("<img ") == 1


def test_an_empty_or_missing_store_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(plabdata.ConfigError):
        write_report(tmp_path / "nothing", tmp_path / "r.html")
    assert not (tmp_path / "r.html").exists()


@pytest.mark.skipif(not CHROMIUM.exists(), reason="headless Chromium (/usr/bin/chromium) absent")
def test_the_report_renders_in_a_headless_browser(store: Path, tmp_path: Path) -> None:
    out = write_report(store, tmp_path / "report.html")
    shot = tmp_path / "report.png"
    done = subprocess.run(
        [
            str(CHROMIUM),
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--disable-quic",
            f"--user-data-dir={tmp_path / 'profile'}",
            "--hide-scrollbars",
            "--window-size=1100,3000",
            f"--screenshot={shot}",
            out.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0 and shot.is_file(), done.stderr[-2000:]
    pixels = imread(shot)[..., :3]
    assert pixels.shape[:2] == (3000, 1100)
    # The charts painted: many strongly coloured pixels (text and tables are grey), in more
    # than one place down the page.
    saturation = pixels.max(axis=2) - pixels.min(axis=2)
    coloured_rows = np.flatnonzero((saturation > 0.35).sum(axis=1) > 20)
    assert len(coloured_rows) > 600, len(coloured_rows)
    assert coloured_rows.min() < 800 < 2000 < coloured_rows.max()
    shutil.rmtree(tmp_path / "profile", ignore_errors=True)
