"""The model repository (Triton's layout): MODEL_REPOSITORY/<MODEL_NAME>/<version>/ with the ONNX file(s), the
model card and the labels. A version folder is published whole (a temporary folder renamed into place) and never
changed afterwards, so a folder with a model card is complete.

Version policy: the newest version, unless pinned (the live pin set by the load route wins over MODEL_VERSION)
and skipping versions unloaded by the unload route. MODEL_DIR, when set, overrides all of this: that folder is
served exactly and never watched (tests, benchmarks, the baked image in Kubernetes).

    .venv/bin/python model/repository.py prune --keep 3     # delete old versions no live worker serves
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import sys
import time
from pathlib import Path

from resnet_common import heartbeats
from resnet_common.model_control import Control
from resnet_common.repository_layout import published_versions, version_number

log = logging.getLogger(__name__)


def model_root(repository: str | Path, name: str) -> Path:
    return Path(repository) / name


def versions(repository: str | Path, name: str) -> list[int]:
    """Published versions, ascending (resnet_common.repository_layout)."""
    return published_versions(model_root(repository, name))


def choose(available: list[int], env_pin: int | None, control: Control | None = None) -> int | None:
    """The version to serve: the live pin, else MODEL_VERSION, else the newest not unloaded; None if none fits.

    A pin to a version that is not (or no longer) in the repository is ignored, so a bad pin never stops serving."""
    control = control or Control()
    for pin in (control.pin, env_pin):
        if pin is not None and pin in available:
            return pin
    candidates = [v for v in available if v not in control.unloaded]
    return candidates[-1] if candidates else None


def parse_env_pin(raw: str) -> int | None:
    raw = (raw or "").strip()
    if not raw:
        return None
    number = version_number(raw)
    if number is None:
        raise ValueError(f"MODEL_VERSION={raw!r} is not a version number")
    return number


def start_folder(cfg) -> str:
    """The model folder a worker starting now with `cfg` serves, before any live policy is read: MODEL_DIR, else
    the version MODEL_VERSION pins or the newest one, else MODEL_FALLBACK_DIR ("" when there is none yet)."""
    if cfg.MODEL_DIR:
        return cfg.MODEL_DIR
    chosen = choose(versions(cfg.MODEL_REPOSITORY, cfg.MODEL_NAME), parse_env_pin(cfg.MODEL_VERSION))
    if chosen is not None:
        return str(model_root(cfg.MODEL_REPOSITORY, cfg.MODEL_NAME) / str(chosen))
    return cfg.MODEL_FALLBACK_DIR


def served_versions(client, ttl_s: float) -> set[int] | None:
    """Versions the live workers serve (from their heartbeats); None when Redis cannot tell (keep everything)."""
    try:
        status = heartbeats.live_status(client, ttl_s, ("model_version",))
    except Exception as exc:  # no Redis, wrong password, anything: unsure, so keep
        log.warning("cannot read the workers' heartbeats (%s): keeping every version", exc)
        return None
    unknown = [name for name, values in status if values is None]
    if unknown:  # a live worker serving who knows what: unsure, so keep
        log.warning("cannot read the status of live worker(s) %s: keeping every version", ", ".join(unknown))
        return None
    found = set()
    for _, values in status:
        value = values[0] if values else None
        number = version_number(value.decode("utf-8", "replace")) if value else None
        if number is not None:
            found.add(number)
    return found


def prune(repository: str | Path, name: str, keep: int, in_use: set[int] | None) -> list[int]:
    """Delete all but the newest `keep` versions and any version in use; `in_use` None (unknown) deletes nothing.

    Temporary folders of publications that died half-way (".tmp-*" older than an hour) go too."""
    if in_use is None or keep < 1:
        return []
    available = versions(repository, name)
    doomed = [v for v in available[:-keep] if v not in in_use]
    root = model_root(repository, name)
    for version in doomed:
        trash = root / f".deleting-{version}-{os.getpid()}"
        os.rename(root / str(version), trash)  # gone from the listing at once; the slow delete follows
        shutil.rmtree(trash, ignore_errors=True)
    for leftover in root.glob(".tmp-*"):
        if time.time() - leftover.stat().st_mtime > 3600:
            shutil.rmtree(leftover, ignore_errors=True)
    return doomed


def main(argv: list[str] | None = None) -> int:
    import settings
    from resnet_common.redis_conn import make_client

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("prune", help="keep the newest --keep versions and any version a live worker serves")
    p.add_argument("--keep", type=int, default=int(os.environ.get("MODEL_KEEP_VERSIONS") or "3"))
    sub.add_parser("list", help="the published versions and the one the policy serves")
    args = parser.parse_args(argv)
    cfg = settings.load()
    if args.command == "list":
        available = versions(cfg.MODEL_REPOSITORY, cfg.MODEL_NAME)
        print(f"{model_root(cfg.MODEL_REPOSITORY, cfg.MODEL_NAME)}: versions {available}")
        return 0
    client = make_client(cfg, socket_timeout=2)
    in_use = served_versions(client, cfg.HEARTBEAT_TTL_S)
    removed = prune(cfg.MODEL_REPOSITORY, cfg.MODEL_NAME, args.keep, in_use)
    kept = versions(cfg.MODEL_REPOSITORY, cfg.MODEL_NAME)
    served = "unknown, so nothing was removed" if in_use is None else sorted(in_use)
    print(f"repository.py: removed versions {removed or 'none'}; kept {kept} (served now: {served})")
    return 0


if __name__ == "__main__":
    logging.basicConfig(level="INFO", format="%(name)s: %(message)s")
    sys.exit(main())
