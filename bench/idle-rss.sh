#!/bin/bash
# Idle resident memory of a devnet's processes (issue 11): starts `hypersync devnet --no-web`
# from the checkout ROOT (default: this one) in its own process group, waits for the banner and
# then WAIT_S seconds (default 60) with nothing running against it, prints VmRSS / RssAnon /
# RssFile (KiB) of every process from /proc, and stops the group (SIGINT, then SIGKILL after 10 s).
# usage: bench/idle-rss.sh LABEL PORT_BASE [WAIT_S] [ENV=VALUE...]   (Linux; loopback ports
# PORT_BASE..PORT_BASE+2 must be free). The output goes to stdout and to $OUT_DIR/LABEL.txt.
set -u
label=$1; port=$2; wait_s=${3:-60}; shift $(( $# >= 3 ? 3 : 2 ))
root=${ROOT:-$(cd "$(dirname "$0")/.." && pwd)}
out_dir=${OUT_DIR:-$(mktemp -d /tmp/hypersync-idle-rss-XXXXXX)}
dir=$out_dir/dev-$label
rm -rf "$dir"
cd "$root" || exit 1
env "$@" HYPERSYNC_PORT_BASE="$port" setsid npx node bin/hypersync.js devnet --no-web --dir "$dir" > "$out_dir/$label.out" 2>&1 &
top=$!
# The banner prints the curl commands; a first start builds dist/node first (bounded: 300 s).
for _ in $(seq 1 300); do grep -q "Ctrl-C stops everything" "$out_dir/$label.out" 2>/dev/null && break; sleep 1; done
sleep "$wait_s"
pgid=$(ps -o pgid= -p "$top" | tr -d ' ')
{
  echo "label=$label root=$root load=$(cut -d' ' -f1-3 /proc/loadavg) utc=$(date -u +%FT%TZ)"
  for p in $(pgrep -g "$pgid"); do
    [ -r "/proc/$p/status" ] || continue
    echo "$p rss=$(awk '/^VmRSS/{print $2}' /proc/$p/status) anon=$(awk '/^RssAnon/{print $2}' /proc/$p/status) file=$(awk '/^RssFile/{print $2}' /proc/$p/status) $(tr '\0' ' ' < /proc/$p/cmdline | cut -c1-120)"
  done
} | tee "$out_dir/$label.txt"
kill -INT -- "-$pgid"
for _ in $(seq 1 20); do pgrep -g "$pgid" > /dev/null || break; sleep 0.5; done
kill -KILL -- "-$pgid" 2> /dev/null
true
