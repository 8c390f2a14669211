#!/usr/bin/env python3
"""Draws the key panels of ../grafana-dashboard.json into one PNG, from a Prometheus
that scraped a real run.

Each panel is drawn from the dashboard's own PromQL targets, with every dashboard
variable set to match all values and $__rate_interval set to --rate-interval,
evaluated by Prometheus's query_range API over the run. A last panel shows the alerts
of ../alerts.yml that Prometheus had pending or firing (its ALERTS series). Needs
matplotlib (see requirements.txt); run.sh drives it.
"""

import argparse
import json
import math
import re
import urllib.parse
import urllib.request
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import EngFormatter, PercentFormatter  # noqa: E402

HERE = Path(__file__).resolve().parent
DASHBOARD = HERE.parent / "grafana-dashboard.json"

# The panels drawn, by dashboard title, in reading order.
KEY_PANELS = [
    "Connections: used, idle and max",
    "Waiting callers",
    "Acquire wait time",
    "Acquire wait p50 and p99",
    "Acquire timeouts",
    "Operations by op and outcome",
    "Operation latency p99 by op and outcome",
    "Failing operations by op",
    "Connections closed by reason",
    "SQLite busy",
    "Leaked connections",
]
PHASES = ["steady", "held transactions", "locked database", "steady"]


def expand(expr, rate_interval):
    """The panel's query with the dashboard variables filled in."""
    expr = re.sub(r'=~"\$\w+"', '=~".*"', expr)
    return expr.replace("$__rate_interval", rate_interval)


def query_range(base, expr, start, end, step):
    params = urllib.parse.urlencode(
        {"query": expr, "start": start, "end": end, "step": step}
    )
    with urllib.request.urlopen(f"{base}/api/v1/query_range?{params}") as reply:
        body = json.load(reply)
    if body.get("status") != "success":
        raise SystemExit(f"query failed: {expr}: {body}")
    return [
        (s["metric"], [(float(t), float(v)) for t, v in s["values"]])
        for s in body["data"]["result"]
    ]


def legend(fmt, labels):
    text = re.sub(r"\{\{\s*(\w+)\s*\}\}", lambda m: labels.get(m.group(1), ""), fmt)
    return " ".join(text.split())


def shade_phases(ax, start, end):
    quarter = (end - start) / 4
    for i, name in enumerate(PHASES):
        if i % 2 == 1:
            ax.axvspan(i * quarter, (i + 1) * quarter, color="0.93", zorder=0)
        ax.text((i + 0.5) * quarter, 1.0, name, transform=ax.get_xaxis_transform(),
                ha="center", va="bottom", fontsize=6, color="0.45")


def format_axis(ax, unit):
    if unit == "s":
        ax.yaxis.set_major_formatter(EngFormatter(unit="s"))
    elif unit == "percentunit":
        ax.yaxis.set_major_formatter(PercentFormatter(1.0))
    elif unit == "ops":
        ax.yaxis.set_major_formatter(EngFormatter(unit="/s"))


def draw_timeseries(ax, panel, args, most=10):
    """Draws the panel's series; the `most` with the highest peaks when there are more."""
    lines = []
    for target in panel["targets"]:
        expr = expand(target["expr"], args.rate_interval)
        for labels, points in query_range(args.prometheus, expr, args.start, args.end, args.step):
            finite = [(t - args.start, v) for t, v in points if math.isfinite(v)]
            if finite:
                name = legend(target.get("legendFormat", ""), labels)
                lines.append((max(v for _, v in finite), name, finite))
    if len(lines) > most:
        lines = sorted((l for l in lines if l[0] > 0), key=lambda l: -l[0])[:most]
    for _, name, finite in lines:
        ax.plot([t for t, _ in finite], [v for _, v in finite], linewidth=1, label=name)
    format_axis(ax, panel["fieldConfig"]["defaults"].get("unit"))
    ax.set_ylim(bottom=0)
    if lines:
        ax.legend(fontsize=5, loc="upper left", ncol=2 if len(lines) > 5 else 1, framealpha=0.8)
    else:
        ax.text(0.5, 0.5, "no data", transform=ax.transAxes, ha="center", color="0.5")


def draw_heatmap(ax, panel, args):
    expr = expand(panel["targets"][0]["expr"], args.rate_interval)
    series = query_range(args.prometheus, expr, args.start, args.end, args.step)
    series.sort(key=lambda s: float(s[0]["le"]))
    # Buckets above the largest observation are left out, as Grafana's y range does.
    used = [i for i, (_, pts) in enumerate(series) if any(v > 0 for _, v in pts)]
    if not used:
        ax.text(0.5, 0.5, "no data", transform=ax.transAxes, ha="center", color="0.5")
        return
    series = series[: used[-1] + 1]
    times = sorted({t for _, pts in series for t, _ in pts})
    # Buckets are cumulative; a cell shows the acquisitions in its bucket only, as
    # Grafana's heatmap does with the "heatmap" format.
    cumulative = [[dict(pts).get(t, 0.0) for t in times] for _, pts in series]
    grid = [
        [max(c - p, 0.0) for c, p in zip(row, below)]
        for row, below in zip(cumulative, [[0.0] * len(times)] + cumulative[:-1])
    ]
    xs = [t - args.start for t in times]
    mesh = ax.pcolormesh(xs, range(len(series)), grid, shading="nearest", cmap="Oranges",
                         norm=matplotlib.colors.PowerNorm(0.4))
    eng = EngFormatter(unit="s")
    ax.set_yticks(range(len(series)))
    ax.set_yticklabels([f"≤ {eng(float(s[0]['le']))}" if s[0]["le"] != "+Inf" else "+Inf"
                        for s in series], fontsize=5)
    plt.colorbar(mesh, ax=ax, pad=0.01).ax.tick_params(labelsize=5)


def draw_alerts(ax, args):
    series = query_range(args.prometheus, "ALERTS", args.start, args.end, args.step)
    names = sorted({s[0]["alertname"] for s in series})
    colors = {"pending": "#f2a33a", "firing": "#d62728"}
    for row, name in enumerate(names):
        for labels, pts in series:
            if labels["alertname"] != name:
                continue
            xs = [t - args.start for t, v in pts if v > 0]
            ax.scatter(xs, [row] * len(xs), s=4, marker="s", color=colors[labels["alertstate"]])
    ax.set_yticks(range(len(names)))
    ax.set_yticklabels(names, fontsize=6)
    ax.set_ylim(-0.5, max(len(names), 1) - 0.5)
    for state, color in colors.items():
        ax.scatter([], [], s=8, marker="s", color=color, label=state)
    ax.legend(fontsize=6, loc="lower right")


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--prometheus", default="http://127.0.0.1:9490")
    parser.add_argument("--start", type=float, required=True, help="unix seconds")
    parser.add_argument("--end", type=float, required=True, help="unix seconds")
    parser.add_argument("--step", default="2s")
    parser.add_argument("--rate-interval", default="10s")
    parser.add_argument("--out", default=str(HERE.parent / "dashboard.png"))
    args = parser.parse_args()

    panels = {p["title"]: p for p in json.loads(DASHBOARD.read_text())["panels"]}
    cols = 3
    rows = math.ceil((len(KEY_PANELS) + 1) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(cols * 6, rows * 3.4))
    for ax, title in zip(axes.flat, KEY_PANELS + ["Alerts pending and firing (alerts.yml)"]):
        ax.set_title(title, fontsize=9, loc="left", pad=10)
        ax.tick_params(labelsize=6)
        ax.grid(True, linewidth=0.3, color="0.85")
        if title in panels:
            panel = panels[title]
            if panel["type"] == "heatmap":
                draw_heatmap(ax, panel, args)
            else:
                draw_timeseries(ax, panel, args)
        else:
            draw_alerts(ax, args)
        shade_phases(ax, args.start, args.end)
        ax.set_xlim(0, args.end - args.start)
        ax.set_xlabel("seconds into the run", fontsize=6)
    for ax in list(axes.flat)[len(KEY_PANELS) + 1:]:
        ax.axis("off")
    fig.suptitle("pooledstore dashboard, key panels: a real run of examples/serve_under_load.rs "
                 "scraped by Prometheus every 1 s (queries from grafana-dashboard.json)",
                 fontsize=10)
    fig.tight_layout()
    fig.savefig(args.out, dpi=72)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
