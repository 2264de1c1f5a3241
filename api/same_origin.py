"""Refuse cross-site form posts: a POST to the page's forms whose Origin (or, without it, Referer) names another
host gets 403. Requests with neither header (API clients, curl, the course's tests) are accepted; the session
cookie is SameSite=Lax as a second line, and Secure whenever the request came over https (gunicorn sets the
scheme from X-Forwarded-Proto only for peers in FORWARDED_ALLOW_IPS and its unix socket, i.e. nginx, which sets
that header itself). nginx forwards the client's Host, so the comparison uses the public name.
"""

from __future__ import annotations

import logging
from urllib.parse import urlsplit

from flask import Flask, Response, request
from flask.sessions import SecureCookieSessionInterface

import metrics

log = logging.getLogger(__name__)
PROTECTED_PATHS = frozenset({"/", "/feedback"})


def cross_site_source(origin: str | None, referer: str | None, host: str) -> str | None:
    """The foreign origin a request came from, or None when it is same-site or says nothing."""
    source = origin if origin else referer
    if not source:
        return None
    if source == "null":  # sandboxed frames and privacy-sensitive redirects: no site we can trust
        return source
    parts = urlsplit(source)
    return None if parts.netloc.lower() == host.lower() else source


def _check() -> Response | None:
    if request.method != "POST" or request.path not in PROTECTED_PATHS:
        return None
    foreign = cross_site_source(request.headers.get("Origin"), request.headers.get("Referer"), request.host)
    if foreign is None:
        return None
    metrics.count_error("cross_site_post")
    log.warning("refused cross-site POST %s from %.200s (host %s)", request.path, foreign, request.host)
    return Response("cross-site form posts are not accepted\n", status=403, mimetype="text/plain")


class ForwardedSecureSessionInterface(SecureCookieSessionInterface):
    """Flask's signed-cookie sessions, with the Secure attribute also set for any request that arrived over https."""

    def get_cookie_secure(self, app: Flask) -> bool:
        return bool(app.config["SESSION_COOKIE_SECURE"]) or request.is_secure


def init_app(app: Flask) -> None:
    app.session_interface = ForwardedSecureSessionInterface()
    if app.config.get("SESSION_COOKIE_SAMESITE") is None:  # Flask's default is None: no SameSite attribute
        app.config["SESSION_COOKIE_SAMESITE"] = "Lax"
    app.before_request(_check)
