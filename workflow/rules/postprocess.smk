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
        vote=lambda wc: ENTRIES[wc.ensemble]["method"] == "vote",
    script:
        "../scripts/ensemble_shard.py"


rule predict_validation:
    """Probability maps of one model checkpoint on the validation images of a fold, as at
    test time; computed once, read by the tuning of every entry that uses the checkpoint.
    """
    input:
        model="results/models/{model}/{checkpoint}.pt",
        fold="results/datasets/{version}/folds/{fold}",
        manifest="results/datasets/{version}/manifest.tsv",
    output:
        keep_or_temp("results/validation/{model}/{checkpoint}-{version}-{fold}.npz"),
    log:
        "results/logs/predict_validation/{model}-{checkpoint}-{version}-{fold}.log",
    benchmark:
        "results/benchmarks/predict_validation/{model}-{checkpoint}-{version}-{fold}.tsv"
    conda:
        "../../envs/torch.yaml"
    threads: 2
    resources:
        gpu=1,
    params:
        predict=config["predict"],
        normalize=lambda wc: version_normalize(wc.version),  # how the fold was normalised
    script:
        "../scripts/predict_validation.py"


rule tune_thresholds:
    """Grid-search the post-processing thresholds of one model or ensemble on the validation
    images of its (first) model's fold, from its members' validation maps; an ensemble of
    one model's best checkpoint takes that model's thresholds, a model with thresholds in
    its config entry takes those."""
    input:
        unpack(tuning_inputs),
    output:
        "results/thresholds/{ensemble}.json",
    log:
        "results/logs/tune_thresholds/{ensemble}.log",
    benchmark:
        "results/benchmarks/tune_thresholds/{ensemble}.tsv"
    conda:
        "../../envs/data.yaml"
    threads: 2
    params:
        weights=ensemble_weights,
        vote=lambda wc: ENTRIES[wc.ensemble]["method"] == "vote",
        postprocess=config["postprocess"],
        fixed=fixed_thresholds,
    script:
        "../scripts/tune_thresholds.py"


rule validation_scores:
    """Validation DSB score per category of every model and ensemble, with its tuned
    thresholds (cross-validation evidence beside the test scores)."""
    input:
        expand("results/thresholds/{ensemble}.json", ensemble=ENTRIES),
    output:
        report(
            "results/validation_scores.tsv",
            caption="../report/validation_scores.rst",
            category="Scores",
        ),
    log:
        "results/logs/validation_scores.log",
    conda:
        "../../envs/data.yaml"
    params:
        entries=list(ENTRIES),
    script:
        "../scripts/validation_scores.py"


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
