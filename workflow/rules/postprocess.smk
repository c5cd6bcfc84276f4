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
        weights=lambda wc: config["ensembles"][wc.ensemble].get("weights"),
    script:
        "../scripts/ensemble_shard.py"


rule separate_instances:
    """Marker-controlled watershed: probability maps to instance labels for one shard."""
    input:
        "results/ensembles/{ensemble}/probabilities-{shard}.npz",
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
