#!/usr/bin/env python3
"""Side-by-side analysis benchmark (issue 10): `bwanalyze` beside a numpy/scikit-learn pipeline.

In one run, on a generated paper-scale bwact/1 file (bench/make_paper_scale.py: N = 1100, T = 128,
D = 384, depths 0..12, 3 targets, attention of 32 clips x 6 heads per layer; 2.97 GB, uncompressed,
h5py's default chunking) and a second file over the same clips (another noise stream, for the
two-file CKA), each of the following runs as its own child process, timed by wall clock, with the
child's CPU seconds (user + system, from GNU time) and peak RSS (GNU time's, or the summed RSS of
the child's process tree sampled every 10 ms where that is larger; see `timed`):

  numpy      bench/numpy_reference.py FILE: the whole suite on every depth (per-family seconds and the
             total come from its own output; its peak RSS is that of the whole suite)
  numpy      bench/numpy_reference.py FILE --families cka: load + all-pairs CKA, the counterpart of
             `bwanalyze cka FILE --depth layers --pairs all`
  numpy      bench/numpy_reference.py --cka-pair A B: the counterpart of `bwanalyze cka A B --depth layers`
  h5py       bench/numpy_reference.py --read FILE: every token dataset read once (h5py's read GB/s)
  bwanalyze  report FILE --out TMP (the whole report, which computes more than the numpy suite:
             bootstrap intervals, shuffled-label chance, RBF CKA, figures)
  bwanalyze  cka --depth layers --pairs all, spectrum, probe, retrieval, tokens (each --depth layers),
             attention, each reading the file itself; and cka A B --depth layers

Before the timed runs both files are read once (untimed) so that every child finds them in the page
cache. The table gives each family's seconds for both sides and the ratio numpy / bwanalyze (above 1:
bwanalyze is faster), of wall seconds and of CPU seconds: on a machine shared with other work the
wall time depends on the load, the CPU time much less (numpy's per-family CPU seconds come from
time.process_time in the reference). A bwanalyze subcommand's seconds include its reading of the file, while the
numpy family seconds do not (the numpy suite loads once: the "load" row), so the "whole suite" row
(report vs numpy total) and the two CKA rows with load included are the like-for-like comparisons.
bwanalyze's read GB/s is the stored token bytes over the wall time of `cka --depth layers --pairs
all` (one pass over every depth, little arithmetic), beside h5py's from the read-only run.

Last, the values both sides computed are compared (CKA, spectrum, probe, retrieval, tokens,
attention) and the largest differences printed; the run fails if one is outside its tolerance.
Nothing persists: the temporary folder (generated files, report, CSVs) is removed at the end.

Usage (from the repository root; `make bench-analysis` builds bwanalyze in release first):
  python3 bench/analysis_benchmark.py [--bwanalyze .build/release/bwanalyze] [--file A.h5 [--file-b B.h5]]
                                      [--scale full|small|CLIPS,TOKENS,WIDTH] [--keep-going]
"""
import argparse
import csv
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

import h5py

HERE = os.path.dirname(os.path.abspath(__file__))
PYTHON = sys.executable
TIME = "/usr/bin/time"      # GNU time (Debian package `time`), for the children's peak RSS
SCALES = {"full": (1100, 128, 384), "small": (300, 32, 64)}

# Tolerances of the agreement check: |bwanalyze - numpy| <= abs + rel * |numpy|.
TOLERANCE = {
    "cka": (1e-9, 1e-6), "spectrum": (1e-9, 1e-6), "retrieval": (1e-12, 1e-9),
    "tokens": (1e-9, 1e-6), "attention": (1e-9, 1e-6), "probe": (0.02, 0.0),
}


def tree_rss_kib(root):
    """Summed VmRSS (KiB) of the descendants of process `root` (not `root` itself: GNU time), or 0."""
    total, stack = 0, [root]
    while stack:
        pid = stack.pop()
        try:
            for task in os.listdir(f"/proc/{pid}/task"):
                with open(f"/proc/{pid}/task/{task}/children") as fh:
                    stack += [int(c) for c in fh.read().split()]
            if pid != root:
                with open(f"/proc/{pid}/status") as fh:
                    for line in fh:
                        if line.startswith("VmRSS:"):
                            total += int(line.split()[1])
        except (FileNotFoundError, ProcessLookupError, ValueError):
            continue
    return total


def timed(argv):
    """Runs argv in a fresh child under GNU time; returns (seconds, peak RSS MB, stdout text, CPU seconds).

    The peak RSS is the larger of GNU time's %M (the child's ru_maxrss, which for a process with
    children of its own is the largest of them, not their sum) and the largest summed RSS of the
    child and its descendants (bwanalyze's helper processes: the structure checks, the clip-vector
    helper), sampled every 10 ms; the CPU seconds are GNU time's %U + %S (children included). Neither
    is read from this script's own wait4: a child forked from this Python process would count the
    interpreter's pages, which it holds until its exec, into its peak."""
    out_file = tempfile.TemporaryFile(mode="w+")
    err_file = tempfile.TemporaryFile(mode="w+")
    with tempfile.NamedTemporaryFile(mode="r", suffix=".time") as rss_file:
        t = time.perf_counter()
        p = subprocess.Popen([TIME, "-f", "%M %U %S", "-o", rss_file.name] + argv, stdout=out_file, stderr=err_file)
        tree_peak = 0
        while p.poll() is None:
            tree_peak = max(tree_peak, tree_rss_kib(p.pid))
            time.sleep(0.01)
        seconds = time.perf_counter() - t
        rss_kib, user, system = rss_file.read().strip().splitlines()[-1].split()
    out_file.seek(0)
    err_file.seek(0)
    out, err = out_file.read(), err_file.read()
    if p.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} exited with {p.returncode}:\n{err[-2000:]}")
    return seconds, max(int(rss_kib), tree_peak) / 1024.0, out, float(user) + float(system)


def warm(path):
    with open(path, "rb") as fh:
        while fh.read(64 << 20):
            pass


def token_bytes(path):
    with h5py.File(path, "r") as f:
        return sum(f[f"layers/{d}/tokens"].id.get_storage_size() for d in f["layers"])


def parse_numpy_suite(text):
    """{family: (wall s, CPU s)} from numpy_reference.py's lines `family WALL s CPU cpu-s`."""
    seconds = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 5 and parts[2] == "s" and parts[4] == "cpu-s":
            seconds[parts[0]] = (float(parts[1]), float(parts[3]))
    return seconds


def read_csv(path):
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


# agreement check

def compare(tmp, values):
    """Largest difference per family between bwanalyze's CSV values and numpy's; list of failures."""
    worst, failures, counts = {}, [], {}

    def check(family, what, ours, theirs):
        if theirs is None or ours == "":
            return
        counts[family] = counts.get(family, 0) + 1
        ours = float(ours)
        diff = abs(ours - theirs)
        a, r = TOLERANCE[family]
        if family not in worst or diff > worst[family][0]:
            worst[family] = (diff, what)
        if diff > a + r * abs(theirs):
            failures.append(f"{family} {what}: bwanalyze {ours:.9g}, numpy {theirs:.9g}")

    for row in read_csv(os.path.join(tmp, "cka.csv")):
        if row["metric"].startswith("cka") and row["depth_b"]:
            key = f"{min(int(row['depth']), int(row['depth_b']))}-{max(int(row['depth']), int(row['depth_b']))}"
            check("cka", key, row["value"], values["cka"].get(key))
    for row in read_csv(os.path.join(tmp, "spectrum.csv")):
        v = values["spectrum"].get(row["depth"], {}).get(row["metric"])
        check("spectrum", f"{row['metric']} depth {row['depth']}", row["value"], v)
    for row in read_csv(os.path.join(tmp, "probe.csv")):
        if row["metric"] == "probe_accuracy" and row["target"]:
            v = values["probe"].get(row["depth"], {}).get(row["target"], {}).get("mean")
            check("probe", f"depth {row['depth']} {row['target']}", row["value"], v)
    for row in read_csv(os.path.join(tmp, "retrieval.csv")):
        m = row["metric"]
        key = "map" if m == "retrieval_map" else m.replace("retrieval_top", "top") if m.startswith("retrieval_top") else None
        if key and row["target"]:
            v = values["retrieval"].get(row["depth"], {}).get(row["target"], {}).get(key)
            check("retrieval", f"{m} depth {row['depth']} {row['target']}", row["value"], v)
    for row in read_csv(os.path.join(tmp, "tokens.csv")):
        m = row["metric"]
        if m == "patch_similarity":
            v = values["tokens"][m].get(row["depth"])
        elif m in ("token_shift_cosine", "token_shift_relative") and row["depth_b"]:
            v = values["tokens"][m].get(f"{row['depth']}-{row['depth_b']}")
        else:
            continue
        check("tokens", f"{m} depth {row['depth']}", row["value"], v)
    names = {"attention_distance_spatial": "spatial", "attention_distance_temporal": "temporal",
             "attention_entropy": "entropy"}
    for row in read_csv(os.path.join(tmp, "attention.csv")):
        if row["metric"] in names and row["head"]:
            layer = values["attention"].get(row["depth"])
            v = layer[names[row["metric"]]][int(row["head"])] if layer else None
            check("attention", f"{row['metric']} layer {row['depth']} head {row['head']}", row["value"], v)
    return worst, failures, counts


SIMILARITY = ["procrustes_angle", "svcca", "pwcca", "rsa", "mutual_knn"]


def similarity_lines(bw, np_ref, file_a, tmp, step, r, keep_going):
    """Each similarity measure, all pairs over every depth, against all-pairs linear CKA on the same file
    (the 2x bar), and a 1,000-permutation test of one depth pair per measure; numpy's all-pairs beside."""
    if "bwanalyze cka" not in r:
        step("bwanalyze cka", [bw, "cka", file_a, "--depth", "layers", "--pairs", "all", "--format", "csv", "--quiet",
                               "-o", os.path.join(tmp, "cka.csv")])
    with h5py_file(file_a) as f:
        last = len([k for k in f["layers"].keys()]) - 1
    failures = []
    for m in SIMILARITY:
        step(f"bwanalyze similarity {m}", [bw, "similarity", file_a, "--depth", "layers", "--pairs", "all", "--measure", m,
                                          "--format", "csv", "--quiet", "-o", os.path.join(tmp, f"similarity-{m}.csv")])
        step(f"numpy similarity {m}", np_ref + ["--similarity", m, file_a, "--values", os.path.join(tmp, f"np-{m}.json")])
        step(f"bwanalyze permutations {m}", [bw, "similarity", file_a, "--depth", f"{last - 1},{last}", "--measure", m,
                                            "--permutations", "1000", "--format", "csv", "--quiet", "-o", os.path.join(tmp, f"perm-{m}.csv")])
        with open(os.path.join(tmp, f"np-{m}.json")) as fh:
            theirs = json.load(fh)
        worst = 0.0
        for row in read_csv(os.path.join(tmp, f"similarity-{m}.csv")):
            key = f"{row['depth']}-{row['depth_b']}"
            if row["value"] and key in theirs:
                worst = max(worst, abs(float(row["value"]) - theirs[key]) / max(abs(theirs[key]), 1e-12))
        if worst > 1e-8:
            failures.append(f"{m}: largest relative difference {worst:.3g}")
        r[f"agreement {m}"] = worst
    cka = r["bwanalyze cka"][0]
    print()
    print(f"{'measure (all pairs, --depth layers)':36s} {'bwanalyze s':>11s} {'x cka':>6s} {'numpy s':>8s} {'bw MB':>6s}"
          f" {'1000 perms s':>12s} {'max rel diff':>12s}")
    print("-" * 92)
    print(f"{'cka_linear_biased (the bar)':36s} {cka:11.2f} {1:6.2f} {'':>8s} {r['bwanalyze cka'][1]:6.0f}")
    for m in SIMILARITY:
        b, n, p = r[f"bwanalyze similarity {m}"], r[f"numpy similarity {m}"], r[f"bwanalyze permutations {m}"]
        print(f"{m:36s} {b[0]:11.2f} {b[0] / cka:6.2f} {n[0]:8.2f} {b[1]:6.0f} {p[0]:12.2f} {r['agreement ' + m]:12.3g}")
    print("(x cka = bwanalyze similarity / bwanalyze cka, both reading the file themselves; 1000 perms = one depth pair"
          " with --permutations 1000, its read included)")
    for line in failures:
        print(f"  OUTSIDE TOLERANCE: {line}")
    if failures and not keep_going:
        sys.exit(1)


def h5py_file(path):
    import h5py
    return h5py.File(path, "r")


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--bwanalyze", default=".build/release/bwanalyze")
    p.add_argument("--file", help="the paper-scale file (default: generate one into a temporary folder)")
    p.add_argument("--file-b", help="the second file for `cka A B` (default: generate a variant of the first)")
    p.add_argument("--scale", default="full", help="full (1100,128,384), small (300,32,64) or CLIPS,TOKENS,WIDTH")
    p.add_argument("--keep-going", action="store_true", help="exit 0 even if the agreement check fails")
    p.add_argument("--only", choices=["similarity"], help="run only the similarity lines (and the all-pairs cka line they are measured against)")
    a = p.parse_args()
    clips, tokens, width = SCALES[a.scale] if a.scale in SCALES else map(int, a.scale.split(","))
    bw = os.path.abspath(a.bwanalyze)
    tmp = tempfile.mkdtemp(prefix="bench-analysis-")
    try:
        file_a = a.file
        if file_a is None:
            file_a = os.path.join(tmp, "run-a.h5")
            print(f"generating {clips} clips x {tokens} tokens x {width} features x 13 depths ...", flush=True)
            subprocess.run([PYTHON, os.path.join(HERE, "make_paper_scale.py"), file_a, "--clips", str(clips),
                            "--tokens", str(tokens), "--width", str(width)], check=True)
        file_b = a.file_b
        if file_b is None:
            file_b = os.path.join(tmp, "run-b.h5")
            with h5py.File(file_a, "r") as f:
                cfg = json.loads(f.attrs["config"])
            subprocess.run([PYTHON, os.path.join(HERE, "make_paper_scale.py"), file_b, "--variant", "1",
                            "--clips", str(cfg.get("clips", clips)), "--tokens", str(cfg.get("tokens", tokens)),
                            "--width", str(cfg.get("width", width))], check=True)
        nbytes = token_bytes(file_a)
        with h5py.File(file_a, "r") as f:
            shape = f["layers/00/tokens"].shape
            chunks = f["layers/00/tokens"].chunks
            depths = len(f["layers"])
        print(f"file: N = {shape[0]}, T = {shape[1]}, D = {shape[2]}, {depths} depths, chunks {chunks}, "
              f"{os.path.getsize(file_a) / 1e9:.2f} GB ({nbytes / 1e9:.2f} GB of tokens)", flush=True)
        subprocess.run([bw, "validate", file_a], check=True, stdout=subprocess.DEVNULL)
        warm(file_a)
        warm(file_b)

        np_ref = [PYTHON, os.path.join(HERE, "numpy_reference.py")]
        r = {}

        def step(name, argv):
            print(f"  {name} ...", end="", flush=True)
            r[name] = timed(argv)
            print(f" {r[name][0]:.2f} s, {r[name][1]:.0f} MB", flush=True)

        if a.only == "similarity":
            similarity_lines(bw, np_ref, file_a, tmp, step, r, a.keep_going)
            return
        values_path = os.path.join(tmp, "numpy-values.json")
        step("h5py read", np_ref + ["--read", file_a])
        step("numpy suite", np_ref + [file_a, "--values", values_path])
        step("bwanalyze report", [bw, "report", file_a, "--out", os.path.join(tmp, "report"), "--quiet"])
        step("numpy cka", np_ref + [file_a, "--families", "cka"])
        subcommands = {
            "cka": ["cka", file_a, "--depth", "layers", "--pairs", "all"],
            "spectrum": ["spectrum", file_a, "--depth", "layers"],
            "probe": ["probe", file_a, "--depth", "layers"],
            "retrieval": ["retrieval", file_a, "--depth", "layers"],
            "tokens": ["tokens", file_a, "--depth", "layers"],
            "attention": ["attention", file_a],
        }
        for name, args in subcommands.items():
            step(f"bwanalyze {name}", [bw] + args + ["--format", "csv", "--quiet", "-o", os.path.join(tmp, f"{name}.csv")])
        step("numpy cka A B", np_ref + ["--cka-pair", file_a, file_b])
        step("bwanalyze cka A B", [bw, "cka", file_a, file_b, "--depth", "layers", "--format", "csv", "--quiet",
                                   "-o", os.path.join(tmp, "cka-ab.csv")])

        similarity_lines(bw, np_ref, file_a, tmp, step, r, True)
        fam = parse_numpy_suite(r["numpy suite"][2])
        np_rss = r["numpy suite"][1]
        none = (None, None)

        def bw(name):
            s, rss, _, cpu = r[name]
            return s, cpu, rss

        def np_run(name):
            s, rss, _, cpu = r[name]
            return s, cpu, rss

        # (family, bwanalyze (s, cpu, MB), numpy (s, cpu, MB))
        rows = [("load", (None, None, None), fam.get("load", none) + (np_rss,))]
        for name in subcommands:
            rows.append((name, bw(f"bwanalyze {name}"), fam.get(name, none) + (np_rss,)))
        rows.append(("whole suite (report / numpy)", bw("bwanalyze report"), np_run("numpy suite")))
        rows.append(("cka, one file, load included", bw("bwanalyze cka"), np_run("numpy cka")))
        rows.append(("cka A B, load included", bw("bwanalyze cka A B"), np_run("numpy cka A B")))

        def f(x, fmt):
            return "" if x is None else format(x, fmt)

        def ratio(n, b):
            return f"{n / b:.2f}x" if n and b else ""

        print()
        print(f"{'family':30s} {'bwanalyze s':>11s} {'numpy s':>8s} {'ratio':>6s} {'bw cpu-s':>9s} {'np cpu-s':>9s}"
              f" {'cpu ratio':>9s} {'bwanalyze MB':>12s} {'numpy MB':>9s}")
        print("-" * 111)
        for name, (bs, bc, brss), (ns, nc, nrss) in rows:
            print(f"{name:30s} {f(bs, '.2f'):>11s} {f(ns, '.2f'):>8s} {ratio(ns, bs):>6s} {f(bc, '.2f'):>9s}"
                  f" {f(nc, '.2f'):>9s} {ratio(nc, bc):>9s} {f(brss, '.0f'):>12s} {f(nrss, '.0f'):>9s}")
        print("(ratio = numpy / bwanalyze, of wall seconds and of CPU seconds (user + system, all threads);"
              " numpy's per-family rows exclude its load, bwanalyze's subcommands include their reads;"
              " numpy MB of the family rows is the whole suite's peak)")
        read_s = r["h5py read"][0]
        print(f"read: bwanalyze {nbytes / 1e9 / r['bwanalyze cka'][0]:.2f} GB/s (cka --depth layers --pairs all, "
              f"whole command), h5py {nbytes / 1e9 / read_s:.2f} GB/s (every token dataset once, "
              f"{read_s:.2f} s incl. interpreter start)")

        with open(values_path) as fh:
            values = json.load(fh)
        worst, failures, counts = compare(tmp, values)
        print()
        print("agreement (largest |bwanalyze - numpy| per family, over the values both computed):")
        for family in TOLERANCE:
            if family not in worst:
                failures.append(f"{family}: no values compared")
                continue
            diff, what = worst[family]
            print(f"  {family:10s} {counts[family]:5d} values, largest difference {diff:.3g}  ({what})")
        for line in failures:
            print(f"  OUTSIDE TOLERANCE: {line}")
        if failures and not a.keep_going:
            sys.exit(1)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
