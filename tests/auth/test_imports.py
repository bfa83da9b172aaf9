"""plabdata.auth runs in a plugin's web server: it must not pull in pandas (or the bulk layers).

``import plabdata`` loads everything, so this reads the modules' import statements instead of
importing them: each may use only the standard library, its third-party needs and the small
shared modules (config, errors, wire) — none of which imports pandas at run time.
"""

from __future__ import annotations

import ast
from pathlib import Path

import plabdata.auth

AUTH = Path(plabdata.auth.__file__).parent
ALLOWED_PLABDATA = {"plabdata.auth", "plabdata.config", "plabdata.errors", "plabdata.wire"}
FORBIDDEN = {"pandas", "numpy", "pyarrow"}


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_auth_imports_no_pandas_and_no_bulk_layer() -> None:
    modules = sorted(AUTH.glob("*.py"))
    assert {p.name for p in modules} >= {"_tokens.py", "_jwks.py", "_claims.py", "_webhooks.py"}
    for path in modules:
        for name in _imports(path):
            assert name.split(".")[0] not in FORBIDDEN, f"{path.name} imports {name}"
            if name.startswith("plabdata"):
                assert any(name == ok or name.startswith(ok + ".") for ok in ALLOWED_PLABDATA), (
                    f"{path.name} imports {name}"
                )
    for shared in ("config", "errors", "wire"):
        source = AUTH.parent / f"{shared}.py"
        runtime = {n for n in _imports(source) if n.split(".")[0] in FORBIDDEN}
        # errors.py names pandas for type checking only (under TYPE_CHECKING).
        assert runtime <= ({"pandas"} if shared == "errors" else set()), shared
        assert "if TYPE_CHECKING:\n    import pandas" in source.read_text() or not runtime
