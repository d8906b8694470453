#!/usr/bin/env python3
"""Plots benches/groups.csv (written by benches/groups.sh) as an SVG, by hand (no plotting
library needed): tests per second (left axis) and per-test overhead, median and 95th percentile
(right axis, log scale), against --group (log scale); medians over the rounds.

    plot_groups.py groups.csv groups.svg [MASK]
"""
import csv
import math
import statistics
import sys

src, dst = sys.argv[1], sys.argv[2]
mask = sys.argv[3] if len(sys.argv) > 3 else "23"
rows = [r for r in csv.DictReader(open(src)) if r["mask"] == mask]
groups = sorted({int(r["group"]) for r in rows})
med = lambda g, k: statistics.median(float(r[k]) for r in rows if int(r["group"]) == g)
tps = [med(g, "tests_per_s") for g in groups]
ovm = [med(g, "ov_med_ms") for g in groups]
ovp = [med(g, "ov_p95_ms") for g in groups]

W, H, L, R, T, B = 760, 440, 70, 80, 50, 60
pw, ph = W - L - R, H - T - B
gx = lambda g: L + (math.log10(g) - math.log10(groups[0])) / max(1e-9, math.log10(groups[-1]) - math.log10(groups[0])) * pw
tmax = max(tps) * 1.15 or 1
ty = lambda v: T + ph - v / tmax * ph
olo = 10 ** math.floor(math.log10(max(1, min(ovm + ovp))))
ohi = 10 ** math.ceil(math.log10(max(ovm + ovp) * 1.05))
oy = lambda v: T + ph - (math.log10(max(v, olo)) - math.log10(olo)) / (math.log10(ohi) - math.log10(olo)) * ph

s = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" font-family="sans-serif" font-size="12">',
     f'<rect width="{W}" height="{H}" fill="white"/>',
     f'<text x="{W/2}" y="22" text-anchor="middle" font-size="15">sipplauncher real runs vs --group (one-call tests, Kamailio DUT, capture on; medians)</text>',
     f'<rect x="{L}" y="{T}" width="{pw}" height="{ph}" fill="none" stroke="#888"/>']
for g in groups:
    x = gx(g)
    s.append(f'<line x1="{x:.1f}" y1="{T}" x2="{x:.1f}" y2="{T+ph}" stroke="#eee"/>')
    s.append(f'<text x="{x:.1f}" y="{T+ph+18}" text-anchor="middle">{g}</text>')
s.append(f'<text x="{L+pw/2}" y="{H-15}" text-anchor="middle">--group (tests run at once; log scale)</text>')
for i in range(6):
    v = tmax * i / 5
    y = ty(v)
    s.append(f'<line x1="{L-4}" y1="{y:.1f}" x2="{L}" y2="{y:.1f}" stroke="#1f77b4"/>')
    s.append(f'<text x="{L-7}" y="{y+4:.1f}" text-anchor="end" fill="#1f77b4">{v:.0f}</text>')
s.append(f'<text transform="translate(18,{T+ph/2}) rotate(-90)" text-anchor="middle" fill="#1f77b4">tests per second</text>')
d = 0
while olo * 10 ** d <= ohi:
    v = olo * 10 ** d
    y = oy(v)
    s.append(f'<line x1="{L}" y1="{y:.1f}" x2="{L+pw}" y2="{y:.1f}" stroke="#f4e4d4"/>')
    s.append(f'<text x="{L+pw+7}" y="{y+4:.1f}" fill="#d62728">{v:g}</text>')
    d += 1
s.append(f'<text transform="translate({W-18},{T+ph/2}) rotate(90)" text-anchor="middle" fill="#d62728">per-test overhead, ms (wall - SIPp; log scale)</text>')


def line(xs, ys, colour, dash=""):
    pts = " ".join(f"{x:.1f},{y:.1f}" for x, y in zip(xs, ys))
    out = [f'<polyline points="{pts}" fill="none" stroke="{colour}" stroke-width="2" {dash}/>']
    out += [f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3.5" fill="{colour}"/>' for x, y in zip(xs, ys)]
    return out


xs = [gx(g) for g in groups]
s += line(xs, [ty(v) for v in tps], "#1f77b4")
s += [f'<text x="{x:.1f}" y="{ty(v)-8:.1f}" text-anchor="middle" fill="#1f77b4">{v:.1f}</text>' for x, v in zip(xs, tps)]
s += line(xs, [oy(v) for v in ovm], "#d62728")
s += line(xs, [oy(v) for v in ovp], "#d62728", 'stroke-dasharray="6,4"')
lx, ly = L + 12, T + 16
for i, (txt, col, dash) in enumerate([("tests/s", "#1f77b4", ""), ("overhead median", "#d62728", ""),
                                      ("overhead p95", "#d62728", 'stroke-dasharray="6,4"')]):
    y = ly + i * 16
    s.append(f'<line x1="{lx}" y1="{y-4}" x2="{lx+24}" y2="{y-4}" stroke="{col}" stroke-width="2" {dash}/>')
    s.append(f'<text x="{lx+30}" y="{y}">{txt}</text>')
s.append("</svg>")
open(dst, "w").write("\n".join(s) + "\n")
