"""plabdata's version: the one source (``pyproject.toml`` reads it; ``plabdata.__version__``
and ``plabdata --version`` show it)."""

__version__ = "0.2.0"
