rule train_model:
    """Train one model of config `models:` on its fold of its dataset version (a GPU job when one exists)."""
    input:
        manifest=lambda wc: f"results/datasets/{dataset_of(wc)}/manifest.tsv",
        fold=fold_dir_of,
        init=init_weights,
    output:
        model="results/models/{model}/model.pt",
        last="results/models/{model}/last.pt",
        log_table=report(
            "results/models/{model}/train_log.tsv",
            caption="../report/train_log.rst",
            category="Training",
            subcategory="{model}",
        ),
        curve=report(
            "results/models/{model}/learning_curve.png",
            caption="../report/learning_curve.rst",
            category="Training",
            subcategory="{model}",
        ),
    log:
        "results/logs/train_model/{model}.log",
    benchmark:
        "results/benchmarks/train_model/{model}.tsv"
    wildcard_constraints:
        model="|".join(TRAINED) or "(?!)",
    conda:
        "../../envs/torch.yaml"
    threads: lambda wc: config["models"][wc.model]["threads"]
    resources:
        gpu=1,
    params:
        model=model_params,
        # the thresholds validation uses, not the tuning grid (a new grid retrains nothing)
        postprocess={
            k: v for k, v in config["postprocess"].items() if k not in ("tune", "grid")
        },
        normalize=lambda wc: version_normalize(dataset_of(wc)),
        # resumable state, not an output: a killed or failed job keeps it
        checkpoints="results/checkpoints/{model}",
    script:
        "../scripts/train_model.py"


rule install_pretrained:
    """A shipped model (config ``models.<name>.pretrained``) used as it is: its checkpoint
    is written where trained models' checkpoints go, with the nucleus size its folder
    records."""
    input:
        model=lambda wc: str(Path(PRETRAINED[wc.model]) / "model.pt"),
        settings=lambda wc: [
            path
            for path in [Path(PRETRAINED[wc.model]) / "predict.json"]
            if path.is_file()
        ],
    output:
        "results/models/{model}/model.pt",
    log:
        "results/logs/install_pretrained/{model}.log",
    wildcard_constraints:
        model="|".join(PRETRAINED) or "(?!)",
    conda:
        "../../envs/torch.yaml"
    script:
        "../scripts/install_pretrained.py"


rule export_model:
    """A trained model as a shipped-model folder (weights, tuned thresholds, log, curve,
    model card); copy it to resources/models/<name>/ to ship it."""
    input:
        model="results/models/{model}/model.pt",
        log_table="results/models/{model}/train_log.tsv",
        curve="results/models/{model}/learning_curve.png",
        thresholds="results/thresholds/{model}.json",
        manifest=lambda wc: f"results/datasets/{dataset_of(wc)}/manifest.tsv",
        fold=fold_dir_of,
        evaluation=lambda wc: (
            f"results/evaluation/{wc.model}/summary.tsv"
            if config.get("evaluation")
            else []
        ),
    output:
        directory("results/export/{model}"),
    log:
        "results/logs/export_model/{model}.log",
    wildcard_constraints:
        model="|".join(TRAINED) or "(?!)",
    conda:
        "../../envs/torch.yaml"
    params:
        config_files=[str(f) for f in workflow.configfiles],
        licences=lambda wc: config["models"][wc.model].get("data_licences", ""),
        init=init_weights,
        predict=config["predict"],
    script:
        "../scripts/export_model.py"


rule evaluate_model:
    """A trained model on the evaluation sets of config evaluation: (annotated images from
    elsewhere, never trained on), as nucseg predict runs it; the summary goes into the card.
    """
    input:
        model="results/models/{model}/model.pt",
        thresholds="results/thresholds/{model}.json",
        sets=[
            path
            for spec in config.get("evaluation", {}).values()
            for path in (spec["path"], spec.get("labels_csv"))
            if path
        ],
    output:
        per_image="results/evaluation/{model}/per_image.tsv",
        summary="results/evaluation/{model}/summary.tsv",
    log:
        "results/logs/evaluate_model/{model}.log",
    benchmark:
        "results/benchmarks/evaluate_model/{model}.tsv"
    wildcard_constraints:
        model="|".join(TRAINED) or "(?!)",
    conda:
        "../../envs/torch.yaml"
    threads: 2
    resources:
        gpu=1,
    params:
        sets=config.get("evaluation", {}),
        predict=config["predict"],
    script:
        "../scripts/evaluate_model.py"
