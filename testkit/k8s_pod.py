"""Run a rendered pod template under Docker, constrained as the kubelet would run it (no cluster needed).

One pod = a "pause" container holding the network namespace (on a Docker network of the test's, with the
Service name as a DNS alias) and one `docker run --network container:<pause>` per container, translated from the
pod spec: runAsUser/runAsGroup/fsGroup -> --user/--group-add, readOnlyRootFilesystem -> --read-only, dropped
capabilities -> --cap-drop, allowPrivilegeEscalation: false -> no-new-privileges, limits -> --memory (swap off)
and --cpus, restartPolicy Always -> --restart always, env/envFrom from the rendered ConfigMaps and Secrets
($(VAR) references expanded), command/args -> entrypoint/arguments.

emptyDir volumes: `medium: Memory` -> a tmpfs Docker volume shared by the pod's containers, its size enforced by
tmpfs (sizeLimit) and its pages charged to the writer's memory cgroup, as on a node. Disk-backed -> a host
directory bind-mounted (mode 0777, as the kubelet creates it); its sizeLimit is NOT enforced here (the kubelet
enforces it by eviction after measuring usage), so `disk_usage()` reports what a volume holds.

Probes run as the kubelet runs them: httpGet from the node (this host) to the pod's address, exec through
`docker exec` in the container, tcpSocket as a connect.
"""

from __future__ import annotations

import base64
import contextlib
import ipaddress
import json
import re
import shutil
import socket
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import requests
from requests.adapters import HTTPAdapter

from testkit.compose_stack import docker
from testkit.k8s_manifests import one, quantity

_VAR_REF = re.compile(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)")


def _config_data(docs: list[dict], kind: str, name: str) -> dict[str, str]:
    obj = one(docs, kind, name)
    if kind == "Secret":
        data = {k: base64.b64decode(v).decode() for k, v in obj.get("data", {}).items()}
        return {**data, **obj.get("stringData", {})}
    return dict(obj.get("data", {}))


def container_env(c: dict, docs: list[dict]) -> dict[str, str]:
    """The environment the kubelet gives a container: envFrom sources in order, then env (which wins)."""
    env: dict[str, str] = {}
    for source in c.get("envFrom", []):
        kind, ref = (
            ("ConfigMap", source["configMapRef"]) if "configMapRef" in source else ("Secret", source["secretRef"])
        )
        env.update(_config_data(docs, kind, ref["name"]))
    for e in c.get("env", []):
        if "value" in e:
            env[e["name"]] = _VAR_REF.sub(lambda m: env.get(m.group(1), m.group(0)), e["value"])
            continue
        source = e["valueFrom"]
        kind, ref = ("ConfigMap", source["configMapKeyRef"]) if "configMapKeyRef" in source else ("Secret", None)
        ref = ref or source["secretKeyRef"]
        data = _config_data(docs, kind, ref["name"])
        if ref["key"] in data:
            env[e["name"]] = data[ref["key"]]
        elif not ref.get("optional"):
            raise KeyError(f"{c['name']}: {kind} {ref['name']} has no key {ref['key']}")
    return env


@dataclass
class Pod:
    """A pod template run under Docker: `start()`, `probe()`, `ip`, `containers`, `remove()`."""

    name: str
    spec: dict
    docs: list[dict]
    network: str
    workdir: Path
    images: dict[str, str]
    pause_image: str
    aliases: tuple[str, ...] = ()
    ip: str = ""
    containers: dict[str, str] = field(default_factory=dict)
    volumes: dict[str, str] = field(default_factory=dict)

    def _user(self, c: dict) -> list[str]:
        pod_sc, sc = self.spec.get("securityContext", {}), c.get("securityContext", {})
        uid, gid = sc.get("runAsUser", pod_sc.get("runAsUser")), sc.get("runAsGroup", pod_sc.get("runAsGroup"))
        args = ["--user", f"{uid}:{gid}"] if uid is not None else []
        if pod_sc.get("fsGroup") is not None:
            args += ["--group-add", str(pod_sc["fsGroup"])]
        return args

    def _volumes(self) -> None:
        """One Docker volume (Memory) or host directory (disk) per emptyDir of the pod."""
        for volume in self.spec.get("volumes", []):
            empty = volume["emptyDir"]
            name = f"{self.name}-{volume['name']}"
            if empty.get("medium") == "Memory":
                size = int(quantity(empty.get("sizeLimit", "64Mi")))
                options = f"size={size},mode=0777"
                docker("volume", "create", "--driver", "local", "--opt", "type=tmpfs", "--opt", "device=tmpfs",
                       "--opt", f"o={options}", name)  # fmt: skip
                self.volumes[volume["name"]] = name
            else:
                path = self.workdir / name
                path.mkdir(parents=True)
                path.chmod(0o777)
                self.volumes[volume["name"]] = str(path)

    def _run_args(self, c: dict) -> list[str]:
        sc = c.get("securityContext", {})
        env = container_env(c, self.docs)
        env_file = self.workdir / f"{self.name}-{c['name']}.env"
        env_file.write_text("".join(f"{k}={v}\n" for k, v in env.items()))
        env_file.chmod(0o600)
        limits = c.get("resources", {}).get("limits", {})
        args = ["run", "-d", "--name", f"{self.name}-{c['name']}", "--network", f"container:{self.name}"]
        args += self._user(c) + ["--env-file", str(env_file)]
        if sc.get("readOnlyRootFilesystem"):
            args.append("--read-only")
        if "ALL" in sc.get("capabilities", {}).get("drop", []):
            args += ["--cap-drop", "ALL"]
        if sc.get("allowPrivilegeEscalation") is False:
            args += ["--security-opt", "no-new-privileges"]
        if "memory" in limits:
            memory = str(int(quantity(limits["memory"])))
            args += ["--memory", memory, "--memory-swap", memory]
        if "cpu" in limits:
            args += ["--cpus", str(quantity(limits["cpu"]))]
        if self.spec.get("restartPolicy", "Always") == "Always":
            args += ["--restart", "always"]
        args += ["--stop-timeout", str(self.spec.get("terminationGracePeriodSeconds", 30))]
        for mount in c.get("volumeMounts", []):
            source = self.volumes[mount["name"]]
            args += ["-v", f"{source}:{mount['mountPath']}{':ro' if mount.get('readOnly') else ''}"]
        command = [_VAR_REF.sub(lambda m: env.get(m.group(1), m.group(0)), a) for a in c.get("command", [])]
        rest = [_VAR_REF.sub(lambda m: env.get(m.group(1), m.group(0)), a) for a in c.get("args", [])]
        if command:
            args += ["--entrypoint", command[0]]
        return [*args, self.images[c["image"]], *command[1:], *rest]

    def start(self) -> None:
        """The pause container, then every container in order (the pod's init order is not modelled)."""
        alias_args = [a for alias in self.aliases for a in ("--network-alias", alias)]
        docker("run", "-d", "--name", self.name, "--hostname", self.name, "--network", self.network, *alias_args,
               "--read-only", "--cap-drop", "ALL", "--user", "65535:65535", "--entrypoint", "sleep", self.pause_image,
               "infinity")  # fmt: skip
        inspect = json.loads(docker("inspect", self.name))[0]
        self.ip = inspect["NetworkSettings"]["Networks"][self.network]["IPAddress"]
        self._volumes()
        for c in self.spec["containers"]:
            self.containers[c["name"]] = docker(*self._run_args(c)).strip()

    def container_spec(self, name: str) -> dict:
        [c] = [c for c in self.spec["containers"] if c["name"] == name]
        return c

    @staticmethod
    def port(container: dict, port: int | str) -> int:
        """A probe's port: a number, or the name of one of the container's own ports (as the kubelet resolves it)."""
        if isinstance(port, int):
            return port
        for p in container.get("ports", []):
            if p.get("name") == port:
                return p["containerPort"]
        raise KeyError(f"{container['name']} has no port named {port}")

    def probe(self, container: str, kind: str) -> tuple[bool, str]:
        """Run the container's `kind` probe ("readinessProbe", ...) once as the kubelet would: (passed, detail)."""
        c = self.container_spec(container)
        spec = c[kind]
        timeout = spec.get("timeoutSeconds", 1)
        if "httpGet" in spec:
            get = spec["httpGet"]
            url = f"http://{self.ip}:{self.port(c, get['port'])}{get.get('path', '/')}"
            try:
                status = requests.get(url, timeout=timeout).status_code
            except requests.RequestException as exc:
                return False, f"GET {url}: {type(exc).__name__}"
            return 200 <= status < 400, f"GET {url}: {status}"
        if "exec" in spec:
            out = subprocess.run(
                ["docker", "exec", self.containers[container], *spec["exec"]["command"]],
                capture_output=True,
                text=True,
                timeout=timeout + 10,
                check=False,
            )
            return out.returncode == 0, f"exec: rc={out.returncode} {out.stderr.strip()[-300:]}"
        port = self.port(c, spec["tcpSocket"]["port"])
        try:
            socket.create_connection((self.ip, port), timeout=timeout).close()
        except OSError as exc:
            return False, f"tcp {self.ip}:{port}: {exc}"
        return True, f"tcp {self.ip}:{port}: open"

    def inspect(self, container: str) -> dict:
        return json.loads(docker("inspect", self.containers[container]))[0]

    def logs(self) -> str:
        out = []
        for name, cid in self.containers.items():
            text = subprocess.run(["docker", "logs", "--tail", "40", cid], capture_output=True, text=True, check=False)
            out.append(f"--- {self.name}/{name}\n{text.stdout[-3000:]}{text.stderr[-3000:]}")
        return "\n".join(out)

    def _memory_cgroup(self, container: str, v1: tuple[str, str], v2: tuple[str, str]) -> int | None:
        """One counter of the container's memory cgroup: (file, key) under cgroup v1, or under v2. None if unread."""
        cid = self.containers[container]
        for directory, (name, key) in (
            (f"/sys/fs/cgroup/memory/docker/{cid}", v1),
            (f"/sys/fs/cgroup/system.slice/docker-{cid}.scope", v2),
            (f"/sys/fs/cgroup/docker/{cid}", v2),
        ):
            try:
                lines = Path(directory, name).read_text().splitlines()
            except OSError:
                continue
            return next((int(v) for k, v in (line.split() for line in lines) if k == key), None)
        return None

    def anon_memory(self, container: str) -> int | None:
        """Bytes of anonymous memory (process heaps, tmpfs aside) the container's cgroup holds now: cgroup v1
        `rss` or v2 `anon`; page cache is left out (the kernel reclaims it before any OOM kill). None if unread."""
        return self._memory_cgroup(container, ("memory.stat", "rss"), ("memory.stat", "anon"))

    def oom_kills(self, container: str) -> int | None:
        """Processes the OOM killer has killed in the container so far. Docker's OOMKilled says so only when the
        container's first process dies; a gunicorn worker killed and replaced by its master shows only here."""
        return self._memory_cgroup(container, ("memory.oom_control", "oom_kill"), ("memory.events", "oom_kill"))

    def disk_usage(self, volume: str) -> int:
        """Bytes a disk-backed emptyDir holds now (what the kubelet's eviction manager would measure)."""
        path = Path(self.volumes[volume])
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())

    def remove(self) -> None:
        ids = [*self.containers.values(), self.name]
        subprocess.run(["docker", "rm", "-f", "-v", *ids], capture_output=True, timeout=120, check=False)
        for source in self.volumes.values():
            if source.startswith("/"):
                shutil.rmtree(source, ignore_errors=True)
            else:
                subprocess.run(["docker", "volume", "rm", "-f", source], capture_output=True, timeout=60, check=False)


@contextlib.contextmanager
def host_addresses(network: str, count: int) -> Iterator[list[str]]:
    """Up to `count` more addresses of this host on the Docker network's bridge (the top of its subnet), so a
    test's load comes from several clients as nginx counts them (per-client limits); removed afterwards. Fewer
    (none) where this process may not add addresses (not root): the caller sends from what it gets."""
    info = json.loads(docker("network", "inspect", network))[0]
    bridge = info["Options"].get("com.docker.network.bridge.name") or f"br-{info['Id'][:12]}"
    subnet = ipaddress.ip_network(info["IPAM"]["Config"][0]["Subnet"])
    addresses = [str(subnet.broadcast_address - 1 - i) for i in range(count)]
    added: list[str] = []
    try:
        for address in addresses:
            out = subprocess.run(["ip", "addr", "add", f"{address}/32", "dev", bridge], capture_output=True)
            if out.returncode != 0:
                break
            added.append(address)
        yield added
    finally:
        for address in added:
            subprocess.run(["ip", "addr", "del", f"{address}/32", "dev", bridge], check=False, capture_output=True)


class _SourceAddress(HTTPAdapter):
    def __init__(self, address: str) -> None:
        self.address = address
        super().__init__()

    def init_poolmanager(self, *args, **kwargs) -> None:
        kwargs["source_address"] = (self.address, 0)
        super().init_poolmanager(*args, **kwargs)


def session_from(address: str | None) -> requests.Session:
    """A requests session whose connections leave from `address` (None: wherever the route says)."""
    session = requests.Session()
    if address is not None:
        session.mount("http://", _SourceAddress(address))
    return session
