# local/nginx:1: Debian's nginx and its Lua module (nginx counts its refusals with it) arranged like the official
# image: conf.d/ included, logs to the container's stdout/stderr, and /etc/nginx/templates/*.template rendered with
# envsubst into conf.d/ at start.
rm -f /etc/nginx/sites-enabled/default
mkdir -p /etc/nginx/conf.d /etc/nginx/templates
ln -sf /dev/stdout /var/log/nginx/access.log && ln -sf /dev/stderr /var/log/nginx/error.log
cat >/docker-entrypoint.sh <<'SH'
#!/bin/sh
# As the official nginx image: each /etc/nginx/templates/X.template becomes /etc/nginx/conf.d/X, with only
# the environment's own variables substituted (nginx's $host, $uri ... stay).
set -e
defined="$(printf '${%s} ' $(env | cut -d= -f1))"
for t in /etc/nginx/templates/*.template; do
  [ -f "$t" ] || continue
  out="/etc/nginx/conf.d/$(basename "$t" .template)"
  envsubst "$defined" <"$t" >"$out"
done
exec "$@"
SH
chmod +x /docker-entrypoint.sh
