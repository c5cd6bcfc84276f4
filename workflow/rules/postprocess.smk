rule ensemble_shard:
    """Weighted mean of the ensemble members' probability maps for one shard."""
    input:
        member_predictions,
    output:
        temp("results/ensembles/{ensemble}/probabilities-{shard}.npz"),
    log:
        "results/logs/ensemble_shard/{ensemble}-{shard}.log",
    benchmark:
        "results/benchmarks/ensemble_shard/{ensemble}-{shard}.tsv"
    conda:
        "../../envs/data.yaml"
    params:
        weights=ensemble_weights,
        vote=lambda wc: ENTRIES[wc.ensemble].get("method", "mean") == "vote",
    script:
        "../scripts/ensemble_shard.py"


rule tune_thresholds:
    """Grid-search the post-processing thresholds of one model or ensemble on the validation
    images of its (first) model's fold."""
    input:
        models=member_checkpoints,
        fold=lambda wc: model_fold_dir(first_member_model(wc)),
        manifest=lambda wc: model_manifest(first_member_model(wc)),
    output:
        "results/thresholds/{ensemble}.json",
    log:
        "results/logs/tune_thresholds/{ensemble}.log",
    benchmark:
        "results/benchmarks/tune_thresholds/{ensemble}.tsv"
    conda:
        "../../envs/torch.yaml"
    threads: 2
    resources:
        gpu=1,
    params:
        weights=ensemble_weights,
        vote=lambda wc: ENTRIES[wc.ensemble].get("method", "mean") == "vote",
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
    conda:
        "../../envs/data.yaml"
    params:
        postprocess=config["postprocess"],
    script:
        "../scripts/separate_instances.py"
