#!/bin/sh
# Render every $NGINX_TEMPLATES/X.template (default /etc/nginx/templates) into $NGINX_CONF_D/X (default
# /etc/nginx/conf.d) with envsubst, as the official nginx image does, substituting only variables the environment
# defines (nginx's own $host, $uri ... stay). A ${NAME} the environment does not define stops the start with its
# name: nginx would otherwise fail on a literal "${NAME}" far from the cause, or worse, accept it.
set -eu
templates="${NGINX_TEMPLATES:-/etc/nginx/templates}"
out_dir="${NGINX_CONF_D:-/etc/nginx/conf.d}"
defined="$(printf '${%s} ' $(env | cut -d= -f1 | grep -E '^[A-Za-z_][A-Za-z0-9_]*$'))"
for t in "$templates"/*.template; do
  [ -f "$t" ] || continue
  out="$out_dir/$(basename "$t" .template)"
  envsubst "$defined" <"$t" >"$out"
  missing="$(grep -oE '\$\{[A-Z][A-Z0-9_]*\}' "$out" | sort -u | tr '\n' ' ' || true)"
  if [ -n "$missing" ]; then
    echo "render-templates: $(basename "$t") needs ${missing}which the environment does not set" >&2
    exit 78
  fi
done
exec "$@"
