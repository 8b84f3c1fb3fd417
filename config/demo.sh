#!/bin/sh
# make run: start parkpulsed in the foreground on a demo configuration, with
# the sample figures of tests/fixtures already in its spool.
#   usage: sh config/demo.sh BUILD_DIR DEMO_DIR
# The clock is fixed at 2021-09-15 (--now) so that the 2021 sample data is
# the latest month due; set PP_DEMO_NOW= (empty) to run on the real clock.
set -eu
build=$(cd "$1" && pwd)
mkdir -p "$2"
demo=$(cd "$2" && pwd)
root=$(cd "$(dirname "$0")/.." && pwd)
port=${PP_DEMO_PORT:-8080}
bus=${PP_DEMO_BUS:-5556}
hook=${PP_DEMO_HOOK:-8099}
now=${PP_DEMO_NOW-2021-09-15T10:00:00+08:00}

mkdir -p "$demo/spool" "$demo/state"
[ -f "$demo/token" ] || { od -An -tx1 -N16 /dev/urandom | tr -d ' \n' > "$demo/token"; echo >> "$demo/token"; }
cat > "$demo/parkpulse.conf" <<CONF
# Demo configuration written by make run (config/demo.sh); edit config/parkpulse.conf instead.
timezone   = "Asia/Shanghai"
state_dir  = "$demo/state"
plugin_dir = "$build/collectors"
dashboard_dir = "$root/dashboards"
include("$root/config/indicators.conf")
http { listen = "127.0.0.1:$port"  token_file = "$demo/token" }
bus  { publish = "tcp://127.0.0.1:$bus" }
collector "spool" { plugin = "spool" path = "$demo/spool" }
# parkpulse-notify: one route to the demo receiver (config/demo-receiver.py)
notify {
  state_dir = "$demo/notify"
  route "demo" { url = "http://127.0.0.1:$hook/alerts"  format = "json" }
}
CONF
cat "$root/tests/fixtures/parks.conf" >> "$demo/parkpulse.conf"

# Sample data of the three seed parks (tests/fixtures/README.md says which
# figures are illustrative): targets first, then the figures (each file
# copied as .tmp, then renamed).
for f in targets-2021.csv demo-targets-2021.csv xiangtan-etdz-2021.csv \
         xiangtan-hitech-2021.csv liuyang-etdz-2021.csv; do
    if [ ! -e "$demo/spool/done/$f" ]; then
        cp -p "$root/tests/fixtures/$f" "$demo/spool/$f.tmp" && mv "$demo/spool/$f.tmp" "$demo/spool/$f"
    fi
done

echo "parkpulse demo"
echo "  dashboard:  http://127.0.0.1:$port/"
echo "  status:     curl http://127.0.0.1:$port/api/v1/status"
echo "  alert bus:  tcp://127.0.0.1:$bus (topics alert.<park>.<indicator>)"
echo "  spool:      $demo/spool (drop *.csv here)"
echo "  token:      $demo/token (for POST /api/v1/observations)"
echo "  client:     export PARKPULSE_CONF=$demo/parkpulse.conf   # then: $build/parkpulse status"
echo "  RRD files:  $demo/state/rrd/<park>/<indicator>.rrd"
[ -z "$now" ] || echo "  clock:      fixed at $now (PP_DEMO_NOW= make run for the real clock)"
echo "  notify:     parkpulse-notify delivers each alert to a local receiver on port $hook,"
echo "              which prints it here (\"demo receiver: ...\"); silence with"
echo "              $build/parkpulse silence add xiangtan-etdz --until 2021-10-31 --reason 口径调整"
echo "  stop:       Ctrl-C"
# the receiver and the notifier run beside the daemon; Ctrl-C stops all three.
# The demo route starts at seq 0 (a new route would start at the daemon's
# current seq), so the sample data's alerts are delivered too.
mkdir -p "$demo/notify"
[ -e "$demo/notify/route-demo.state" ] || printf '#parkpulse-notify-route 1\nseq 0\n' > "$demo/notify/route-demo.state"
python3 "$root/config/demo-receiver.py" "$hook" &
rpid=$!
"$build/parkpulse-notify" -c "$demo/parkpulse.conf" &
npid=$!
trap 'kill $npid $rpid 2>/dev/null; wait' EXIT INT TERM
if [ -n "$now" ]; then
    "$build/parkpulsed" -c "$demo/parkpulse.conf" -f --now "$now" || true
else
    "$build/parkpulsed" -c "$demo/parkpulse.conf" -f || true
fi
