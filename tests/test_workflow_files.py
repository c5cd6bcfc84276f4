"""Files beside the workflow stay true to it: the conda environments of envs/ (pinned as the
lock file; the data environment, without torch, imports what its rules' scripts import), the
rule-graph picture in docs/ and the config files of config/ (valid under the schema)."""

import ast
import re
import subprocess
import sys

import pytest
import yaml
from workflow_run import REPO

RULE = re.compile(r"^rule (\w+):\n(.*?)(?=^rule |\Z)", re.S | re.M)


def locked_versions() -> dict[str, str]:
    lines = (REPO / "requirements.lock").read_text().splitlines()
    pins = dict(line.split("==") for line in lines if "==" in line and not line.startswith("#"))
    return {name.lower(): version for name, version in pins.items()}


def env_pins(env_file) -> dict[str, str]:
    spec = yaml.safe_load(env_file.read_text())
    pip = next(item["pip"] for item in spec["dependencies"] if isinstance(item, dict))
    return dict(requirement.lower().split("==") for requirement in pip)


def rule_envs_and_scripts() -> dict[str, tuple[str, str | None]]:
    """rule name -> (conda env file name, script path or None) for every rule in workflow/."""
    rules = {}
    for smk in sorted((REPO / "workflow/rules").glob("*.smk")):
        for name, body in RULE.findall(smk.read_text()):
            env = re.search(r'conda:\s*\n\s*"([^"]+)"', body)
            script = re.search(r'script:\s*\n\s*"([^"]+)"', body)
            env_path = (smk.parent / env.group(1)).resolve() if env else None
            script_path = (smk.parent / script.group(1)).resolve() if script else None
            rules[name] = (env_path, script_path)
    return rules


@pytest.mark.parametrize("env_file", sorted((REPO / "envs").glob("*.yaml")), ids=lambda p: p.name)
def test_environment_pins_equal_the_lock_file(env_file):
    locked = locked_versions()
    for package, version in env_pins(env_file).items():
        assert locked.get(package) == version, f"{env_file.name}: {package}=={version}"


def test_every_rule_names_an_existing_environment():
    rules = rule_envs_and_scripts()
    assert len(rules) >= 15
    for name, (env, _) in rules.items():
        assert env is not None and env.is_file(), name


def test_data_environment_scripts_import_without_torch():
    data_env = (REPO / "envs/data.yaml").resolve()
    assert "torch" not in env_pins(data_env)
    scripts = [s for env, s in rule_envs_and_scripts().values() if env == data_env and s]
    assert len(scripts) >= 10
    imports = []
    for script in scripts:
        for node in ast.parse(script.read_text()).body:
            if isinstance(node, ast.Import | ast.ImportFrom):
                imports.append(ast.unparse(node))
    code = "import sys\nsys.modules['torch'] = None\n" + "\n".join(imports)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]


def test_rule_graph_picture_shows_every_rule():
    svg = (REPO / "docs/rulegraph.svg").read_text()
    shown = set(re.findall(r"<text[^>]*>(\w+)</text>", svg))
    missing = set(rule_envs_and_scripts()) - shown - {"all"}
    assert not missing, f"docs/rulegraph.svg lacks {sorted(missing)}: run `make docs`"


@pytest.mark.parametrize(
    "config_file", sorted((REPO / "config").glob("*.yaml")), ids=lambda p: p.name
)
def test_config_files_validate_against_the_schema(config_file):
    # as `--configfile` does: the file's keys over config.yaml's, then the Snakefile's check
    from snakemake.utils import update_config, validate

    config = yaml.safe_load((REPO / "config.yaml").read_text())
    update_config(config, yaml.safe_load(config_file.read_text()))
    validate(config, str(REPO / "workflow/schemas/config.schema.yaml"))


def _config_classes():
    """(schema path, dataclass, schema keys that are the DAG's, schema key -> field name)."""
    from nucseg.augment import AugmentConfig
    from nucseg.losses import LossConfig
    from nucseg.models import ModelConfig
    from nucseg.nerve import NerveDecision
    from nucseg.normalize import NormalizeConfig
    from nucseg.postprocess import PostprocessConfig
    from nucseg.predict import PredictConfig
    from nucseg.targets import TargetConfig
    from nucseg.train import TrainConfig

    model = "models/additionalProperties/properties"
    return [
        (f"{model}/train", TrainConfig, (), {}),
        (f"{model}/net", ModelConfig, (), {}),
        (f"{model}/loss", LossConfig, (), {}),
        (f"{model}/augment", AugmentConfig, (), {}),
        ("postprocess", PostprocessConfig, ("tune", "grid"), {}),
        ("predict", PredictConfig, ("shards", "keep_maps"), {"tta_views": "views"}),
        ("normalize", NormalizeConfig, (), {}),
        ("targets", TargetConfig, (), {}),
        ("nerve/properties/decision", NerveDecision, (), {}),
    ]


@pytest.mark.parametrize("path, cls, dag_keys, renamed", _config_classes(), ids=lambda x: str(x))
def test_schema_defaults_are_the_dataclass_defaults(path, cls, dag_keys, renamed):
    """One set of defaults: the schema fills the config with them (rules and scripts read
    the config without defaults of their own) and they equal the library's dataclasses, so
    the workflow and the Python API do the same thing when a key is left out."""
    import dataclasses

    schema = yaml.safe_load((REPO / "workflow/schemas/config.schema.yaml").read_text())
    node = schema["properties"]
    for part in path.split("/"):
        node = node[part]
    fields = {f.name: f for f in dataclasses.fields(cls)}
    for key, prop in node["properties"].items():
        if key in dag_keys:
            continue
        field = fields.get(renamed.get(key, key))
        assert field is not None, f"{path}.{key} is not a field of {cls.__name__}"
        if field.default_factory is not dataclasses.MISSING:
            default = field.default_factory()
        else:
            default = field.default
        if default is None or default is dataclasses.MISSING:
            assert "default" not in prop, f"{path}.{key}"
            continue
        expected = list(default) if isinstance(default, tuple) else default
        assert prop.get("default") == expected, f"{path}.{key}: schema vs {cls.__name__}"
