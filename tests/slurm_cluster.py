"""A live single-node SLURM cluster for tests: munged, slurmctld and slurmd.

Everything lives in one temporary folder: the munge key and socket, the
generated slurm.conf, the controller's state and the node's spool. The
daemons run in the foreground as children of the test process, so they are
stopped by their own PIDs; ports are picked free, so several clusters (two
test sessions on one machine) do not meet. Clients find the cluster through
SLURM_CONF, which `env()` sets.

Starting needs root (slurmd launches jobs as their submitting user) and the
Debian packages slurm-wlm and munge; `missing()` says what is absent.
"""

from __future__ import annotations

import os
import random
import re
import shutil
import socket
import subprocess
import time
from pathlib import Path

from actlab.sweep import _die_with_parent

PROGRAMS = (
  "munged",
  "slurmctld",
  "slurmd",
  "sbatch",
  "srun",
  "scontrol",
  "scancel",
  "squeue",
  "sinfo",
)
# Jobs that end are kept this long in the controller, so `scontrol show job`
# still reports their state and exit code when a test looks.
MIN_JOB_AGE_S = 600

_CONF = """\
ClusterName={cluster}
SlurmctldHost={host}
SlurmctldPort={ctld_port}
SlurmdPort={slurmd_port}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket={munge_socket}
StateSaveLocation={root}/state
SlurmdSpoolDir={root}/spool
SlurmctldPidFile={root}/slurmctld.pid
SlurmdPidFile={root}/slurmd.pid
SlurmctldLogFile={root}/slurmctld.log
SlurmdLogFile={root}/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
JobRequeue=1
ReturnToService=2
MpiDefault=none
SwitchType=switch/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SchedulerType=sched/backfill
MinJobAge={min_job_age}
FirstJobId={first_job_id}
KillWait=30
InactiveLimit=0
SlurmctldTimeout=30
SlurmdTimeout=30
NodeName={host} CPUs={cpus} State=UNKNOWN
PartitionName=test Nodes={host} Default=YES MaxTime=INFINITE State=UP
"""


def missing() -> list[str]:
  """The SLURM and munge programs that are not installed (none: it can start)."""
  return [p for p in PROGRAMS if _program(p) is None]


def _free_port() -> int:
  with socket.socket() as s:
    s.bind(("", 0))
    return s.getsockname()[1]


def _program(name: str) -> str | None:
  """`name`'s path; daemons live in /usr/sbin, which a non-login PATH may lack."""
  return shutil.which(
    name, path=os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/sbin"])
  )


class SlurmCluster:
  """One controller and one node (this machine), started by `start()`."""

  def __init__(self, root: Path, cpus: int | None = None):
    self.root = Path(root)
    self.cpus = cpus or os.cpu_count() or 1
    self.host = socket.gethostname().split(".")[0]
    self.conf = self.root / "slurm.conf"
    self.munge_socket = self.root / "munge" / "munge.socket.2"
    self._daemons: list[tuple[str, subprocess.Popen]] = []

  def env(self, base: dict[str, str] | None = None) -> dict[str, str]:
    """`base` (default os.environ) with SLURM_CONF naming this cluster."""
    return dict(os.environ if base is None else base, SLURM_CONF=str(self.conf))

  def start(self, timeout: float = 60) -> SlurmCluster:
    """Starts munged, slurmctld and slurmd; returns when the node is idle."""
    if os.geteuid() != 0:
      raise RuntimeError("a test SLURM cluster runs its daemons as root; run the tests as root")
    for sub in ("munge", "state", "spool"):
      (self.root / sub).mkdir(parents=True, exist_ok=True)
    os.chmod(self.root / "munge", 0o700)
    key = self.root / "munge" / "munge.key"
    key.write_bytes(os.urandom(128))
    os.chmod(key, 0o400)
    self.conf.write_text(
      _CONF.format(
        cluster=f"actlab{os.getpid()}",
        host=self.host,
        ctld_port=_free_port(),
        slurmd_port=_free_port(),
        munge_socket=self.munge_socket,
        root=self.root,
        min_job_age=MIN_JOB_AGE_S,
        # JAX derives a SLURM job's coordinator port from the job id: clusters
        # started side by side must not number their jobs alike.
        first_job_id=random.randrange(1000, 1_000_000),
        cpus=self.cpus,
      )
    )
    try:
      self._spawn(
        "munged",
        "--foreground",
        "--force",
        f"--socket={self.munge_socket}",
        f"--key-file={key}",
        f"--pid-file={self.root / 'munge' / 'munged.pid'}",
        f"--log-file={self.root / 'munge' / 'munged.log'}",
        f"--seed-file={self.root / 'munge' / 'munged.seed'}",
      )
      self._wait(lambda: self.munge_socket.exists(), timeout, "munged's socket")
      # -i: ignore state left by another cluster (there is none in a fresh folder).
      self._spawn("slurmctld", "-D", "-i", "-f", str(self.conf))
      self._spawn("slurmd", "-D", "-f", str(self.conf))
      self._wait(self._node_idle, timeout, f"node {self.host} to be idle")
    except BaseException:
      self.stop()
      raise
    return self

  def stop(self) -> None:
    """Cancels the cluster's jobs, then stops every daemon this object
    started, by PID, newest first."""
    if self._daemons and self._daemons[-1][1].poll() is None:
      self._cancel_jobs()
    for _, proc in reversed(self._daemons):
      if proc.poll() is None:
        proc.terminate()
    for _, proc in reversed(self._daemons):
      try:
        proc.wait(timeout=20)
      except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    self._daemons.clear()

  # -- clients -----------------------------------------------------------------

  def run(
    self, *args: str, check: bool = True, timeout: float = 60, **kwargs
  ) -> subprocess.CompletedProcess:
    """Runs a SLURM client command against this cluster; returns its output."""
    kwargs.setdefault("env", self.env())
    out = subprocess.run(list(args), capture_output=True, text=True, timeout=timeout, **kwargs)
    if check and out.returncode:
      raise RuntimeError(f"{' '.join(args)} failed ({out.returncode}): {out.stderr}{self.logs()}")
    return out

  def job(self, job_id: str) -> dict[str, str]:
    """`scontrol show job` as a dict (JobState, ExitCode, Restarts, ...)."""
    text = self.run("scontrol", "-o", "show", "job", job_id).stdout
    return dict(re.findall(r"(\w+)=(\S*)", text.splitlines()[0]))

  def array_tasks(self, job_id: str) -> list[dict[str, str]]:
    """Every task of array `job_id`, one `scontrol show job` dict each."""
    text = self.run("scontrol", "-o", "show", "job", job_id).stdout
    return [dict(re.findall(r"(\w+)=(\S*)", line)) for line in text.splitlines() if line]

  def wait_done(self, job_id: str, timeout: float) -> list[dict[str, str]]:
    """Waits until every task of `job_id` has ended; returns them."""
    ended = ("COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY")
    deadline = time.time() + timeout
    while True:
      tasks = self.array_tasks(job_id)
      if tasks and all(t["JobState"] in ended for t in tasks):
        return tasks
      if time.time() > deadline:
        raise TimeoutError(f"job {job_id} did not end in {timeout:.0f}s: {tasks}")
      time.sleep(0.5)

  def logs(self) -> str:
    """The tail of the daemons' logs, for a failing test's message."""
    parts = []
    for name in ("slurmctld.log", "slurmd.log", "munge/munged.log"):
      path = self.root / name
      if path.exists():
        parts.append(f"\n--- {name} ---\n" + "\n".join(path.read_text().splitlines()[-20:]))
    return "".join(parts)

  # -- internals ---------------------------------------------------------------

  def _spawn(self, name: str, *args: str) -> None:
    proc = subprocess.Popen(
      [_program(name), *args],
      env=self.env(),
      stdin=subprocess.DEVNULL,
      stdout=open(self.root / f"{name}.out", "wb"),  # noqa: SIM115  (the daemon owns it)
      stderr=subprocess.STDOUT,
      # Ctrl-C in the test run reaches the daemons through stop(), in order;
      # a test run killed outright takes them with it (SIGTERM on its death).
      start_new_session=True,
      preexec_fn=_die_with_parent,
    )
    self._daemons.append((name, proc))

  def _cancel_jobs(self, timeout: float = 60) -> None:
    # A job's processes belong to slurmstepd, not to slurmd: end them first.
    self.run("scancel", "--full", f"--user={os.geteuid()}", check=False)
    deadline = time.time() + timeout
    while time.time() < deadline:
      out = self.run("squeue", "-h", "-t", "running,completing", check=False)
      if out.returncode or not out.stdout.strip():
        return
      time.sleep(0.5)

  def _node_idle(self) -> bool:
    for name, proc in self._daemons:
      if proc.poll() is not None:
        out = (self.root / f"{name}.out").read_text(errors="replace")
        raise RuntimeError(f"{name} exited ({proc.returncode}): {out[-2000:]}{self.logs()}")
    out = self.run("sinfo", "-h", "-o", "%T", check=False)
    return out.returncode == 0 and out.stdout.strip() == "idle"

  def _wait(self, ready, timeout: float, what: str) -> None:
    deadline = time.time() + timeout
    while not ready():
      if time.time() > deadline:
        raise TimeoutError(f"waited {timeout:.0f}s for {what}{self.logs()}")
      time.sleep(0.2)
