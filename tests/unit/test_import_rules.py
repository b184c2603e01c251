"""The import direction of ARCHITECTURE.md §1, checked on the source: every import, lazy ones too."""

from __future__ import annotations

import ast
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

REPO = Path(__file__).resolve().parents[2]
# Where each first-party package's source lives.
SOURCES = {
    "functions": REPO / "functions",
    "infra": REPO / "infra",
    "tt_core": REPO / "layers" / "core" / "python" / "tt_core",
    "tt_cli": REPO / "cli" / "tt_cli",
    "tt_local": REPO / "local" / "tt_local",
    "tt_serve": REPO / "serving" / "tt_serve",
    "tt_trainer": REPO / "training_image" / "tt_trainer",
}

# -- the rules, as data ---------------------------------------------------------------------------------
# tt_core's leaf modules import only one another; its domain packages add the ports.
LEAVES = (
    "tt_core.__init__",  # the version
    "tt_core.models",
    "tt_core.envelope",
    "tt_core.errors",
    "tt_core.schema",
    "tt_core.settings",
    "tt_core.observability",
)
DOMAIN = (
    "tt_core.specs",
    "tt_core.datasets",
    "tt_core.runs",
    "tt_core.evaluation",
    "tt_core.augmentation",
    "tt_core.language",
)
PURE = (*LEAVES, *DOMAIN, "tt_core.ports")
# What a module may import from the first-party packages: the entry with the longest prefix of the
# importing module's name applies. An import of the package root (`from tt_core import wiring`) counts
# as an import of the module it names.
ALLOWED: dict[str, tuple[str, ...]] = {
    "functions": ("functions", "tt_core.wiring", "tt_core.services", *PURE),
    "tt_core": ("tt_core",),  # the composition root and the package's own __init__
    "tt_core.adapters": ("tt_core.adapters", *PURE),
    "tt_core.services": ("tt_core.services", *PURE),
    "tt_core.ports": LEAVES,
    **{domain: PURE for domain in DOMAIN},
    **{leaf: LEAVES for leaf in LEAVES},
    "infra": ("infra", "tt_core.schema"),
    # The client: its HTTP client plus the pure code shared with the server (models, spec lint, the
    # dataset validator, text normalisation) — never the services, adapters or wiring.
    "tt_cli": ("tt_cli", *LEAVES, *DOMAIN),
    # `tt admin create-account` is the operator's one path straight to AWS: it creates the first account
    # with the service the API uses (and needs the `aws` extra).
    "tt_cli.commands.admin": ("tt_cli", *LEAVES, "tt_core.wiring"),
    # `tt admin stage-base-model`: copies weights to the stack's bucket with boto3's managed transfer.
    "tt_cli.commands.stage_base_model": ("tt_cli", *LEAVES),
    "tt_local": ("tt_local", "functions", "infra", "tt_core", "tt_serve", "tt_trainer"),
    "tt_local.command": ("tt_local", "tt_cli", *LEAVES),  # `tt local up|status`: a command of the CLI
    "tt_serve": ("tt_serve", "tt_trainer", *LEAVES, *DOMAIN),
    "tt_serve.command": ("tt_serve", "tt_cli", *LEAVES),  # `tt models serve|export|setup-runtime`
    "tt_trainer": ("tt_trainer",),
}
# Third-party packages a module must not import, by the same longest-prefix rule: the client stays light,
# and only adapters (and the wiring that builds them) talk to AWS and Claude.
SDKS = ("boto3", "botocore", "anthropic")
HEAVY = ("torch", "transformers", "peft", "accelerate", "moto", "aws_cdk", "constructs", "cdk_nag")
FORBIDDEN: dict[str, tuple[str, ...]] = {
    "functions": (*SDKS, *HEAVY),
    "tt_core": (*SDKS, *HEAVY),
    "tt_core.adapters": HEAVY,
    "tt_core.wiring": HEAVY,
    "infra": ("torch", "transformers", "peft", "moto", "anthropic"),
    "tt_cli": (*SDKS, *HEAVY),
    "tt_cli.commands.admin": ("anthropic", *HEAVY),
    "tt_cli.commands.stage_base_model": ("anthropic", *HEAVY),
    "tt_serve": ("moto", "aws_cdk", "boto3", "botocore", "anthropic"),
}
FIRST_PARTY = tuple(SOURCES)
T = TypeVar("T")


@dataclass(frozen=True)
class Violation:
    path: str
    line: int
    module: str
    imported: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.module} must not import {self.imported}"


def _rule(table: dict[str, T], module: str) -> T | None:
    matches = [prefix for prefix in table if module == prefix or module.startswith(prefix + ".")]
    return table[max(matches, key=len)] if matches else None


def _within(name: str, prefixes: tuple[str, ...]) -> bool:
    return any(name == prefix or name.startswith(prefix + ".") for prefix in prefixes)


def module_name(package: str, root: Path, path: Path) -> str:
    parts = [package, *path.relative_to(root).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" and len(parts) > 1 else parts)


def imported_names(tree: ast.AST) -> Iterator[tuple[int, str]]:
    """Every module an import statement names; `from pkg import name` also yields `pkg.name`, so that
    `from tt_core import wiring` is checked as an import of tt_core.wiring."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, f"{alias.name}.__init__" if alias.name in FIRST_PARTY else alias.name
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module in FIRST_PARTY:
                for alias in node.names:
                    name = "__init__" if alias.name.startswith("__") else alias.name
                    yield node.lineno, f"{node.module}.{name}"
            else:
                yield node.lineno, node.module


def violations(sources: dict[str, Path]) -> list[Violation]:
    found = []
    for package, root in sources.items():
        for path in sorted(root.rglob("*.py")):
            module = module_name(package, root, path)
            allowed = _rule(ALLOWED, module) or ()
            forbidden = _rule(FORBIDDEN, module) or ()
            for line, name in imported_names(ast.parse(path.read_text(encoding="utf-8"))):
                first_party = name.split(".")[0] in FIRST_PARTY
                if (first_party and not _within(name, allowed)) or _within(name, forbidden):
                    found.append(Violation(str(path.relative_to(root.parent)), line, module, name))
    return found


# -- the tests ------------------------------------------------------------------------------------------
def test_every_import_follows_the_architecture() -> None:
    found = violations(SOURCES)
    assert not found, "imports against ARCHITECTURE.md §1:\n" + "\n".join(map(str, found))


def test_every_module_has_a_rule() -> None:
    unruled = [
        module_name(package, root, path)
        for package, root in SOURCES.items()
        for path in root.rglob("*.py")
        if _rule(ALLOWED, module_name(package, root, path)) is None
    ]
    assert not unruled


def test_a_planted_violation_is_found(tmp_path: Path) -> None:
    """The checker is not vacuous: each kind of breach in a copy of the layout is reported."""
    planted = {
        "tt_core/models/leak.py": "from tt_cli.main import main\n",  # the core knows a client
        "tt_core/runs/lazy.py": "def f():\n    from tt_local import adapters\n",  # lazily, still a breach
        "tt_core/wiring.py": "from tt_serve import runtime\n",
        "tt_core/services/sdk.py": "import boto3\n",  # only adapters talk to AWS
        "infra/stack.py": "from tt_core.settings import Settings\n",  # infra: tt_core.schema only
        "tt_cli/heavy.py": "import torch\n",  # the client stays light
        "tt_cli/core.py": "from tt_core import wiring\n",
        "tt_trainer/x.py": "from tt_core.schema import ACCOUNTS_PREFIX\n",
        # allowed ones, for contrast
        "tt_core/runs/ok.py": "from tt_core.ports import ObjectStore\nfrom tt_core.models import common\n",
        "tt_cli/ok.py": "from tt_core.models.common import normalize_id\nfrom tt_core import __version__\n",
        "infra/ok.py": "from tt_core.schema import ACCOUNTS_PREFIX\n",
    }
    for relative, code in planted.items():
        path = tmp_path / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(code)
    sources = {package: tmp_path / package for package in ("tt_core", "infra", "tt_cli", "tt_trainer")}
    found = {(v.module, v.imported) for v in violations(sources)}
    assert found == {
        ("tt_core.models.leak", "tt_cli.main"),
        ("tt_core.runs.lazy", "tt_local.adapters"),
        ("tt_core.wiring", "tt_serve.runtime"),
        ("tt_core.services.sdk", "boto3"),
        ("infra.stack", "tt_core.settings"),
        ("tt_cli.heavy", "torch"),
        ("tt_cli.core", "tt_core.wiring"),
        ("tt_trainer.x", "tt_core.schema"),
    }


def test_tt_core_holds_domain_packages_and_no_two_modules_of_one_name() -> None:
    """Loose modules are the leaves, ports and wiring; the domain code and the models never share a
    module name (services/ and adapters/ mirror the resources of models/ on purpose)."""
    root = SOURCES["tt_core"]
    leaves = {name.split(".")[1] for name in LEAVES if name not in ("tt_core.__init__", "tt_core.models")}
    assert {path.stem for path in root.glob("*.py")} == {"__init__", "ports", "wiring", *leaves}
    folders = [root / name.split(".")[1] for name in DOMAIN] + [root / "models"]
    stems = Counter(
        path.stem for folder in folders for path in folder.glob("*.py") if path.stem != "__init__"
    )
    stems.update(leaves)
    assert [name for name, count in stems.items() if count > 1] == []
