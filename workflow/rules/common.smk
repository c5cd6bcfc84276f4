import os
from pathlib import Path

from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

# Jobs import the nucseg library of this checkout, in the README's virtual environment and in
# the --sdm conda environments of envs/ alike (they carry only the dependencies); SLURM jobs
# inherit it (sbatch --export=ALL).
os.environ.update(
    PYTHONPATH=os.pathsep.join(
        filter(
            None, [str(Path(workflow.basedir) / "src"), os.environ.get("PYTHONPATH")]
        )
    )
)

validate(config, schema="../schemas/config.schema.yaml")


def _check_references():
    """Cross-references the schema cannot express, each failing with the key at fault."""
    for version, spec in config["datasets"].items():
        for source in spec["sources"]:
            if source not in config["sources"]:
                raise WorkflowError(
                    f"config: datasets.{version}.sources names unknown source '{source}'"
                )
        for source in spec["cv"]["train_only"]:
            if source not in spec["sources"]:
                raise WorkflowError(
                    f"config: datasets.{version}.cv.train_only names '{source}', which is not among its sources"
                )
    for model, spec in config["models"].items():
        if "pretrained" in spec and "dataset" not in spec:
            continue
        if "pretrained" in spec and set(spec) & {
            "net",
            "train",
            "loss",
            "augment",
            "init",
        }:
            raise WorkflowError(
                f"config: models.{model} is pretrained (used as shipped): it takes no net, train, loss, augment or init"
            )
        if spec["dataset"] not in config["datasets"]:
            raise WorkflowError(
                f"config: models.{model}.dataset names unknown dataset version '{spec['dataset']}'"
            )
        cv = config["datasets"][spec["dataset"]]["cv"]
        n_folds = cv["folds"]
        if spec["fold"] >= n_folds:
            raise WorkflowError(
                f"config: models.{model}.fold is {spec['fold']} but dataset {spec['dataset']} has {n_folds} fold(s)"
            )
        no_validation = n_folds == 1 and cv["valid_fraction"] == 0
        if no_validation and config["postprocess"]["tune"] and "thresholds" not in spec:
            raise WorkflowError(
                f"config: models.{model} trains on every image of dataset {spec['dataset']} (cv.valid_fraction 0): nothing to tune its thresholds on; give it thresholds: (fixed postprocess settings)"
            )
    for ensemble, spec in ENTRIES.items():
        if spec["method"] == "vote" or len(spec["models"]) > 1:
            if not any(
                "dataset" in config["models"][m.removesuffix(".last")]
                for m in spec["models"]
                if m.removesuffix(".last") in config["models"]
            ):
                raise WorkflowError(
                    f"config: ensembles.{ensemble} has no member with a dataset to tune its thresholds on; give one of its models dataset and fold"
                )
    for ensemble, spec in config["ensembles"].items():
        for member in spec["models"]:
            model = member.removesuffix(".last")
            if model not in config["models"]:
                raise WorkflowError(
                    f"config: ensembles.{ensemble}.models names unknown model '{model}'"
                )
            if member.endswith(".last") and "pretrained" in config["models"][model]:
                raise WorkflowError(
                    f"config: ensembles.{ensemble}.models names '{member}', but pretrained model '{model}' ships one checkpoint"
                )
        weights = spec.get("weights")
        if weights is not None and len(weights) != len(spec["models"]):
            raise WorkflowError(
                f"config: ensembles.{ensemble}.weights needs one weight per model"
            )
    if isinstance(config.get("solution"), dict):
        for name in config["solution"]:
            if name not in TEST_SETS:
                raise WorkflowError(
                    f"config: solution.{name} names no test set of test_images"
                )
    clashes = sorted(set(config["ensembles"]) & set(config["models"]))
    if clashes:
        raise WorkflowError(
            f"config: ensembles.{clashes[0]} has the name of a model; every model is also scored alone under its own name"
        )
    if config["submission"] not in ENTRIES:
        raise WorkflowError(
            f"config: submission names unknown ensemble or model '{config['submission']}'"
        )


# The test images by name (one folder is the set "test") and the solution CSVs that score them.
TEST_SETS = (
    config["test_images"]
    if isinstance(config["test_images"], dict)
    else {"test": config["test_images"]}
)
SOLUTIONS = (
    list(config["solution"].values())
    if isinstance(config.get("solution"), dict)
    else [config["solution"]] if config.get("solution") else []
)


# What gets predicted, post-processed, submitted and scored: every model alone, and every
# ensemble of config.
ENTRIES = {
    **{
        name: {"models": [name], "weights": [1.0], "method": "mean"}
        for name in config["models"]
    },
    **config["ensembles"],
}

_check_references()

SHARDS = [f"{index:03d}" for index in range(config["predict"]["shards"])]


wildcard_constraints:
    version="[A-Za-z0-9_]+",
    source="[A-Za-z0-9_]+",
    model="[A-Za-z0-9_]+",
    ensemble="[A-Za-z0-9_]+",
    shard="[0-9]{3}",
    checkpoint="model|last",
    fold="[0-9]+",


def synthetic_outputs():
    """The outputs of synthesize_sources: Kaggle train/test/solution, plus the TCGA-like
    and CTC-like sources when config asks for them."""
    spec = config.get("synthetic", {})
    root = spec.get("root", "resources/synthetic")
    outputs = {
        "test": directory(f"{root}/stage1_test"),
        "solution": f"{root}/stage1_solution.csv",
    }
    if spec.get("n_train", 1):
        outputs["train"] = directory(f"{root}/stage1_train")
    if spec.get("n_monuseg_tiles"):
        outputs["monuseg"] = directory(f"{root}/monuseg")
    if spec.get("n_ctc_frames"):
        outputs["ctc"] = directory(f"{root}/Fluo-N2DH-SYN")
    return outputs


def source_inputs(wildcards):
    """Raw folder (and labels CSV) of source ``wildcards.source``."""
    spec = config["sources"][wildcards.source]
    return [spec["path"]] + ([spec["labels_csv"]] if spec.get("labels_csv") else [])


def dataset_inputs(wildcards):
    """Converted-source manifests and selection CSVs of dataset version ``wildcards.version``."""
    spec = config["datasets"][wildcards.version]
    manifests = [f"results/sources/{name}/manifest.tsv" for name in spec["sources"]]
    return manifests + [spec[key] for key in ("include", "exclude") if spec.get(key)]


def dataset_of(wildcards):
    return config["models"][wildcards.model]["dataset"]


def version_normalize(version):
    """The normalisation of dataset version ``version``: config ``normalize`` updated by the
    version's own ``normalize`` keys (test images are normalised as each model's checkpoint
    records)."""
    return {**config["normalize"], **config["datasets"][version].get("normalize", {})}


def model_fold_dir(model):
    """The materialised fold folder a model trains on."""
    spec = config["models"][model]
    return f"results/datasets/{spec['dataset']}/folds/{spec['fold']}"


def model_manifest(model):
    """The manifest of the dataset version a model trains on."""
    return f"results/datasets/{config['models'][model]['dataset']}/manifest.tsv"


def fold_dir_of(wildcards):
    return model_fold_dir(wildcards.model)


def keep_or_temp(path):
    """Per-model probability maps are temporary unless predict.keep_maps asks to keep them."""
    return path if config["predict"]["keep_maps"] else temp(path)


def model_params(wildcards):
    return config["models"][wildcards.model]


def ensemble_members(wildcards):
    return ENTRIES[wildcards.ensemble]["models"]


def member_checkpoint(member):
    """``(model, checkpoint)`` of an ensemble member: ``name`` is the best checkpoint
    (model.pt), ``name.last`` the last one."""
    model, _, which = member.partition(".")
    return model, which or "model"


def member_checkpoints(wildcards):
    return [
        "results/models/{}/{}.pt".format(*member_checkpoint(m))
        for m in ensemble_members(wildcards)
    ]


def member_predictions(wildcards):
    return [
        "results/predictions/{}/{}-{}.npz".format(
            *member_checkpoint(m), wildcards.shard
        )
        for m in ensemble_members(wildcards)
    ]


PRETRAINED = {
    name: spec["pretrained"]
    for name, spec in config["models"].items()
    if "pretrained" in spec
}
TRAINED = [name for name in config["models"] if name not in PRETRAINED]
# the dataset versions models train (or tune) on
TRAINED_VERSIONS = sorted(
    {spec["dataset"] for spec in config["models"].values() if "dataset" in spec}
)


def first_member_model(wildcards):
    """The first member with a dataset: whose validation fold the entry is tuned on."""
    models = [member_checkpoint(m)[0] for m in ensemble_members(wildcards)]
    return next(m for m in models if "dataset" in config["models"][m])


def init_weights(wildcards):
    """The checkpoint a model's training starts from (config ``init``), if any."""
    init = config["models"][wildcards.model].get("init")
    if init is None:
        return []
    return str(Path(init) / "model.pt") if Path(init).suffix != ".pt" else init


def tuning_inputs(wildcards):
    """What tuning an entry reads: nothing for a model whose thresholds its entry fixes;
    for an ensemble of one model's best checkpoint, that model's thresholds (nothing to
    tune again); otherwise its members' maps of the first
    member's validation fold, the fold and the manifest (for the categories)."""
    spec = ENTRIES[wildcards.ensemble]
    members = spec["models"]
    if fixed_thresholds(wildcards):
        return {}
    if wildcards.ensemble in PRETRAINED:
        return {"reuse": str(Path(PRETRAINED[wildcards.ensemble]) / "thresholds.json")}
    if (
        wildcards.ensemble not in config["models"]
        and len(members) == 1
        and member_checkpoint(members[0])[1] == "model"
        and spec["method"] == "mean"
    ):
        return {"reuse": f"results/thresholds/{members[0]}.json"}
    model = first_member_model(wildcards)
    spec = config["models"][model]
    version, fold = spec["dataset"], spec["fold"]
    return {
        "maps": [
            "results/validation/{}/{}-{}-{}.npz".format(
                *member_checkpoint(m), version, fold
            )
            for m in members
        ],
        "fold": model_fold_dir(model),
        "manifest": model_manifest(model),
    }


def fixed_thresholds(wildcards):
    """A model's thresholds fixed in its config entry (``thresholds:``), if any."""
    return config["models"].get(wildcards.ensemble, {}).get("thresholds")


def ensemble_weights(wildcards):
    return ENTRIES[wildcards.ensemble].get("weights")


def tuned_thresholds(wildcards):
    """The thresholds file of an ensemble when postprocess.tune is on, else nothing."""
    if config["postprocess"]["tune"]:
        return f"results/thresholds/{wildcards.ensemble}.json"
    return []


def all_outputs():
    outputs = ["results/submission.csv"]
    outputs += expand("results/submissions/{ensemble}.csv", ensemble=ENTRIES)
    outputs.append(f"results/overlays/{config['submission']}")
    outputs.append(f"results/measurements/{config['submission']}.csv")
    outputs.append("results/report/datasets.html")
    outputs.append("results/run_manifest.json")
    outputs.append("results/benchmarks.tsv")
    if SOLUTIONS:
        outputs += ["results/scores.tsv", "results/report/scores.html"]
    if config["postprocess"]["tune"]:
        outputs.append("results/validation_scores.tsv")
    return outputs
