#!/usr/bin/env python3
"""Mutation fuzzer for bwanalyze: damages copies of the fixtures and checks that every command either
succeeds or fails with one error line naming the file.

Each mutant is a fixture with a few bytes flipped, overwritten or cut off, aimed mostly at HDF5 metadata
(object headers, B-trees, heaps, the superblock). Besides the committed fixtures (HDF5 1.10 format, with
checksummed metadata) the base files include h5py rewrites in the oldest file format, which has no
checksums, as most users' files do. Every mutant is run through `validate` and through commands taken in
turn from the list below (--commands-per-mutant, --all-commands), or with --rotate through one command
each, validate taking its turn with the others. A run is a failure when it

  - is killed by a signal (crash) or exits with a status other than 0 and 1 (abort exit),
  - runs longer than --timeout seconds (hang),
  - fails without exactly one line on standard error that starts with "bwanalyze: error:" and names the
    file (validate lists its findings on standard output instead and must name the file there),
  - changes the input file, or leaves anything but a regular file at an -o path,
  - fails to read a file that `validate` passed (the rule: a file validate passes works with every command).

With --bwtrain, bwtrain's two readers are fuzzed too, every third mutant in turn: a damaged training
checkpoint (`checkpoint.h5` of a finished quick run, resumed with no steps left and no dumps, so a
checkpoint that still loads ends at once: the load-only path) and a damaged `--data` clip file (trained
for one step). Such a run fails the same ways, with "bwtrain: error:" as its error line, and also when a
failing resume changes the checkpoint.

Usage: fuzz.py --binary .build/debug/bwanalyze --fixtures Fixtures --mutants 500 --seed 11 [--bwtrain .build/debug/bwtrain]
Exit status 0 when no run failed, 1 otherwise; a summary line "fuzz: ..." ends the output, with the runs
per command and per kind of input file.
"""
import argparse
import concurrent.futures
import hashlib
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time

# HDF5 structure signatures: mutations are aimed near them most of the time.
SIGNATURES = [b"\x89HDF\r\n\x1a\n", b"OHDR", b"OCHK", b"TREE", b"HEAP", b"GCOL", b"SNOD", b"BTHD", b"BTLF",
              b"BTIN", b"FRHP", b"FHDB", b"FHIB", b"FSHD", b"FSSE", b"SMTB", b"SMLI", b"FAHD", b"FADB",
              b"EAHD", b"EAIB", b"EADB"]
INTERESTING = [0, 1, 0x7F, 0x80, 0xFF]
INTERESTING64 = [0, 1, 2**31 - 1, 2**32 - 1, 2**40, 2**63 - 1, 2**64 - 1, 0xFFFFFFFF00000000]

# Commands tried in turn (besides validate, which every mutant gets). FILE is the mutant, OUT a fresh path.
COMMANDS = [
    ["inspect", "FILE"],
    ["cka", "FILE", "--depth", "layers"],
    ["spectrum", "FILE"],
    ["probe", "FILE"],
    ["retrieval", "FILE"],
    ["tokens", "FILE"],
    ["attention", "FILE"],
    ["cka", "FILE", "--format", "csv", "-o", "OUT"],
    ["inspect", "FILE", "--json"],
    ["report", "FILE", "--out", "OUTDIR", "--quick", "--quiet"],
]


def signature_offsets(data):
    found = []
    for sig in SIGNATURES:
        start = 0
        while True:
            i = data.find(sig, start)
            if i < 0:
                break
            found.append(i)
            start = i + 1
    return sorted(found)


def mutate(data, rng):
    """A damaged copy of `data` and a short description of what was done."""
    data = bytearray(data)
    offsets = signature_offsets(data)
    steps = []
    for _ in range(rng.choice([1, 1, 1, 2, 3, 4])):
        def where():
            r = rng.random()
            if offsets and r < 0.6:
                return min(len(data) - 1, max(0, rng.choice(offsets) + rng.randrange(-16, 96)))
            if r < 0.8:
                return rng.randrange(min(len(data), 4096))
            return rng.randrange(len(data))
        kind = rng.choice(["bits", "bytes", "interesting", "word", "truncate", "zero-run"])
        if kind == "truncate" and len(data) > 64:
            cut = rng.randrange(len(data) // 8, len(data))
            del data[cut:]
            steps.append(f"truncate@{cut}")
            continue
        i = where()
        if kind == "bits":
            for _ in range(rng.randrange(1, 9)):
                j = min(len(data) - 1, i + rng.randrange(0, 8))
                data[j] ^= 1 << rng.randrange(8)
        elif kind == "bytes":
            for j in range(i, min(len(data), i + rng.randrange(1, 17))):
                data[j] = rng.randrange(256)
        elif kind == "interesting":
            v = rng.choice(INTERESTING)
            for j in range(i, min(len(data), i + rng.randrange(1, 9))):
                data[j] = v
        elif kind == "word":
            v = rng.choice(INTERESTING64)
            width = rng.choice([2, 4, 8])
            chunk = (v & ((1 << (8 * width)) - 1)).to_bytes(width, "little")
            data[i:i + width] = chunk[:max(0, len(data) - i)]
        else:
            n = rng.randrange(1, 64)
            data[i:i + n] = bytes(min(n, len(data) - i))
        steps.append(f"{kind}@{i}")
    return bytes(data), " ".join(steps)


def legacy_copies(fixtures, workdir):
    """h5py rewrites of some fixtures in the oldest HDF5 format (no metadata checksums), if h5py exists."""
    script = r'''
import sys, h5py
src, dst = sys.argv[1], sys.argv[2]
with h5py.File(src, "r") as a, h5py.File(dst, "w", libver="earliest") as b:
    for k, v in a.attrs.items():
        b.attrs[k] = v
    for name in a:
        a.copy(a[name], b, name=name)
'''
    out = []
    for name in ["run-a.h5", "attention.h5", "precision-f16.h5"]:
        src = os.path.join(fixtures, name)
        dst = os.path.join(workdir, "legacy-" + name)
        r = subprocess.run(["/usr/bin/python3", "-c", script, src, dst], capture_output=True)
        if r.returncode == 0:
            out.append(dst)
    return out


# bwtrain's readers: the options of the run that wrote the checkpoint (load-only resume) and of a
# one-step training on a clip file. RUNDIR is a fresh run folder holding the mutant as checkpoint.h5.
BWTRAIN_RUN = ["--preset", "quick", "--regime", "e2e", "--blocks", "2", "--run", "fuzz", "--steps", "2",
               "--dump-steps", "", "--probe-sets", "", "--training-clips", "16", "--batch-size", "4", "--quiet"]
BWTRAIN_COMMANDS = {
    "checkpoint": ["BWTRAIN"] + BWTRAIN_RUN + ["--out", "RUNDIR", "--resume"],
    "clips": ["BWTRAIN", "--preset", "quick", "--regime", "e2e", "--blocks", "2", "--run", "fuzz", "--steps", "1",
              "--dump-steps", "", "--probe-sets", "", "--batch-size", "4", "--data", "FILE", "--out", "RUNDIR", "--quiet"],
}


def bwtrain_bases(bwtrain, workdir):
    """A finished quick run's checkpoint and a small clip file, the bases of bwtrain's mutants."""
    run = os.path.join(workdir, "base-run")
    r = subprocess.run([bwtrain] + BWTRAIN_RUN + ["--out", run], capture_output=True)
    if r.returncode != 0:
        raise SystemExit(f"fuzz: cannot make the base checkpoint: {r.stderr.decode()[:300]}")
    clips = os.path.join(workdir, "base-clips.h5")
    script = r'''
import sys, h5py, numpy as np
rng = np.random.default_rng(0)
with h5py.File(sys.argv[1], "w") as f:
    f["clips"] = rng.integers(0, 256, (8, 8, 32, 32, 3), dtype=np.uint8)
    f["labels/kind"] = np.arange(8, dtype=np.int64) % 2
    f.attrs["note"] = "fuzz base"
'''
    r = subprocess.run(["/usr/bin/python3", "-c", script, clips], capture_output=True)
    if r.returncode != 0:
        raise SystemExit(f"fuzz: cannot make the base clip file: {r.stderr.decode()[:300]}")
    return os.path.join(run, "checkpoint.h5"), os.path.join(run, "config.json"), clips


def sha(path):
    try:
        with open(path, "rb") as f:
            return hashlib.sha256(f.read()).hexdigest()
    except OSError:
        return None


def run_one(binary, args, mutant, timeout, workdir, tag, bwtrain=None):
    out_file = os.path.join(workdir, f"out-{tag}.csv")
    out_dir = os.path.join(workdir, f"report-{tag}")
    run_dir = os.path.join(workdir, f"run-{tag}")
    tool = "bwtrain" if args[0] == "BWTRAIN" else "bwanalyze"
    if args[0] == "BWTRAIN":
        argv = [bwtrain] + [mutant if a == "FILE" else run_dir if a == "RUNDIR" else a for a in args[1:]]
    else:
        argv = [binary] + [mutant if a == "FILE" else out_file if a == "OUT" else out_dir if a == "OUTDIR" else a
                           for a in args]
    before = sha(mutant)
    start = time.monotonic()
    try:
        r = subprocess.run(argv, capture_output=True, timeout=timeout, cwd=workdir)
        code, stdout, stderr = r.returncode, r.stdout.decode("utf-8", "replace"), r.stderr.decode("utf-8", "replace")
    except subprocess.TimeoutExpired:
        code, stdout, stderr = None, "", ""
    elapsed = time.monotonic() - start
    problems = []
    if code is None:
        problems.append(f"hang (> {timeout} s)")
    elif code < 0:
        problems.append(f"crash (signal {-code})")
    elif code not in (0, 1):
        problems.append(f"abort exit (status {code})")
    elif code == 1:
        lines = [l for l in stderr.split("\n") if l]
        if args[0] == "validate" and not lines:
            if not stdout.startswith(mutant):
                problems.append("validate failed without naming the file")
        elif len(lines) != 1:
            problems.append(f"{len(lines)} lines on standard error")
        elif not lines[0].startswith(f"{tool}: error: ") or os.path.basename(mutant) not in lines[0]:
            problems.append("error line does not name the file")
    if "HDF5-DIAG" in stderr:
        problems.append("HDF5 diagnostic trace printed")
    if sha(mutant) != before and not (tool == "bwtrain" and code == 0):
        # (a resume that succeeds goes on to write its checkpoint; one that fails must leave it as it was)
        problems.append("the input file changed")
    if os.path.lexists(out_file) and not (os.path.isfile(out_file) and not os.path.islink(out_file)):
        problems.append("-o left something other than a regular file")
    for p in (out_file,):
        if os.path.lexists(p):
            os.unlink(p)
    shutil.rmtree(out_dir, ignore_errors=True)
    shutil.rmtree(run_dir, ignore_errors=True)
    name = "bwtrain " + ("--resume" if "--resume" in args else "--data") if tool == "bwtrain" else args[0]
    return {"command": " ".join(args), "name": name, "status": code, "seconds": round(elapsed, 3),
            "stderr": stderr.strip()[:400], "problems": problems}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--binary", required=True)
    ap.add_argument("--fixtures", default="Fixtures")
    ap.add_argument("--mutants", type=int, default=500)
    ap.add_argument("--seed", type=int, default=11)
    ap.add_argument("--timeout", type=float, default=10.0, help="seconds after which a run counts as a hang")
    ap.add_argument("--commands-per-mutant", type=int, default=1,
                    help="commands besides validate run on each mutant, taken in turn from the list")
    ap.add_argument("--all-commands", action="store_true", help="run every command on every mutant")
    ap.add_argument("--rotate", action="store_true",
                    help="one command per mutant, validate included in the turn (the bounded run of the test command)")
    ap.add_argument("--jobs", type=int, default=1)
    ap.add_argument("--keep", help="copy failing mutants into this folder")
    ap.add_argument("--results", help="write every run as JSON lines here")
    ap.add_argument("--quiet", action="store_true")
    ap.add_argument("--bwtrain", help="also fuzz bwtrain's checkpoint and clip-file readers with this binary")
    a = ap.parse_args()

    binary = os.path.abspath(a.binary)
    bwtrain = os.path.abspath(a.bwtrain) if a.bwtrain else None
    workdir = tempfile.mkdtemp(prefix="bwssl-fuzz-")
    try:
        bases = sorted(os.path.join(a.fixtures, n) for n in os.listdir(a.fixtures) if n.endswith(".h5"))
        bases += legacy_copies(a.fixtures, workdir)
        base_data = {b: open(b, "rb").read() for b in bases}
        trainer = {}
        if bwtrain:
            checkpoint, config, clips = bwtrain_bases(bwtrain, workdir)
            trainer = {"checkpoint": open(checkpoint, "rb").read(), "clips": open(clips, "rb").read()}
            config_text = open(config, "rb").read()
        rng = random.Random(a.seed)
        jobs = []
        turn = 0
        for m in range(a.mutants):
            # With bwtrain, every third mutant is a checkpoint or a clip file in turn.
            if trainer and m % 3 == 2:
                kind = "checkpoint" if (m // 3) % 2 == 0 else "clips"
                data, how = mutate(trainer[kind], rng)
                if kind == "checkpoint":
                    run_dir = os.path.join(workdir, f"m{m:05d}-run")
                    os.makedirs(run_dir)
                    with open(os.path.join(run_dir, "config.json"), "wb") as f:
                        f.write(config_text)
                    path = os.path.join(run_dir, "checkpoint.h5")
                else:
                    path = os.path.join(workdir, f"m{m:05d}-clips.h5")
                with open(path, "wb") as f:
                    f.write(data)
                jobs.append((m, path, how, [BWTRAIN_COMMANDS[kind]]))
                continue
            base = bases[m % len(bases)]
            data, how = mutate(base_data[base], rng)
            path = os.path.join(workdir, f"m{m:05d}-{os.path.basename(base)}")
            with open(path, "wb") as f:
                f.write(data)
            if a.rotate:
                everything = [["validate", "FILE"]] + COMMANDS
                jobs.append((m, path, how, [everything[m % len(everything)]]))
                continue
            if a.all_commands:
                chosen = COMMANDS
            else:
                chosen = []
                for _ in range(a.commands_per_mutant):
                    chosen.append(COMMANDS[turn % len(COMMANDS)])
                    turn += 1
            jobs.append((m, path, how, [["validate", "FILE"]] + chosen))

        def work(job):
            m, path, how, commands = job
            results = []
            for i, args in enumerate(commands):
                if args[-1] == "--resume":
                    # The checkpoint's own folder is the run folder.
                    args = [os.path.dirname(path) if x == "RUNDIR" else x for x in args]
                results.append(run_one(binary, args, path, a.timeout, workdir, f"{m}-{i}", bwtrain=bwtrain))
            valid = commands[0][0] == "validate" and results[0]["status"] == 0
            if valid:
                for r in results[1:]:
                    if r["status"] == 1 and any(w in r["stderr"] for w in ("damaged", "cannot read", "truncated")):
                        r["problems"].append("validate passed but the command could not read the file")
            return m, path, how, results

        counts = {"runs": 0, "ok": 0, "clean errors": 0, "crash": 0, "hang": 0, "abort exit": 0, "other": 0}
        per_command = {}
        per_base = {}
        failures = []
        start = time.monotonic()
        results_file = open(a.results, "w") if a.results else None
        with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, a.jobs)) as pool:
            for done, (m, path, how, results) in enumerate(pool.map(work, jobs), 1):
                base_kind = os.path.basename(path).split("-", 1)[-1] if not path.endswith("checkpoint.h5") else "checkpoint.h5"
                per_base[base_kind] = per_base.get(base_kind, 0) + 1
                for r in results:
                    counts["runs"] += 1
                    per_command[r["name"]] = per_command.get(r["name"], 0) + 1
                    if not r["problems"]:
                        counts["ok" if r["status"] == 0 else "clean errors"] += 1
                    for p in r["problems"]:
                        key = next((k for k in ("crash", "hang", "abort exit") if p.startswith(k)), "other")
                        counts[key] += 1
                    if r["problems"]:
                        failures.append((path, how, r))
                    if results_file:
                        results_file.write(json.dumps({"mutant": os.path.basename(path), "mutation": how, **r}) + "\n")
                if any(r["problems"] for r in results) and a.keep:
                    os.makedirs(a.keep, exist_ok=True)
                    shutil.copy(path, a.keep)
                if path.endswith("checkpoint.h5"):
                    shutil.rmtree(os.path.dirname(path), ignore_errors=True)
                else:
                    os.unlink(path)
                if not a.quiet and done % 100 == 0:
                    print(f"  {done}/{len(jobs)} mutants, {counts['runs']} runs, {len(failures)} failing, "
                          f"{time.monotonic() - start:.0f} s", flush=True)
        if results_file:
            results_file.close()
        for path, how, r in failures[:40]:
            print(f"FAIL {os.path.basename(path)} [{how}] {r['command']}: {'; '.join(r['problems'])}\n    {r['stderr'][:300]}")
        print("runs per command: " + ", ".join(f"{k} {v}" for k, v in sorted(per_command.items())))
        print("mutants per base file: " + ", ".join(f"{k} {v}" for k, v in sorted(per_base.items())))
        print(f"fuzz: {a.mutants} mutants (seed {a.seed}), {counts['runs']} runs: {counts['ok']} ok, "
              f"{counts['clean errors']} clean errors, {counts['crash']} crashes, {counts['hang']} hangs, "
              f"{counts['abort exit']} abort exits, {counts['other']} other failures "
              f"in {time.monotonic() - start:.0f} s")
        return 1 if failures else 0
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
