#!/usr/bin/env bash
# run_program.sh NAME COMMAND...: what supervisord starts for each program. supervisord made this process the
# leader of a new process group; a predecessor SIGKILLed with its group still alive (nginx workers holding the
# port, model workers finishing a batch) is ended first, then this group id is recorded and COMMAND replaces us.
set -euo pipefail
name="$1"; shift
record="${RUN_DIR:?}/pgid/$name"
mkdir -p "$(dirname "$record")"
if [ -s "$record" ]; then
  old="$(cat "$record")"
  if [ "$old" != "$$" ] && pgrep -g "$old" >/dev/null; then
    echo "[run_program] ending what is left of the previous $name (process group $old)" >&2
    kill -TERM -- "-$old" 2>/dev/null || true
    for _ in $(seq 50); do pgrep -g "$old" >/dev/null || break; sleep 0.1; done
    kill -KILL -- "-$old" 2>/dev/null || true
  fi
fi
echo "$$" > "$record"
exec "$@"
