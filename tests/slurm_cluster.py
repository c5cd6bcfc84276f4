"""A one-node SLURM cluster on loopback for tests: munged, slurmctld and slurmd in a folder.

The node declares two GPUs (``Gres=gpu:2``) backed by placeholder character devices, so
SLURM schedules, counts and exports GPUs (``CUDA_VISIBLE_DEVICES``) with no GPU present.
There is no slurmdbd: ``sacct`` has no job history, so job status must come from ``squeue``,
which lists finished jobs only for ``MinJobAge`` seconds; it is raised to an hour here.
Daemons run in the foreground as children of the test and are stopped by their pids.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import stat
import subprocess
import time
from pathlib import Path

PACKAGES = ("slurm-wlm", "munge")
DAEMONS = ("munged", "slurmctld", "slurmd")
NODE = "nucseg-node"
PARTITION = "gpu"


def install_reason() -> str | None:
    """None when SLURM and munge are installed (installing them with apt if missing),
    else why they cannot be."""
    if all(shutil.which(daemon) for daemon in DAEMONS):
        return None
    if shutil.which("apt-get") is None or os.geteuid() != 0:
        return "slurm-wlm/munge are missing and apt-get cannot install them (needs root)"
    env = os.environ | {"DEBIAN_FRONTEND": "noninteractive"}
    for command in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", *PACKAGES]):
        result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=900)
        if result.returncode != 0:
            return f"{' '.join(command)} failed: {result.stderr.strip()[-300:]}"
    return None


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _placeholder_gpu(path: Path, minor: int) -> None:
    """A character device standing in for /dev/nvidiaN (slurmd refuses regular files)."""
    try:
        # the numbers of /dev/null and /dev/zero
        os.mknod(path, 0o600 | stat.S_IFCHR, os.makedev(1, minor))
    except PermissionError:
        path.symlink_to("/dev/null" if minor == 3 else "/dev/zero")


class LoopbackSlurm:
    """Start with :meth:`start`, stop with :meth:`stop`; ``env`` points clients at it."""

    def __init__(self, root: Path, cpus: int = 16, memory_mb: int = 64000):
        self.root = Path(root)
        self.cpus, self.memory_mb = cpus, memory_mb
        self.processes: dict[str, subprocess.Popen] = {}
        self.env = os.environ | {
            "SLURM_CONF": str(self.root / "slurm.conf"),
            "PATH": f"{self.root / 'bin'}{os.pathsep}{os.environ['PATH']}",
        }

    def start(self, timeout: float = 60) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        self.root.chmod(0o700)  # munged refuses a key in a folder others can write
        for folder in ("state", "spool"):
            (self.root / folder).mkdir(exist_ok=True)
        key = self.root / "munge.key"
        key.write_bytes(os.urandom(1024))
        key.chmod(0o600)
        self._write_config()
        self._write_srun_shim()
        self._spawn(
            "munged",
            [
                "munged",
                "--foreground",
                "--force",
                f"--key-file={key}",
                f"--socket={self.root / 'munge.sock'}",
                f"--pid-file={self.root / 'munged.pid'}",
                f"--seed-file={self.root / 'munged.seed'}",
                f"--log-file={self.root / 'munged.log'}",
            ],
        )
        self._wait_for(lambda: (self.root / "munge.sock").exists(), timeout, "munged")
        self._spawn("slurmctld", ["slurmctld", "-D", "-i"])
        self._spawn("slurmd", ["slurmd", "-D", "-N", NODE])
        self._wait_for(self._node_idle, timeout, "the node to become idle")

    def stop(self) -> None:
        """Cancel every job, then stop the daemons by pid (slurmd first, munged last)."""
        if "slurmctld" in self.processes:
            subprocess.run(["scancel", "--full", "-u", "root"], env=self.env, capture_output=True)
        for name in reversed(DAEMONS):
            process = self.processes.pop(name, None)
            if process is None:
                continue
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    def jobs(self) -> list[dict[str, str]]:
        """Every job slurmctld remembers (all of them: MinJobAge is an hour), as key=value
        fields of ``scontrol show job --oneliner``."""
        result = subprocess.run(
            ["scontrol", "--details", "--oneliner", "show", "job"],
            env=self.env,
            capture_output=True,
            text=True,
            check=True,
        )
        jobs = []
        for line in result.stdout.splitlines():
            fields = dict(item.split("=", 1) for item in line.split() if "=" in item)
            if "JobId" in fields:
                jobs.append(fields)
        return jobs

    def _write_config(self) -> None:
        root, host = self.root, socket.gethostname().split(".")[0]
        gpus = [root / "gpu0", root / "gpu1"]
        for minor, path in zip((3, 5), gpus, strict=True):
            if not path.exists() and not path.is_symlink():
                _placeholder_gpu(path, minor)
        (root / "gres.conf").write_text(f"NodeName={NODE} Name=gpu File={root}/gpu[0-1]\n")
        (root / "slurm.conf").write_text(
            f"""ClusterName=nucseg-test
SlurmctldHost={host}(127.0.0.1)
SlurmctldPort={_free_port()}
SlurmdPort={_free_port()}
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket={root}/munge.sock
SlurmUser=root
SlurmdUser=root
StateSaveLocation={root}/state
SlurmdSpoolDir={root}/spool
SlurmctldPidFile={root}/slurmctld.pid
SlurmdPidFile={root}/slurmd.pid
SlurmctldLogFile={root}/slurmctld.log
SlurmdLogFile={root}/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
GresTypes=gpu
# no slurmdbd: squeue must still list finished jobs when Snakemake polls
MinJobAge=3600
ReturnToService=2
# the node may declare more CPUs/memory than this machine has (jobs only need to fit)
SlurmdParameters=config_overrides
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
NodeName={NODE} NodeAddr=127.0.0.1 CPUs={self.cpus} RealMemory={self.memory_mb} Gres=gpu:2
PartitionName={PARTITION} Nodes=ALL Default=YES MaxTime=INFINITE State=UP
"""
        )

    def _write_srun_shim(self) -> None:
        """An ``srun`` that finds this cluster: Snakemake's job-step executor strips SLURM_*
        variables (SLURM_CONF too) before its inner srun, which on a real cluster reads the
        default /etc/slurm/slurm.conf."""
        srun = shutil.which("srun", path=os.environ["PATH"])
        shim = self.root / "bin" / "srun"
        shim.parent.mkdir(exist_ok=True)
        shim.write_text(f'#!/bin/sh\nSLURM_CONF={self.root}/slurm.conf exec {srun} "$@"\n')
        shim.chmod(0o755)

    def _spawn(self, name: str, command: list[str]) -> None:
        log = open(self.root / f"{name}.out", "wb")
        self.processes[name] = subprocess.Popen(
            command, env=self.env, stdout=log, stderr=subprocess.STDOUT, cwd=self.root
        )
        log.close()

    def _node_idle(self) -> bool:
        result = subprocess.run(
            ["sinfo", "--noheader", "--nodes", NODE, "--format=%T"],
            env=self.env,
            capture_output=True,
            text=True,
        )
        return result.returncode == 0 and result.stdout.strip() == "idle"

    def _wait_for(self, ready, timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while not ready():
            for name, process in self.processes.items():
                if process.poll() is not None:
                    raise RuntimeError(f"{name} exited: {self._tail(name)}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"waited {timeout} s for {what}: {self._tail('slurmctld')}")
            time.sleep(0.2)

    def _tail(self, name: str) -> str:
        logs = [self.root / f"{name}.log", self.root / f"{name}.out"]
        text = "".join(p.read_text(errors="replace") for p in logs if p.exists())
        return text[-1500:]
