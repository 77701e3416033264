"""Bar charts of a side-by-side run (loadtest/side-by-side.sh): CPU per delivered message and
p99 latency, nchan against livescore, per row. Standard library only: writes SVG.

    python3 loadtest/side_plot.py target/bench/side/runs.jsonl docs/bench
"""
import json
import sys

runs = {r["name"]: r for r in map(json.loads, open(sys.argv[1]))}
out = sys.argv[2]
rows = []
for name, nchan in runs.items():
    if name.startswith("nchan-") and not name.endswith("-idle"):
        _, transport, n = name.split("-")
        uniform = runs.get(f"uniform-{transport}-{n}")
        if uniform:
            rows.append((f"{int(n):,} {transport.upper()}", nchan, uniform))


def chart(path, title, unit, value):
    width, height, left, bottom, top = 760, 340, 70, 50, 40
    top_value = max(max(value(nc), value(ls)) for _, nc, ls in rows) * 1.15
    group = (width - left - 20) / len(rows)
    bar = group / 3
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" font-size="12">',
        f'<text x="{width / 2}" y="20" text-anchor="middle" font-size="14">{title}</text>',
        f'<line x1="{left}" y1="{height - bottom}" x2="{width - 10}" y2="{height - bottom}" stroke="#333"/>',
    ]
    for tick in range(5):
        v = top_value * tick / 4
        y = height - bottom - (height - bottom - top) * tick / 4
        parts.append(f'<text x="{left - 6}" y="{y + 4}" text-anchor="end">{v:.0f}</text>')
        parts.append(f'<line x1="{left}" y1="{y}" x2="{width - 10}" y2="{y}" stroke="#ddd"/>')
    parts.append(f'<text x="14" y="{(height - bottom + top) / 2}" transform="rotate(-90 14 {(height - bottom + top) / 2})" text-anchor="middle">{unit}</text>')
    for i, (label, nc, ls) in enumerate(rows):
        x = left + i * group + bar / 2
        for j, (run, colour) in enumerate(((nc, "#999"), (ls, "#2a7"))):
            v = value(run)
            h = (height - bottom - top) * v / top_value
            parts.append(f'<rect x="{x + j * bar}" y="{height - bottom - h}" width="{bar - 2}" height="{h}" fill="{colour}"/>')
            parts.append(f'<text x="{x + j * bar + bar / 2 - 1}" y="{height - bottom - h - 4}" text-anchor="middle" font-size="10">{v:.0f}</text>')
        parts.append(f'<text x="{x + bar}" y="{height - bottom + 16}" text-anchor="middle">{label}</text>')
    parts.append(f'<rect x="{width - 190}" y="30" width="10" height="10" fill="#999"/><text x="{width - 175}" y="39">nchan</text>')
    parts.append(f'<rect x="{width - 120}" y="30" width="10" height="10" fill="#2a7"/><text x="{width - 105}" y="39">livescore</text>')
    parts.append("</svg>")
    with open(path, "w") as f:
        f.write("\n".join(parts) + "\n")


chart(f"{out}/side-cpu.svg", "Server CPU per delivered message (same feed, same client)", "µs",
      lambda r: r["server_cpu_us_per_message"] or 0)
chart(f"{out}/side-p99.svg", "p99 latency, publication to viewer (same feed, same client)", "ms",
      lambda r: r["latency_p99_ms"])
chart(f"{out}/side-memory.svg", "Server memory per busy connection", "KB",
      lambda r: r["server_busy_kb_per_connection"] or 0)
