"""The workflow on a real SLURM cluster (one node on loopback) through profiles/slurm."""

import re

import pytest
from slurm_cluster import LoopbackSlurm, install_reason
from workflow_run import REPO, snakemake, write_tiny_config

GPU_RULES = {"train_model", "predict_shard", "predict_validation"}
COMPARED_OUTPUTS = ["results/submission.csv", "results/scores.tsv", "results/thresholds/final.json"]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    reason = install_reason()
    if reason is not None:
        pytest.skip(reason)
    cluster = LoopbackSlurm(tmp_path_factory.mktemp("slurm"))
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()


def rule_of(job: dict[str, str]) -> str:
    """The rule of a job submitted by the executor (its comment is rule_<name>[_wildcards_..])."""
    match = re.fullmatch(r"rule_(\w+?)(_wildcards_.*)?", job.get("Comment", ""))
    assert match, job
    return match.group(1)


def test_slurm_profile_gives_gpus_to_gpu_rules_only_and_matches_a_local_run(
    cluster, tiny_run, tmp_path
):
    write_tiny_config(tmp_path)
    result = snakemake(
        tmp_path,
        "--workflow-profile",
        str(REPO / "profiles/slurm"),
        # no slurmdbd here, so no sacct history: poll squeue (MinJobAge is raised to 1 h)
        "--slurm-status-command",
        "squeue",
        "--slurm-init-seconds-before-status-checks",
        "1",
        "--slurm-no-account",
        env=cluster.env,
        cores=None,
        timeout=1500,
    )
    assert result.returncode == 0, result.stderr[-4000:]

    jobs = cluster.jobs()
    rules = {rule_of(job) for job in jobs}
    assert GPU_RULES <= rules and {"synthesize_sources", "separate_instances"} <= rules
    for job in jobs:
        assert job["JobState"] == "COMPLETED", job
        asks_gpu = "gpu" in job.get("TresPerJob", "")
        assert asks_gpu == (rule_of(job) in GPU_RULES), job
        if asks_gpu:
            assert job["TresPerJob"] == "gres:gpu:1" and job["CpusPerTres"].startswith("gres:gpu:")
    for model in ("unet16", "camunet4"):  # SLURM bound one of the node's two GPUs to the job
        train_log = (tmp_path / f"results/logs/train_model/{model}.log").read_text()
        assert re.search(r"CUDA_VISIBLE_DEVICES=[01]\)", train_log), train_log[-500:]
    for output in COMPARED_OUTPUTS:
        assert (tmp_path / output).read_bytes() == (tiny_run / output).read_bytes(), output
