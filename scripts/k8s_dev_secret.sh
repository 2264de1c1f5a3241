#!/usr/bin/env bash
# The dev overlay's secrets: writes deploy/k8s/overlays/dev/secrets.env (git-ignored; the overlay's
# secretGenerator reads it) with a random SECRET_KEY and REDIS_PASSWORD. An existing file is kept, so the
# cluster's Redis password does not change under running pods; delete it to rotate. Optional argument: another
# path (tests render a copy of deploy/k8s).
#   scripts/k8s_dev_secret.sh && kubectl apply -k deploy/k8s/overlays/dev
set -euo pipefail
out="${1:-$(cd "$(dirname "$0")/.." && pwd)/deploy/k8s/overlays/dev/secrets.env}"
if [ -s "$out" ]; then
  echo "k8s_dev_secret: $out exists; kept" >&2
  exit 0
fi
umask 077
hex() { od -An -N"$1" -tx1 /dev/urandom | tr -d ' \n'; }
printf 'SECRET_KEY=%s\nREDIS_PASSWORD=%s\n' "$(hex 32)" "$(hex 24)" >"$out.tmp"
mv "$out.tmp" "$out"
echo "k8s_dev_secret: wrote $out" >&2
