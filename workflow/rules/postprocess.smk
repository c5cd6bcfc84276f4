rule ensemble_shard:
    """Weighted mean of the ensemble members' probability maps for one shard."""
    input:
        lambda wc: expand(
            "results/predictions/{model}/probabilities-{shard}.npz",
            model=ensemble_members(wc),
            shard=wc.shard,
        ),
    output:
        temp("results/ensembles/{ensemble}/probabilities-{shard}.npz"),
    log:
        "results/logs/ensemble_shard/{ensemble}-{shard}.log",
    benchmark:
        "results/benchmarks/ensemble_shard/{ensemble}-{shard}.tsv"
    params:
        weights=ensemble_weights,
    script:
        "../scripts/ensemble_shard.py"


rule tune_thresholds:
    """Grid-search the post-processing thresholds of one model or ensemble on the validation
    images of its (first) model's fold."""
    input:
        models=lambda wc: expand(
            "results/models/{model}/model.pt", model=ensemble_members(wc)
        ),
        fold=lambda wc: model_fold_dir(ensemble_members(wc)[0]),
    output:
        "results/thresholds/{ensemble}.json",
    log:
        "results/logs/tune_thresholds/{ensemble}.log",
    benchmark:
        "results/benchmarks/tune_thresholds/{ensemble}.tsv"
    threads: 2
    resources:
        gpu=1,
    params:
        weights=ensemble_weights,
        postprocess=config["postprocess"],
        predict=config["predict"],
    script:
        "../scripts/tune_thresholds.py"


rule separate_instances:
    """Marker-controlled watershed: probability maps to instance labels for one shard."""
    input:
        probabilities="results/ensembles/{ensemble}/probabilities-{shard}.npz",
        thresholds=tuned_thresholds,
    output:
        "results/ensembles/{ensemble}/instances-{shard}.npz",
    log:
        "results/logs/separate_instances/{ensemble}-{shard}.log",
    benchmark:
        "results/benchmarks/separate_instances/{ensemble}-{shard}.tsv"
    params:
        postprocess=config["postprocess"],
    script:
        "../scripts/separate_instances.py"
