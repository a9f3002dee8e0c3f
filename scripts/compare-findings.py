#!/usr/bin/env python3
"""Compares the findings of two reports (e.g. two sets of training seeds) check by check.

Checks are matched by name. For every finding: both verdicts; for the matched checks: how many changed
verdict, how many flipped outright (reproduced in one report, not reproduced in the other), and how many
have 95% intervals that do not overlap. Writes Markdown to standard output.

Usage: compare-findings.py A/findings.json B/findings.json [--labels "seeds 0 1 2" "seeds 3 4 5"]
Exit status 0 when every finding has the same verdict and no check flips, 1 otherwise.
"""
import argparse
import json
import sys


def load(path):
    with open(path) as f:
        return {f_["id"]: f_ for f_ in json.load(f)}


def fmt(c):
    if c is None:
        return "-"
    lo, hi = c.get("ci_low"), c.get("ci_high")
    point = f"{c['measured']:+.3f}"
    return point + (f" [{lo:+.3f}, {hi:+.3f}]" if lo is not None and hi is not None else "")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("a")
    ap.add_argument("b")
    ap.add_argument("--labels", nargs=2, default=["A", "B"])
    args = ap.parse_args()
    A, B = load(args.a), load(args.b)
    la, lb = args.labels
    out = []
    out.append(f"| finding | {la} | {lb} | checks matched | verdict changed | flipped | disjoint intervals |")
    out.append("| --- | --- | --- | ---: | ---: | ---: | ---: |")
    same_verdicts, total_flips = True, 0
    details = []
    for fid in sorted(set(A) | set(B)):
        fa, fb = A.get(fid), B.get(fid)
        va = fa["verdict"] if fa else "missing"
        vb = fb["verdict"] if fb else "missing"
        same_verdicts &= va == vb
        ca = {c["name"]: c for c in (fa or {}).get("checks", [])}
        cb = {c["name"]: c for c in (fb or {}).get("checks", [])}
        names = [n for n in ca if n in cb]
        changed = [n for n in names if ca[n]["verdict"] != cb[n]["verdict"]]
        flips = [n for n in changed if {ca[n]["verdict"], cb[n]["verdict"]} == {"reproduced", "not reproduced"}]
        disjoint = []
        for n in names:
            x, y = ca[n], cb[n]
            if None not in (x.get("ci_low"), x.get("ci_high"), y.get("ci_low"), y.get("ci_high")):
                if x["ci_high"] < y["ci_low"] or y["ci_high"] < x["ci_low"]:
                    disjoint.append(n)
        total_flips += len(flips)
        unmatched = len(ca) + len(cb) - 2 * len(names)
        out.append(f"| {fid}. {(fa or fb)['title']} | {va} | {vb} | {len(names)}"
                   + (f" ({unmatched} unmatched)" if unmatched else "") + f" | {len(changed)} | {len(flips)} | {len(disjoint)} |")
        for n in changed:
            details.append(f"| {fid} | {n} | {fmt(ca[n])} {ca[n]['verdict']} | {fmt(cb[n])} {cb[n]['verdict']} |")
    print("\n".join(out))
    if details:
        print(f"\nChecks whose verdict changed:\n\n| finding | check | {la} | {lb} |\n| --- | --- | --- | --- |")
        print("\n".join(details))
    print(f"\nSame verdict for every finding: {'yes' if same_verdicts else 'no'}; checks reproduced on one side and "
          f"not reproduced on the other: {total_flips}.")
    return 0 if same_verdicts and total_flips == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
