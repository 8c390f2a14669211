#!/usr/bin/env bash
# Renders ../dashboard.png from a real run: starts examples/serve_under_load.rs (one
# store per SQLite backend, under a changing load), scrapes it every second with a real
# Prometheus that also evaluates ../alerts.yml, then draws the dashboard's key panels
# with render.py from what Prometheus stored. Needs cargo, prometheus (Debian package
# `prometheus`) and python3 with matplotlib (pip install -r requirements.txt).
#   ops/prometheus/demo/run.sh [SECONDS]      default 240
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../../.." && pwd)
secs=${1:-240}
work=$(mktemp -d)
target=${CARGO_TARGET_DIR:-$root/target}

cargo build --manifest-path "$root/Cargo.toml" --example serve_under_load --features deadpool

cat > "$work/prometheus.yml" <<YAML
global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files:
  - $here/../alerts.yml
scrape_configs:
  - job_name: pooledstore
    static_configs:
      - targets: ["127.0.0.1:9461", "127.0.0.1:9462"]
YAML

prometheus --config.file="$work/prometheus.yml" --storage.tsdb.path="$work/data" \
  --web.listen-address=127.0.0.1:9490 >"$work/prometheus.log" 2>&1 &
prometheus_pid=$!
trap 'kill "$prometheus_pid" 2>/dev/null || true; rm -rf "$work"' EXIT
sleep 2

start=$(date +%s)
"$target/debug/examples/serve_under_load" "$secs" 9461
end=$(date +%s)
sleep 2

python3 "$here/render.py" --prometheus http://127.0.0.1:9490 --start "$start" --end "$end"
