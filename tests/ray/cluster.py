"""A real Ray cluster on this machine for the multi-node tests: a head and worker nodes, each started by
``ray start`` as a separate process tree, joined by address, as an operator starts one.

Each node is a session of its own (``start_new_session``): ``ray start`` exits once its node is up, and
the node's daemons (GCS, raylet, dashboard, agents) keep its session; the workers a raylet forks put
themselves in a process group of their own, but stay the raylet's children. A node's processes are that
session and all its descendants, killed with SIGKILL at once (a node crash), and teardown kills exactly
our nodes. ``ray stop`` is never used: it kills every Ray process of the machine by name, other
engineers' included.

Ports: the head's GCS on a free port (``ray start --head`` defaults to 6379, which Redis holds here: Ray
then dies with "Failed to start the grpc server"), and a free port for each node's node manager (how a
node is told apart from the others, all on one IP), dashboard, dashboard agent (52365 by default: two
nodes of one machine would clash) and Ray client server (10001). Each node has its own ``--temp-dir``
under a short folder (Unix socket paths must fit in 107 bytes, pytest's ``tmp_path`` does not), so
nothing lands in the machine's shared ``/tmp/ray`` (whose ``ray_current_cluster`` file other engineers'
``ray.init(address="auto")`` would read).

Measured here on 2 cores: ``ray start --head`` 15 s, a worker node about 10 s at load average 5; the
whole cluster (the worker nodes joining at once) about 60 s at load averages of 15-20."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from service.server import free_port

REPO = Path(__file__).resolve().parents[2]
RAY = str(Path(sys.executable).with_name("ray"))
#: the object store of each node, as ``ray.cluster_utils.Cluster`` gives its nodes (Ray's default is 30%
#: of RAM per node, three times over on one machine)
OBJECT_STORE_BYTES = 150 * 1024 * 1024


@dataclass
class RayNode:
    name: str
    pgid: int               # the process group and session of the node's daemons
    node_manager_port: int  # tells the node apart in the GCS's node table
    node_id: str = ""


class RayStartCluster:
    """``RayStartCluster(worker_gpus=(0, 1))``: a head of ``head_cpus`` CPUs and one worker node of
    ``worker_cpus`` CPUs per entry of ``worker_gpus`` (the fake GPUs it declares: a CPU machine, Ray only
    counts them), each started by ``ray start``. ``address`` is what ``RAY_ADDRESS`` is set to."""

    def __init__(self, worker_gpus: tuple[int, ...] = (0, 0), head_cpus: int = 1, worker_cpus: int = 1) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="sl-ray-", dir="/tmp"))
        self.port = free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.dashboard_port = free_port()
        self.nodes: list[RayNode] = []
        try:
            self.head = self._start("head", head_cpus, 0, ["--head", "--port", str(self.port),
                                                           "--dashboard-port", str(self.dashboard_port),
                                                           "--ray-client-server-port", str(free_port())])
            # the worker nodes join at once (about 10 s each when started one after the other)
            with ThreadPoolExecutor(len(worker_gpus) or 1) as pool:
                self.workers = list(pool.map(
                    lambda ig: self._start(f"worker{ig[0]}", worker_cpus, ig[1], ["--address", self.address]),
                    enumerate(worker_gpus)))
            self._resolve_node_ids()
        except BaseException:
            self.shutdown()
            raise

    def _start(self, name: str, cpus: int, gpus: int, extra: list[str]) -> RayNode:
        temp_dir = self.root / name
        temp_dir.mkdir()
        port = free_port()
        cmd = [RAY, "start", "--temp-dir", str(temp_dir), "--num-cpus", str(cpus), "--num-gpus", str(gpus),
               "--node-manager-port", str(port), "--dashboard-agent-listen-port", str(free_port()),
               "--object-store-memory", str(OBJECT_STORE_BYTES), "--disable-usage-stats", *extra]
        # workers import the project and tests.ray.workloads from this checkout, whatever the venv holds
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
               "RAY_AUTH_MODE": os.environ.get("RAY_AUTH_MODE", "disabled")}
        with open(self.root / f"{name}.log", "ab") as out:
            proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT,
                                    start_new_session=True)
        node = RayNode(name, proc.pid, port)
        self.nodes.append(node)   # before the wait: a node that fails to start is still killed
        if proc.wait(180) != 0:
            raise RuntimeError(f"ray start of {name} failed: {(self.root / f'{name}.log').read_text()[-3000:]}")
        return node

    def _alive_nodes(self) -> dict[int, str]:
        """Node manager port -> node id of every node the GCS has alive (no driver connection needed)."""
        from ray._raylet import GcsClient

        infos = GcsClient(address=self.address).get_all_node_info(timeout=10).values()
        return {i.node_manager_port: i.node_id.hex() for i in infos if i.state == 0}   # 0: ALIVE

    def _resolve_node_ids(self, seconds: float = 60) -> None:
        deadline = time.time() + seconds
        while True:
            alive = self._alive_nodes()
            if all(n.node_manager_port in alive for n in self.nodes):
                for n in self.nodes:
                    n.node_id = alive[n.node_manager_port]
                return
            if time.time() > deadline:
                raise RuntimeError(f"nodes not registered within {seconds} s: {alive}, {self.nodes}")
            time.sleep(0.5)

    @staticmethod
    def processes(node: RayNode) -> list:
        """The node's processes: its session's and their descendants (the raylet's workers)."""
        import psutil

        roots = []
        for p in psutil.process_iter():
            try:
                if os.getsid(p.pid) == node.pgid:
                    roots.append(p)
            except (ProcessLookupError, PermissionError, psutil.Error):
                continue
        found = {p.pid: p for p in roots}
        for p in roots:
            try:
                found.update((c.pid, c) for c in p.children(recursive=True))
            except psutil.Error:
                continue
        return list(found.values())

    def kill(self, node: RayNode) -> None:
        """SIGKILL every process of ``node`` at once: the node crashes (no drain, nothing told)."""
        import psutil

        procs = self.processes(node)
        try:
            os.killpg(node.pgid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        for p in procs:
            try:
                p.kill()
            except psutil.Error:
                pass
        psutil.wait_procs(procs, timeout=10)

    def wait_dead(self, node: RayNode, seconds: float = 120) -> float:
        """Seconds until the GCS marks ``node`` dead (its health checks fail)."""
        t0 = time.time()
        while node.node_manager_port in self._alive_nodes():
            if time.time() > t0 + seconds:
                raise AssertionError(f"{node.name} still alive {seconds} s after it was killed")
            time.sleep(0.5)
        return time.time() - t0

    def shutdown(self) -> None:
        for node in reversed(self.nodes):
            self.kill(node)
        shutil.rmtree(self.root, ignore_errors=True)
