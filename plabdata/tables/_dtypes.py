"""The dtypes of every frame plabdata returns, declared once.

Strings are pandas' nullable ``string`` dtype (missing = ``pd.NA``), booleans ``boolean``,
counts ``Int64``, times ``datetime64[ms, UTC]``; the sign-in method and provider are
categories with a fixed set of categories, so frames from different runs concatenate and
compare equal, and a Parquet round trip loses nothing.
"""

from __future__ import annotations

import pandas as pd

from plabdata.wire import PROVIDERS, SIGN_IN_METHODS

STRING = pd.StringDtype()
BOOLEAN = pd.BooleanDtype()
INT = pd.Int64Dtype()
TIMESTAMP = pd.DatetimeTZDtype(unit="ms", tz="UTC")
SIGN_IN_METHOD = pd.CategoricalDtype(list(SIGN_IN_METHODS))
PROVIDER = pd.CategoricalDtype(list(PROVIDERS))
