"""The package tree is the pipeline: imports only point down data/models <- tasks <- pretrain, finetune <- submit."""

import ast
from pathlib import Path

from conftest import REPO

CONFIG = {"ecgdist.config", "ecgdist.config.loading", "ecgdist.config.sections", "ecgdist.config.benchmarks",
          "ecgdist.config.pretrain", "ecgdist.config.finetune"}
SHARED = CONFIG | {"ecgdist", "ecgdist.dist", "ecgdist.leads", "ecgdist.tensorboard_log", "ecgdist.files",
                   "ecgdist.loggers", "ecgdist.wandb_log", "ecgdist.slurm", "ecgdist.processes", "ecgdist.safe_load"}
# What each part of the package may import from ecgdist, besides the shared modules.
ALLOWED = {
    "ecgdist.data": ("ecgdist.data",),
    "ecgdist.models": ("ecgdist.models",),
    # Benchmarks (task definitions, splits, metrics): what fine-tuning and pre-training's probes share.
    "ecgdist.tasks": ("ecgdist.data", "ecgdist.tasks"),
    "ecgdist.pretrain": ("ecgdist.data", "ecgdist.models", "ecgdist.tasks", "ecgdist.pretrain"),
    "ecgdist.finetune": ("ecgdist.data", "ecgdist.models", "ecgdist.tasks", "ecgdist.finetune"),
    # The front end reaches each stage through its submission module only.
    "ecgdist.submit": ("ecgdist.pretrain.submission", "ecgdist.finetune.sweep"),
    "ecgdist.demo": (),
    # ``python -m ecgdist.export`` / ``ecgdist.predict``: the commands, kept where users know them.
    "ecgdist.export": ("ecgdist.pretrain.export", "ecgdist.finetune.export", "ecgdist.model_card", "ecgdist.models"),
    # A model card: read from an export of either stage and the manifests it names.
    "ecgdist.model_card": ("ecgdist.data", "ecgdist.models"),
    "ecgdist.probe": ("ecgdist.pretrain.probe_offline",),
    "ecgdist.predict": ("ecgdist.finetune.predict",),
    # ``python -m ecgdist.embed``: features of any weights for analyses outside ecgdist.
    "ecgdist.embed": ("ecgdist.data", "ecgdist.models"),
}


def module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_names(source: str) -> set[str]:
    """Every module a file imports, at module level or inside a function; ``from M import x`` gives
    M and M.x (x may be a submodule)."""
    names = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return names


def ecgdist_imports(path: Path) -> set[str]:
    """The ecgdist modules ``path`` imports (names that are not modules left out)."""
    return {n for n in imported_names(path.read_text()) if n in MODULES or n.rsplit(".", 1)[0] not in MODULES
            and (n == "ecgdist" or n.startswith("ecgdist."))}


def import_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Each cycle in a module graph once, as the path that closes it (depth-first search)."""
    cycles, state = [], {}  # 1: on the current path, 2: done

    def visit(module: str, path: list[str]) -> None:
        state[module] = 1
        for imported in sorted(graph.get(module, ())):
            if state.get(imported) == 1:
                cycles.append(path[path.index(imported):] + [imported])
            elif imported not in state:
                visit(imported, path + [imported])
        state[module] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])
    return cycles


MODULES = {module_name(p) for p in (REPO / "ecgdist").rglob("*.py")}


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


def test_no_module_imports_itself_through_others():
    graph = {module_name(p): ecgdist_imports(p) & MODULES for p in (REPO / "ecgdist").rglob("*.py")}
    assert not import_cycles(graph), import_cycles(graph)


def test_ecgdist_never_imports_preprocess():
    """Preprocessing builds corpora; training reads them through ecgdist.data alone."""
    wrong = [f"{module_name(p)} imports {n}" for p in sorted((REPO / "ecgdist").rglob("*.py"))
             for n in sorted(imported_names(p.read_text())) if n == "preprocess" or n.startswith("preprocess.")]
    assert not wrong, wrong


def test_a_cycle_through_a_function_level_import_is_caught(tmp_path):
    module = tmp_path / "main.py"
    module.write_text("from ecgdist.pretrain import data\n\ndef f():\n    from ecgdist.pretrain.submission import x\n")
    imports = ecgdist_imports(module)
    assert imports == {"ecgdist.pretrain", "ecgdist.pretrain.data", "ecgdist.pretrain.submission"}
    graph = {"ecgdist.pretrain.main": imports, "ecgdist.pretrain.submission": {"ecgdist.pretrain.main"}}
    assert import_cycles(graph) == [["ecgdist.pretrain.main", "ecgdist.pretrain.submission", "ecgdist.pretrain.main"]]
    assert import_cycles({"a": {"b"}, "b": {"c"}, "c": set()}) == []


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
