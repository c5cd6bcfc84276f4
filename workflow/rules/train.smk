rule train_model:
    """Train one model of config `models:` on its fold of its dataset version (a GPU job when one exists)."""
    input:
        manifest=lambda wc: f"results/datasets/{dataset_of(wc)}/manifest.tsv",
        fold=fold_dir_of,
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
    conda:
        "../../envs/torch.yaml"
    threads: lambda wc: config["models"][wc.model].get("threads", 2)
    resources:
        gpu=1,
    params:
        model=model_params,
        postprocess=config["postprocess"],
        normalize=config["normalize"],
        # resumable state, not an output: a killed or failed job keeps it
        checkpoints="results/checkpoints/{model}",
    script:
        "../scripts/train_model.py"
