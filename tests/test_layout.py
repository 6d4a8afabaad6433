"""The package tree is the pipeline: imports only point down data/models <- pretrain <- finetune <- submit."""

import ast
from pathlib import Path

from conftest import REPO

SHARED = {"ecgdist", "ecgdist.config", "ecgdist.dist", "ecgdist.leads", "ecgdist.tensorboard_log", "ecgdist.files",
          "ecgdist.slurm", "ecgdist.processes", "ecgdist.safe_load"}
# What each part of the package may import from ecgdist, besides the shared modules.
ALLOWED = {
    "ecgdist.data": ("ecgdist.data",),
    "ecgdist.models": ("ecgdist.models",),
    "ecgdist.pretrain": ("ecgdist.data", "ecgdist.models", "ecgdist.pretrain"),
    "ecgdist.finetune": ("ecgdist.data", "ecgdist.models", "ecgdist.pretrain.optim", "ecgdist.finetune"),
    # The front end reaches each stage through its submission module only.
    "ecgdist.submit": ("ecgdist.pretrain.submission", "ecgdist.finetune.sweep"),
    "ecgdist.demo": (),
    # ``python -m ecgdist.export`` / ``ecgdist.predict``: the commands, kept where users know them.
    "ecgdist.export": ("ecgdist.pretrain.export",),
    "ecgdist.predict": ("ecgdist.finetune.predict",),
}


def module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def ecgdist_imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return {n for n in names if n == "ecgdist" or n.startswith("ecgdist.")}


def part_of(module: str) -> str | None:
    return next((p for p in sorted(ALLOWED, key=len, reverse=True) if module == p or module.startswith(p + ".")), None)


def violations(module: str, imports: set[str]) -> list[str]:
    allowed = () if module in SHARED else ALLOWED[part_of(module)]
    return [f"{module} imports {imported}" for imported in sorted(imports)
            if imported not in SHARED and not any(imported == a or imported.startswith(a + ".") for a in allowed)]


def test_imports_only_point_down_the_pipeline():
    wrong = [line for path in sorted((REPO / "ecgdist").rglob("*.py"))
             for line in violations(module_name(path), ecgdist_imports(path))]
    assert not wrong, "\n".join(wrong)


def test_every_module_belongs_to_a_stage_or_is_shared():
    homeless = [module_name(p) for p in (REPO / "ecgdist").rglob("*.py")
                if module_name(p) not in SHARED and part_of(module_name(p)) is None]
    assert not homeless, homeless


def test_an_upward_import_is_caught(tmp_path):
    module = tmp_path / "bad.py"
    module.write_text("from ecgdist.finetune.plots import roc_pr_figure\nimport ecgdist.data.shards\n")
    imports = ecgdist_imports(module)
    assert imports == {"ecgdist.finetune.plots", "ecgdist.data.shards"}
    assert violations("ecgdist.pretrain.main", imports) == ["ecgdist.pretrain.main imports ecgdist.finetune.plots"]
    assert violations("ecgdist.config", imports) == ["ecgdist.config imports ecgdist.data.shards",
                                                     "ecgdist.config imports ecgdist.finetune.plots"]
    assert violations("ecgdist.submit", {"ecgdist.pretrain.checkpoint"}) == [
        "ecgdist.submit imports ecgdist.pretrain.checkpoint"]
