#!/usr/bin/env bash
# run_program.sh NAME COMMAND...: what supervisord starts for each program. supervisord made this process the
# leader of a new process group; a predecessor SIGKILLed with its group still alive (nginx workers holding the
# port, model workers finishing a batch) is ended first, then this group is recorded and COMMAND replaces us.
# Records: pgid/NAME (the group id), pgid/NAME.start (its leader's start time, /proc/PID/stat field 22) and
# pgid/NAME.exe (COMMAND's executable). A process of the recorded group is ended only if it is the leader with that
# start time; or carries this program's marker in its environment (RUN_PROGRAM_MARK, set below, inherited by its
# children); or runs COMMAND's executable and started after the recorded leader (nginx rewrites its environment
# area for its process titles). Never a process that merely reuses a recycled id. RUN_PROGRAM_STALE_SOCKETS: unix
# sockets to remove before starting (a SIGKILLed nginx leaves its listening socket file behind).
# RUN_PROGRAM_LEFTOVER_SIGNAL: how leftovers are ended (default TERM; nginx's workers get QUIT, which lets them
# finish the requests they hold), then KILL after 5 s.
set -euo pipefail
name="$1"; shift
record="${RUN_DIR:?}/pgid/$name"
mark="$RUN_DIR/$name"
mkdir -p "$(dirname "$record")"

start_time() {  # field 22 of /proc/PID/stat (after the command, which may hold spaces and parentheses)
  local stat
  stat="$(cat "/proc/$1/stat" 2>/dev/null)" || return 1
  stat="${stat##*) }"
  set -- $stat
  echo "${20}"
}

ours() {  # members of process group $1 that are ours (see above); $2 the leader's start time, $3 the executable
  local pgid="$1" started="$2" exe="$3" pid since
  for pid in $(pgrep -g "$pgid" 2>/dev/null); do
    since="$(start_time "$pid" || true)"
    [ -n "$since" ] || continue
    if [ "$pid" = "$pgid" ]; then
      [ -n "$started" ] && [ "$since" = "$started" ] && echo "$pid"
    elif tr '\0' '\n' <"/proc/$pid/environ" 2>/dev/null | grep -qxF "RUN_PROGRAM_MARK=$mark"; then
      echo "$pid"
    elif [ -n "$exe" ] && [ -n "$started" ] && [ "$since" -ge "$started" ] \
      && [ "$(readlink "/proc/$pid/exe" 2>/dev/null || true)" = "$exe" ]; then
      echo "$pid"
    fi
  done
}

if [ -s "$record" ]; then
  old="$(cat "$record")" started="$(cat "$record.start" 2>/dev/null || true)" exe="$(cat "$record.exe" 2>/dev/null || true)"
  if [ "$old" != "$$" ] && [ -n "$(ours "$old" "$started" "$exe")" ]; then
    echo "[run_program] ending what is left of the previous $name (process group $old)" >&2
    kill -"${RUN_PROGRAM_LEFTOVER_SIGNAL:-TERM}" $(ours "$old" "$started" "$exe") 2>/dev/null || true
    for _ in $(seq 50); do [ -n "$(ours "$old" "$started" "$exe")" ] || break; sleep 0.1; done
    leftover="$(ours "$old" "$started" "$exe")"
    [ -z "$leftover" ] || kill -KILL $leftover 2>/dev/null || true
  fi
fi
# Unix sockets a killed predecessor left behind (nginx never unlinks one it did not close; its bind would fail).
for stale in ${RUN_PROGRAM_STALE_SOCKETS:-}; do
  [ -S "$stale" ] && rm -f "$stale"
done
unset RUN_PROGRAM_STALE_SOCKETS RUN_PROGRAM_LEFTOVER_SIGNAL
# Written beside the record, then renamed: a reader (the next start, a test) never sees a half-written file.
start_time $$ >"$record.start.tmp" && mv "$record.start.tmp" "$record.start"
{ readlink -f "$(command -v "$1" || echo "$1")" 2>/dev/null || :; } >"$record.exe.tmp" && mv "$record.exe.tmp" "$record.exe"
echo "$$" >"$record.tmp" && mv "$record.tmp" "$record"
export RUN_PROGRAM_MARK="$mark"
exec "$@"
