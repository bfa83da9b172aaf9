"""Location checks: ISO 3166-1 countries and ISO 3166-2 subdivisions of *that* country.

Codes come from pycountry; rows are checked through their distinct (country, subdivision)
pairs, and the subdivision is sent in PluginLab's short form (``CA`` for ``US-CA``).

    >>> country, sub = check_location(Text.of(countries, n, case="upper"),
    ...                               Text.of(subdivisions, n, case="upper"), n, problems)
"""

from __future__ import annotations

import functools

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pycountry

from plabdata.events._parse import Problems, Text, as_numpy

__all__ = ["check_location"]


@functools.cache
def _countries() -> pa.Array:
    return pa.array(sorted(c.alpha_2 for c in pycountry.countries))


@functools.cache
def _subdivisions() -> pa.Array:
    return pa.array(sorted(s.code for s in pycountry.subdivisions))


def check_location(country: Text, sub: Text, n: int, problems: Problems) -> tuple[Text, Text]:
    """Country and subdivision (upper-cased texts) checked; the subdivision in short form."""
    known = as_numpy(pc.is_in(country.values, value_set=_countries()))
    bad_country = country.present & ~country.rows(known)
    problems.add(bad_country, "unknown country code {value!r}", country)
    if not sub.present.any():
        return country, sub
    problems.add(sub.present & ~country.present, "subdivision {value!r} without a country", sub)
    # Distinct (country, subdivision) pairs are few: check those, then spread to rows.
    rows = np.flatnonzero(sub.present & country.present & ~bad_country)
    pairs = country.codes[rows].astype(np.int64) * (len(sub.values) + 1) + sub.codes[rows]
    unique, inverse = np.unique(pairs, return_inverse=True)
    pair_country = country.values.take(pa.array(unique // (len(sub.values) + 1))).to_pylist()
    pair_sub = sub.values.take(pa.array(unique % (len(sub.values) + 1))).to_pylist()
    full = [s if "-" in s else f"{c}-{s}" for c, s in zip(pair_country, pair_sub, strict=True)]
    valid_codes = _subdivisions()
    ok = as_numpy(pc.is_in(pa.array(full, pa.string()), value_set=valid_codes))
    wrong_country = np.array([f[:3] != f"{c}-" for c, f in zip(pair_country, full, strict=True)])
    short = [f.split("-", 1)[1] for f in full]
    problems_for = {
        "other": np.zeros(n, bool),
        "unknown": np.zeros(n, bool),
    }
    problems_for["other"][rows] = wrong_country[inverse]
    problems_for["unknown"][rows] = (~ok & ~wrong_country)[inverse]
    full_text = pa.array(full, pa.string())
    problems.add(problems_for["other"], "subdivision {value!r} is not in that country", sub)
    at = np.full(n, -1, np.int32)
    at[rows] = inverse
    problems.add(problems_for["unknown"], "unknown subdivision {value!r}", Text(full_text, at))
    # Rows are sent with PluginLab's short form ("CA" for "US-CA").
    return country, Text(pa.array(short, pa.string()), at)
