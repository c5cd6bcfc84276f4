"""Run records: the benchmark table and the run manifest."""

import json
import subprocess

import pytest

from nucseg.errors import NucsegInputError
from nucseg.provenance import collect_benchmarks, committed_in, write_run_manifest

HEADER = "s\th:m:s\tmax_rss\tmax_vms\tmax_uss\tmax_pss\tio_in\tio_out\tmean_load\tcpu_time\n"


def test_benchmark_table_has_one_row_per_job_named_by_rule_and_wildcards(tmp_path):
    (tmp_path / "train_model").mkdir()
    (tmp_path / "train_model/unet16.tsv").write_text(
        HEADER + "298.27\t0:04:58\t864\t1572\t835\t849\t2.8\t567\t183.9\t549\n"
    )
    (tmp_path / "prepare_test_set.tsv").write_text(
        HEADER + "2.52\t0:00:02\t120\t300\t90\t95\t0\t2.4\t33.3\t1.1\n"
    )
    table = collect_benchmarks(tmp_path)
    assert list(table.rule) == ["prepare_test_set", "train_model"]
    assert list(table.job) == ["", "unet16"]
    assert table.s.tolist() == [2.52, 298.27] and table.max_rss.tolist() == [120, 864]


def test_benchmark_file_without_rows_is_named_in_the_error(tmp_path):
    (tmp_path / "broken.tsv").write_text("not\ta benchmark\n")
    with pytest.raises(NucsegInputError, match="broken.tsv"):
        collect_benchmarks(tmp_path)


def test_run_manifest_records_config_hash_code_packages_and_datasets(tmp_path):
    manifest = tmp_path / "manifest.tsv"
    manifest.write_text("id\n1\n")
    record = write_run_manifest(
        {"b": 1, "a": [2]}, {"v1": manifest}, tmp_path, tmp_path / "run.json"
    )
    assert json.loads((tmp_path / "run.json").read_text()) == record
    same = write_run_manifest(
        {"a": [2], "b": 1}, {"v1": manifest}, tmp_path, tmp_path / "again.json"
    )
    assert same["config_sha256"] == record["config_sha256"]  # key order does not matter
    assert record["code_version"] == "unknown"  # not a git checkout
    assert record["packages"]["numpy"].count(".") >= 1
    assert len(record["datasets"]["v1"]) == 64


def test_committed_in_names_the_commit_a_shipped_file_can_be_restored_from(tmp_path):
    def git(*args):
        return subprocess.run(
            ["git", "-c", "user.name=t", "-c", "user.email=t@t", *args],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()

    git("init", "-q")
    (tmp_path / "model.pt").write_bytes(b"weights")
    git("add", "model.pt")
    git("commit", "-qm", "ship")
    shipped = git("rev-parse", "--short", "HEAD")
    (tmp_path / "other.txt").write_text("later")
    git("add", "other.txt")
    git("commit", "-qm", "later")
    assert committed_in(tmp_path / "model.pt") == shipped
    assert committed_in(tmp_path / "untracked.pt") == ""
    # removed from the tree later (a newer model shipped), the file is restored from the
    # commit that last held it, not from the one that removed it
    git("rm", "-q", "model.pt")
    git("commit", "-qm", "ship another model")
    (tmp_path / "model.pt").write_bytes(b"weights")
    assert committed_in(tmp_path / "model.pt") == shipped
