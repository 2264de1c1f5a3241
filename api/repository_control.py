"""Triton's model repository extension, for this service's versioned repository (docs/model-repository.md):

    POST /v2/repository/index                       the versions the workers see, and which are served
    POST /v2/repository/models/<name>/load          serve the newest version again (clears pins and unloads), or
         {"parameters": {"version": "2"}}           pin version 2 (a rollback without a restart)
    POST /v2/repository/models/<name>/unload        stop serving the version served now (or
         {"parameters": {"version": "3"}}           version 3): workers move to the newest version left

The policy lives in Redis (`ml:model-control:<name>`); every worker reads it each MODEL_POLL_S and switches between
two batches. Local or admin clients only: nginx allows 127.0.0.1/::1 on these paths, and the API itself checks that
the whole forwarding chain is loopback, or an `Authorization: Bearer <ADMIN_TOKEN>` header.
"""

import hmac
import ipaddress
import logging
from collections.abc import Iterable

from flask import Blueprint, jsonify, request

from resnet_common import model_control
from resnet_common.repository_layout import version_number
import fleet
import job_client
import settings
import v2_errors

log = logging.getLogger(__name__)
bp = Blueprint("repository_control", __name__)
v2_errors.register(bp)  # every failure V2-shaped, as on the protocol's other routes


def _is_loopback(address: str) -> bool:
    if not address:  # a unix socket peer (gunicorn behind nginx in `make run`): only local processes reach it
        return True
    try:
        return ipaddress.ip_address(address.strip()).is_loopback
    except ValueError:
        return False


def is_admin() -> bool:
    """The bearer token matches ADMIN_TOKEN, or every hop (the peer and each X-Forwarded-For entry) is loopback."""
    token = settings.ADMIN_TOKEN
    given = request.headers.get("Authorization", "")
    if token and given.startswith("Bearer ") and hmac.compare_digest(given[7:].encode(), token.encode()):
        return True
    hops = [h.strip() for h in request.headers.get("X-Forwarded-For", "").split(",") if h.strip()]
    return _is_loopback(request.remote_addr or "") and all(_is_loopback(h) for h in hops)


def _error(status: int, message: str):
    """A refusal in the protocol's shape (v2_errors.error: counted, Retry-After on a 503)."""
    return v2_errors.error(message, status, "repository_control")


def _version_parameter() -> tuple[str | None, str | None]:
    """(version or None, error message or None) from an optional {"parameters": {"version": ...}} body."""
    if not request.get_data(cache=True):
        return None, None
    body = request.get_json(silent=True, force=True)  # curl -d sends a form content type
    if not isinstance(body, dict) or not isinstance(body.get("parameters", {}), dict):
        return None, 'the body must be a JSON object like {"parameters": {"version": "2"}}'
    params = body.get("parameters", {})
    unknown = sorted(set(params) - {"version"})
    if unknown:
        return None, f"unsupported parameters {unknown}: versions are added with `make model`, not uploaded"
    version = params.get("version")
    if version is None:
        return None, None
    number = version_number(str(version))
    if number is None or number < 1:
        return None, f"version must be a positive integer, got {version!r}"
    return str(number), None


def _repository_versions(workers: list[dict], served: Iterable[str] = ()) -> list[str]:
    """Every version a live worker sees in its repository or serves, numbers in numeric order."""
    found = set(served)
    for w in workers:
        found.update(v for v in (w.get("repository_versions") or "").split(",") if v)
    return sorted(found, key=fleet.version_order)


@bp.before_request
def admin_only():
    if not is_admin():
        log.warning(
            "repository control refused for %s (%s)", request.remote_addr, request.headers.get("X-Forwarded-For")
        )
        return _error(403, "model repository control is for local or admin clients only")
    return None


@bp.post("/v2/repository/index")
def index():
    r = job_client.client()  # Redis errors: the blueprint's handler (v2_errors), 503 + Retry-After
    workers = fleet.live_workers(r, with_repository=True)
    control = model_control.read(r, settings.MODEL_NAME)
    # A worker serving a fixed MODEL_DIR reports no repository: its version is still listed, READY.
    served = fleet.served_versions(workers)
    unloaded = {str(v) for v in control.unloaded}
    rows = []
    for version in _repository_versions(workers, served):
        state = "READY" if version in served else "UNAVAILABLE"
        reason = "" if state == "READY" else ("unloaded" if version in unloaded else "not served by the policy")
        rows.append({"name": settings.MODEL_NAME, "version": version, "state": state, "reason": reason})
    return jsonify(rows)


def _control_target(name: str):
    """(the version a load/unload body names or None, None), or (None, the 404/400 error response)."""
    if name != settings.MODEL_NAME:
        return None, _error(404, f"unknown model {name!r}: this repository serves {settings.MODEL_NAME!r}")
    version, error = _version_parameter()
    return version, (_error(400, error) if error else None)


@bp.post("/v2/repository/models/<name>/load")
def load(name: str):
    """No version: back to the default policy (newest, or MODEL_VERSION). A version: pin it, live."""
    version, refused = _control_target(name)
    if refused:
        return refused
    r = job_client.client()
    if version is not None:
        known = _repository_versions(fleet.live_workers(r, with_repository=True))
        if known and version not in known:
            return _error(404, f"version {version} is not in the repository (it has {', '.join(known)})")
        model_control.write(r, name, model_control.read(r, name).pinned(int(version)))
    else:
        model_control.write(r, name, model_control.Control())
    log.info("model %s: load %s", name, f"pins version {version}" if version else "serves the newest version")
    return jsonify(model=name, pinned=version), 200


@bp.post("/v2/repository/models/<name>/unload")
def unload(name: str):
    """Stop serving a version (default: the one served now); workers move to the newest version left. Refused when
    no version would be left to serve."""
    version, refused = _control_target(name)
    if refused:
        return refused
    r = job_client.client()
    workers = fleet.live_workers(r, with_repository=True)
    if version is None:
        served = fleet.served_versions(workers, unversioned="")
        if len(served) != 1 or version_number(served[0]) is None:
            return _error(409, f"name the version to unload: the workers serve {served or 'none'}")
        version = served[0]
    control = model_control.read(r, name).unloading(int(version))
    unloaded = [str(v) for v in control.sorted_unloaded()]
    known = _repository_versions(workers)
    if known and not set(known) - set(unloaded):
        return _error(409, f"unloading version {version} would leave no version to serve (make model adds one)")
    model_control.write(r, name, control)
    log.info("model %s: unload version %s", name, version)
    return jsonify(model=name, unloaded=unloaded), 200
