"""Test hosts in network namespaces on a bridge the test creates and removes (addresses from 198.18.0.0/16).

`Network` makes a bridge with the host side at .1 and one namespace per host, each with a veth on the bridge;
`prefix(name)` runs a command inside a host. With a Docker engine running, iptables' FORWARD policy is DROP:
an ACCEPT rule for this bridge is added and removed again (always, whatever the policy: it costs nothing).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess


class NamespacesUnavailable(Exception):
    """The kernel (or the lack of privileges) refuses network namespaces: the caller skips with this reason."""


def _run(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(list(args), capture_output=True, text=True, check=check, timeout=30)


def free_subnet_octet(start: int) -> int:
    """A third octet X (from `start` on) such that no interface of this host has an address in 198.18.X.0/24, so
    tests running side by side never share a subnet."""
    out = _run("ip", "-4", "-o", "addr", "show", check=False).stdout
    used = {int(m) for m in re.findall(r"inet 198\.18\.(\d+)\.", out)}
    for i in range(256):
        octet = (start + i) % 254 + 1
        if octet not in used:
            return octet
    raise NamespacesUnavailable("no free /24 left in 198.18.0.0/16")


class Network:
    def __init__(self, tag: str, subnet_octet: int) -> None:
        self.tag = tag[:8]
        self.net = f"198.18.{subnet_octet}"
        self.bridge = f"br{self.tag}"
        self.hosts: dict[str, str] = {}
        self._rule: list[str] | None = None

    def __enter__(self) -> Network:
        if os.geteuid() != 0 or shutil.which("ip") is None:
            raise NamespacesUnavailable("needs root and iproute2 (ip netns)")
        probe = f"{self.tag}probe"
        out = _run("ip", "netns", "add", probe, check=False)
        if out.returncode != 0:
            raise NamespacesUnavailable(f"ip netns add refused: {out.stderr.strip()}")
        _run("ip", "netns", "del", probe)
        try:
            _run("ip", "link", "add", self.bridge, "type", "bridge")
            _run("ip", "addr", "add", f"{self.net}.1/24", "dev", self.bridge)
            _run("ip", "link", "set", self.bridge, "up")
            if shutil.which("iptables"):
                self._rule = ["FORWARD", "-i", self.bridge, "-o", self.bridge, "-j", "ACCEPT"]
                _run("iptables", "-I", *self._rule)
        except BaseException:
            self.__exit__()
            raise
        return self

    def add_host(self, name: str, last_octet: int) -> str:
        """A namespace `<tag><name>` with address net.<last_octet> on the bridge; returns the address."""
        ns, veth = f"{self.tag}{name}", f"v{self.tag}{name}"[:15]
        address = f"{self.net}.{last_octet}"
        _run("ip", "netns", "add", ns)
        self.hosts[name] = ns
        _run("ip", "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", ns)
        _run("ip", "link", "set", veth, "master", self.bridge)
        _run("ip", "link", "set", veth, "up")
        for cmd in (
            ["ip", "addr", "add", f"{address}/24", "dev", "eth0"],
            ["ip", "link", "set", "eth0", "up"],
            ["ip", "link", "set", "lo", "up"],
        ):
            _run("ip", "netns", "exec", ns, *cmd)
        return address

    def prefix(self, name: str) -> list[str]:
        return ["ip", "netns", "exec", self.hosts[name]]

    def __exit__(self, *exc) -> None:
        for ns in self.hosts.values():
            _run("ip", "netns", "del", ns, check=False)  # takes its veth pair with it
        self.hosts.clear()
        if self._rule:
            _run("iptables", "-D", *self._rule, check=False)
            self._rule = None
        _run("ip", "link", "del", self.bridge, check=False)
