"""Nothing we load can run code, and nothing we run goes through a shell: a scan of the
library and the workflow scripts."""

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SOURCES = sorted([*REPO.glob("src/nucseg/**/*.py"), *REPO.glob("workflow/scripts/*.py")])


def calls(tree: ast.AST):
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            yield ast.unparse(node.func), {k.arg: ast.unparse(k.value) for k in node.keywords}


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(REPO)))
def test_loading_is_safe_and_no_shell_is_used(path):
    tree = ast.parse(path.read_text())
    imported = {
        alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.Import | ast.ImportFrom)
        for alias in node.names
    }
    modules = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert not {"pickle", "dill", "marshal", "shelve"} & (imported | modules), "pickle-like module"
    for name, keywords in calls(tree):
        if name == "torch.load":
            assert keywords.get("weights_only") == "True", "torch.load without weights_only=True"
        if name in ("np.load", "numpy.load"):
            assert keywords.get("allow_pickle") == "False", "np.load may unpickle"
        assert name not in ("yaml.load", "yaml.unsafe_load", "eval", "exec", "os.system")
        assert keywords.get("shell", "False") == "False", f"{name} with shell=True"


def test_the_scan_sees_the_loaders():
    names = [name for path in SOURCES for name, _ in calls(ast.parse(path.read_text()))]
    assert names.count("torch.load") >= 3 and "np.load" in names
