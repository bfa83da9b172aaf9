"""Which reading of PluginLab's public record the emulator plays.

PluginLab's own documents disagree in places, and leave other details unsaid
(``docs/emulator.md`` lists each behaviour with its source): the page cap is 50 in the
RESTful API article [REST] and "up to 100" on the Python SDK page [PYDOC]; what a server
does above its cap is not public; the SDKs read a token's user claims in camelCase while an
article shows snake_case [TOK2]; the success answer of a custom event is not specified; no
password rule is published. A :class:`Profile` picks one reading per question, so a test can
prove a client survives each. The defaults are the strictest documented reading: pages of at
most 50, a larger ``limit`` refused with 400, tokens issued by ``https://auth.pluginlab.ai``
with the SDKs' camelCase claims.

    >>> Profile().page_cap, Profile().over_cap, Profile().user_claims
    (50, 'reject', 'camel')
    >>> Profile.from_json({"pageCap": 100, "eventResponse": "no-content"}).event_response
    'no-content'
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any, Literal

from plabdata.wire import DEFAULT_ISSUER, MAX_DOCUMENTED_PAGE_SIZE, PAGE_SIZE

OverCap = Literal["reject", "short"]
OVER_CAP_CHOICES: tuple[OverCap, ...] = ("reject", "short")
UserClaims = Literal["camel", "snake"]
USER_CLAIMS_CHOICES: tuple[UserClaims, ...] = ("camel", "snake")
EventResponse = Literal["json", "empty", "text", "created", "no-content"]
EVENT_RESPONSE_CHOICES: tuple[EventResponse, ...] = (
    "json",
    "empty",
    "text",
    "created",
    "no-content",
)
#: Firebase Auth's minimum, which PluginLab appears to be built on; PluginLab states none.
DEFAULT_MIN_PASSWORD_LENGTH = 6
MAX_MIN_PASSWORD_LENGTH = 1024
MAX_ISSUER_LENGTH = 2048

_JSON_NAMES = {
    "page_cap": "pageCap",
    "over_cap": "overCap",
    "issuer": "issuer",
    "user_claims": "userClaims",
    "event_response": "eventResponse",
    "min_password_length": "minPasswordLength",
}


class ProfileInvalid(ValueError):
    """A profile setting is out of range or of the wrong type."""


def _check_int(name: str, value: Any, low: int, high: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ProfileInvalid(f"{name} must be an integer")
    if not low <= value <= high:
        raise ProfileInvalid(f"{name} must be in [{low}, {high}]")


def _check_choice(name: str, value: Any, choices: tuple[str, ...]) -> None:
    if not isinstance(value, str) or value not in choices:
        raise ProfileInvalid(f"{name} must be one of {', '.join(choices)}")


@dataclass(frozen=True)
class Profile:
    """The documented behaviours the emulator plays.

    Attributes:
        page_cap: the largest page ``GET /members`` serves: 50 ([REST]) or 100 ([PYDOC]).
        over_cap: what a ``limit`` above the cap gets: ``"reject"`` (400 ``invalid-limit``
            naming the cap) or ``"short"`` (a page of ``page_cap`` members, silently).
        issuer: the ``iss`` of minted user tokens; PluginLab's token articles require
            ``https://auth.pluginlab.ai`` ([TOK1], [TOK2]).
        user_claims: the casing of a token's ``user`` claim: ``"camel"`` (the SDKs' reading,
            [SDK041] and [NODEDOC]: ``{id, email, name, givenName, planId, priceId}``) or
            ``"snake"`` ([TOK2]: ``{email, name, given_name, family_name, plan_id,
            price_id}``, no ``id``).
        event_response: the success answer of ``POST /events/create-custom``, which no
            source specifies: ``"json"`` (200 ``{}``), ``"empty"`` (200, no body), ``"text"``
            (200 ``text/plain`` ``OK``), ``"created"`` (201 ``{}``) or ``"no-content"`` (204).
        min_password_length: the shortest password ``POST /members`` accepts. PluginLab
            states no rule (its SDK page creates a member with ``12345``); 6 is the
            emulator's own choice, Firebase Auth's minimum.
    """

    page_cap: int = PAGE_SIZE
    over_cap: OverCap = "reject"
    issuer: str = DEFAULT_ISSUER
    user_claims: UserClaims = "camel"
    event_response: EventResponse = "json"
    min_password_length: int = DEFAULT_MIN_PASSWORD_LENGTH

    def __post_init__(self) -> None:
        _check_int("page_cap", self.page_cap, 1, MAX_DOCUMENTED_PAGE_SIZE)
        _check_choice("over_cap", self.over_cap, OVER_CAP_CHOICES)
        if not isinstance(self.issuer, str) or not self.issuer.strip():
            raise ProfileInvalid("issuer must be a non-empty string")
        if len(self.issuer) > MAX_ISSUER_LENGTH:
            raise ProfileInvalid(f"issuer must be at most {MAX_ISSUER_LENGTH} characters")
        _check_choice("user_claims", self.user_claims, USER_CLAIMS_CHOICES)
        _check_choice("event_response", self.event_response, EVENT_RESPONSE_CHOICES)
        _check_int("min_password_length", self.min_password_length, 1, MAX_MIN_PASSWORD_LENGTH)

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
