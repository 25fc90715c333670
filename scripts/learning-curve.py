#!/usr/bin/env python3
"""Both learning curves in one figure (assets/benchmarks/learning-curve.svg): recall on
every test clip once at <= 2 and <= 6 false alarms an hour of held-out talk, against
the share of training speakers, for the TC-ResNet (log-mel) and the embedding heads.
The points are `scripts/det-points` figures of the runs listed in BENCHMARKS.md ("How
much would more speakers buy?"); Python's standard library only.

  scripts/learning-curve.py [OUT.svg]
"""
import sys

# share of speakers -> [(recall at <= 2/h, at <= 6/h) per seed], from BENCHMARKS.md
CURVES = {
    "TC-ResNet on log-mel": {
        25: [(68.2, 80.2), (71.6, 78.0)],
        50: [(80.7, 88.4), (83.4, 88.0)],
        75: [(83.8, 87.9), (82.5, 89.0)],
        100: [(86.9, 91.0), (84.3, 89.8)],
    },
    "three heads on the speech embedding": {
        25: [(79.8, 85.7), (86.4, 88.7)],
        50: [(75.6, 85.4), (88.5, 91.3)],
        100: [(90.2, 92.6), (86.7, 92.6)],
    },
}
COLOURS = ["#1f77b4", "#d62728"]
W, H, L, R, T, B = 640, 420, 60, 20, 40, 50
Y0, Y1 = 65.0, 95.0


def x_of(share):
    return L + (share - 25) / 75 * (W - L - R)


def y_of(recall):
    return T + (Y1 - recall) / (Y1 - Y0) * (H - T - B)


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else "assets/benchmarks/learning-curve.svg"
    svg = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" font-family="sans-serif" font-size="12">',
           f'<rect width="{W}" height="{H}" fill="white"/>',
           f'<text x="{W / 2}" y="20" text-anchor="middle" font-size="14">Recall, every test clip once, at &lt;= 6 (solid) / &lt;= 2 (dashed) false alarms/h</text>']
    for r in range(int(Y0), int(Y1) + 1, 5):
        y = y_of(r)
        svg.append(f'<line x1="{L}" y1="{y}" x2="{W - R}" y2="{y}" stroke="#ddd"/>')
        svg.append(f'<text x="{L - 8}" y="{y + 4}" text-anchor="end">{r}%</text>')
    for share in (25, 50, 75, 100):
        svg.append(f'<text x="{x_of(share)}" y="{H - B + 18}" text-anchor="middle">{share}%</text>')
    svg.append(f'<text x="{(W + L) / 2}" y="{H - 10}" text-anchor="middle">share of the training speakers of the 8 commands (100% = 1,426)</text>')
    for i, (name, curve) in enumerate(CURVES.items()):
        c = COLOURS[i]
        for k, dash in ((1, ""), (0, ' stroke-dasharray="5,4"')):
            pts = [(x_of(s), y_of(sum(p[k] for p in runs) / len(runs))) for s, runs in sorted(curve.items())]
            path = " ".join(f"{x:.1f},{y:.1f}" for x, y in pts)
            svg.append(f'<polyline points="{path}" fill="none" stroke="{c}" stroke-width="2"{dash}/>')
            for s, runs in curve.items():
                for p in runs:
                    svg.append(f'<circle cx="{x_of(s):.1f}" cy="{y_of(p[k]):.1f}" r="3" fill="{c}"/>')
        svg.append(f'<text x="{L + 10}" y="{T + 16 + 16 * i}" fill="{c}">{name} (dots: seeds)</text>')
    svg.append("</svg>")
    with open(out, "w") as f:
        f.write("\n".join(svg) + "\n")
    print(f"learning-curve: {out}")


if __name__ == "__main__":
    main()
