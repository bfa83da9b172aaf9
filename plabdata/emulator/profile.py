"""Which reading of PluginLab's public record the emulator plays.

PluginLab's own documents disagree in places (``docs/emulator.md`` lists each with its
source): the page cap is 50 in the RESTful API article and "up to 100" on the Python SDK
page; what a server does above its cap is not public. A :class:`Profile` picks one reading
per disagreement, so a test can prove the client survives each. The default is the strictest
documented reading: pages of at most 50, a larger ``limit`` refused with 400.

    >>> Profile().page_cap, Profile().over_cap
    (50, 'reject')
    >>> Profile.from_json({"pageCap": 100}).page_cap
    100
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any, Literal

from plabdata.wire import MAX_DOCUMENTED_PAGE_SIZE, PAGE_SIZE

OverCap = Literal["reject", "short"]
OVER_CAP_CHOICES: tuple[OverCap, ...] = ("reject", "short")

_JSON_NAMES = {
    "page_cap": "pageCap",
    "over_cap": "overCap",
}


class ProfileInvalid(ValueError):
    """A profile setting is out of range or of the wrong type."""


@dataclass(frozen=True)
class Profile:
    """The documented behaviours the emulator plays.

    Attributes:
        page_cap: the largest page ``GET /members`` serves: 50 ([REST]) or 100 ([PYDOC]).
        over_cap: what a ``limit`` above the cap gets: ``"reject"`` (400 ``invalid-limit``
            naming the cap) or ``"short"`` (a page of ``page_cap`` members, silently).
    """

    page_cap: int = PAGE_SIZE
    over_cap: OverCap = "reject"

    def __post_init__(self) -> None:
        cap = self.page_cap
        if isinstance(cap, bool) or not isinstance(cap, int):
            raise ProfileInvalid("page_cap must be an integer")
        if not 1 <= cap <= MAX_DOCUMENTED_PAGE_SIZE:
            raise ProfileInvalid(f"page_cap must be in [1, {MAX_DOCUMENTED_PAGE_SIZE}]")
        if self.over_cap not in OVER_CAP_CHOICES:
            raise ProfileInvalid(f"over_cap must be one of {', '.join(OVER_CAP_CHOICES)}")

    def to_json(self) -> dict[str, Any]:
        """The control-API form (camelCase keys)."""
        return {_JSON_NAMES[key]: value for key, value in asdict(self).items()}

    @classmethod
    def from_json(cls, body: Mapping[str, Any]) -> Profile:
        """Parse the control-API form; absent settings take their defaults.

        Raises:
            ProfileInvalid: unknown key, wrong type or out-of-range value.
        """
        by_json = {json_name: name for name, json_name in _JSON_NAMES.items()}
        unknown = sorted(set(body) - set(by_json))
        if unknown:
            raise ProfileInvalid(f"unknown profile setting(s): {', '.join(unknown)}")
        return cls(**{by_json[key]: value for key, value in body.items()})
