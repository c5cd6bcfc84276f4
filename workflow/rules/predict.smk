rule predict_shard:
    """Probability maps of one model checkpoint (model = best, last) for one shard of the
    test images (model loaded once)."""
    input:
        model="results/models/{model}/{checkpoint}.pt",
        manifest="results/test/manifest.tsv",
        normalized="results/test/normalized",
        images=list(TEST_SETS.values()),  # read when the model was trained otherwise
    output:
        keep_or_temp("results/predictions/{model}/{checkpoint}-{shard}.npz"),
    log:
        "results/logs/predict_shard/{model}-{checkpoint}-{shard}.log",
    benchmark:
        "results/benchmarks/predict_shard/{model}-{checkpoint}-{shard}.tsv"
    conda:
        "../../envs/torch.yaml"
    threads: 1
    resources:
        gpu=1,
    params:
        shard=lambda wc: int(wc.shard),
        n_shards=len(SHARDS),
        predict=config["predict"],
        normalize=config["normalize"],  # how prepare_test_set normalised
    script:
        "../scripts/predict_shard.py"
