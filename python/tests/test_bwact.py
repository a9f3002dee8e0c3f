"""Tests of the bwact package: the writer, the reader, the PyTorch recorder, clip ids and shards.

Run with `python -m unittest discover -s python/tests -v`. With BWANALYZE=path/to/bwanalyze the
tests also check the files with the Swift tool (validate, cka); the Swift test suite sets it, and
sets BWACT_REQUIRE=1 so that a missing torch or bwanalyze fails instead of skipping.
"""
import csv
import io
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

import h5py
import numpy as np

import bwact

BWANALYZE = os.environ.get("BWANALYZE")
REQUIRE = os.environ.get("BWACT_REQUIRE") == "1"
try:
    import torch
except ImportError:  # pragma: no cover - depends on the machine
    torch = None


def need_torch(test):
    if torch is None and not REQUIRE:
        return unittest.skip("torch is not installed")(test)
    return test


def need_models(test):
    """Tests that run docs/pytorch-recipes.md on transformers' and timm's classes (tests/small_models.py)."""
    try:
        import timm  # noqa: F401
        import transformers  # noqa: F401
    except ImportError:
        if not REQUIRE:
            return unittest.skip("transformers or timm is not installed")(test)
    return test


def need_bwanalyze(test):
    if not BWANALYZE and not REQUIRE:
        return unittest.skip("BWANALYZE is not set")(test)
    return test


def run_bwanalyze(*args):
    return subprocess.run([BWANALYZE, *args], capture_output=True, text=True)


def cka_csv(*args):
    """bwanalyze cka ... --format csv as {(depth, depth_b): value}."""
    r = run_bwanalyze("cka", *args, "--depth", "layers", "--format", "csv")
    if r.returncode != 0:
        raise AssertionError(f"bwanalyze cka failed: {r.stderr}")
    out = {}
    for row in csv.DictReader(io.StringIO(r.stdout)):
        out[(int(row["depth"]), int(row["depth_b"]) if row["depth_b"] else None)] = float(row["value"])
    return out


def linear_cka(x, y):
    """Biased linear CKA of two [N, D] matrices in float64 (Kornblith et al. 2019), written independently."""
    x = x - x.mean(axis=0)
    y = y - y.mean(axis=0)
    return np.linalg.norm(y.T @ x) ** 2 / (np.linalg.norm(x.T @ x) * np.linalg.norm(y.T @ y))


def attrs(**kw):
    base = dict(run="test-run", probe_set="toy", step=7, seed=3, block_ends=[1, 2],
                positions=bwact.grid_positions((1, 2, 2), (2, 4, 4)), config={"depth": 2})
    base.update(kw)
    return base


def random_batches(rng, n, batch, t=8, d=5, depths=3, ids=True, shift=0):
    """Batches of (layers, labels, ids) with distinct random tokens."""
    out = []
    for i in range(0, n, batch):
        b = min(batch, n - i)
        layers = [rng.standard_normal((b, t, d)).astype(np.float32) + k for k in range(depths)]
        labels = {"cls": (np.arange(i, i + b) % 3).astype(np.int64)}
        out.append((layers, labels, (np.arange(i, i + b) + shift) if ids else None))
    return out


class TempDir(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="bwact-test-")

    def tearDown(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    def path(self, name):
        return os.path.join(self.dir, name)

    def write(self, name, batches, **kw):
        with bwact.Writer(self.path(name), **attrs(**kw)) as w:
            for layers, labels, ids in batches:
                w.add(layers, labels, clip_ids=ids)
        return self.path(name)


class WriterTests(TempDir):
    def test_contract_types_chunks_and_values(self):
        rng = np.random.default_rng(0)
        batches = random_batches(rng, 10, 4)
        p = self.write("a.h5", batches)
        with h5py.File(p, "r") as f:
            self.assertEqual(f.attrs["format"], "bwact")
            self.assertIsInstance(f.attrs["run"], str)
            for k in ("format_version", "step", "seed"):
                self.assertEqual(f.attrs[k].dtype, np.int64, k)
                self.assertEqual(f.attrs[k].shape, (), k)
            self.assertEqual(f.attrs["block_ends"].dtype, np.int64)
            self.assertEqual(f.attrs["block_ends"].tolist(), [1, 2])
            self.assertEqual(f.attrs["config"], '{"depth": 2}')
            # every string attribute is variable-length UTF-8
            for k in ("format", "run", "regime", "probe_set", "config"):
                self.assertTrue(h5py.check_string_dtype(f.attrs.get_id(k).dtype).encoding == "utf-8", k)
            self.assertEqual(sorted(f["layers"]), ["00", "01", "02"])
            ds = f["layers/01/tokens"]
            self.assertEqual((ds.shape, ds.dtype, ds.chunks[1:]), ((10, 8, 5), np.float32, (8, 5)))
            self.assertLessEqual(ds.chunks[0] * 8 * 5 * 4, 2 ** 20)
            self.assertEqual(f["labels/cls"].dtype, np.int64)
            self.assertEqual(f["clip_ids"].dtype, np.int64)
            self.assertEqual(f["positions"].shape, (8, 3))
            expected = np.concatenate([b[0][1] for b in batches])
            np.testing.assert_array_equal(ds[()], expected)
        mask = os.umask(0)
        os.umask(mask)
        self.assertEqual(os.stat(p).st_mode & 0o777, 0o666 & ~mask, "an ordinary file mode, not mkstemp's 0600")
        r = bwact.read(p)
        np.testing.assert_array_equal(r["layers"][2], np.concatenate([b[0][2] for b in batches]))
        np.testing.assert_array_equal(r["clip_ids"], np.arange(10))
        np.testing.assert_array_equal(r["labels"]["cls"], np.arange(10) % 3)
        self.assertEqual(r["attrs"]["step"], 7)
        # token centres of a 1x2x2 tubelet on 2x4x4 input, frame-major
        np.testing.assert_array_equal(r["positions"][:3], [[0, 0.5, 0.5], [0, 0.5, 2.5], [0, 2.5, 0.5]])

    def test_float16_and_string_ids(self):
        rng = np.random.default_rng(1)
        batches = [(b[0], b[1], [f"clip-{i}" for i in b[2]]) for b in random_batches(rng, 6, 3)]
        p = self.write("h.h5", batches, dtype="float16")
        with bwact.open(p) as f:
            self.assertEqual(f.tokens(0).dtype, np.float16)
            self.assertEqual(f.clip_ids(), [f"clip-{i}" for i in range(6)])
            np.testing.assert_array_equal(f.tokens(1, slice(0, 3)), batches[0][0][1].astype(np.float16))

    def test_exception_leaves_no_file(self):
        p = self.path("never.h5")
        with self.assertRaises(RuntimeError):
            with bwact.Writer(p, **attrs()) as w:
                layers, labels, ids = random_batches(np.random.default_rng(2), 4, 4)[0]
                w.add(layers, labels, clip_ids=ids)
                raise RuntimeError("the data loader broke")
        self.assertEqual(os.listdir(self.dir), [])
        # an existing file under the final name is left untouched
        with open(p, "w") as fh:
            fh.write("old")
        with self.assertRaises(bwact.BwactError):
            with bwact.Writer(p, **attrs()) as w:
                w.add([np.zeros((2, 8, 5), np.float32)] * 3, {"cls": [0, 1, 2]})
        self.assertEqual(os.listdir(self.dir), ["never.h5"])
        with open(p) as fh:
            self.assertEqual(fh.read(), "old")

    def test_bad_input_is_refused_clearly(self):
        rng = np.random.default_rng(3)
        good = [rng.standard_normal((2, 8, 5)).astype(np.float32) for _ in range(3)]
        cases = [
            (lambda w: w.add([good[0][0]] * 3, {"cls": [0, 1]}), "expected [B, T, D]"),
            (lambda w: w.add([good[0], good[1], good[2][:, :7]], {"cls": [0, 1]}), "depth 2 has shape (2, 7, 5)"),
            (lambda w: w.add([g.astype(np.int32) for g in good], {"cls": [0, 1]}), "expected floating point"),
            (lambda w: w.add(good, {"cls": [0, 1, 2]}), "labels 'cls' have shape (3,)"),
            (lambda w: w.add(good, {"cls": [0, -1]}), "negative class index"),
            (lambda w: w.add(good, {"cls": [0.5, 1]}), "expected integers"),
            (lambda w: w.add(good, {"cls": [0, 1]}, clip_ids=[4, 4]), "clip id 4 occurs twice"),
            (lambda w: w.add(good, {"cls": [0, 1]}, clip_ids=[1]), "1 clip_ids for 2 clips"),
            (lambda w: w.add([good[0], good[1], good[2] * np.nan], {"cls": [0, 1]}), "NaN or Inf"),
            (lambda w: (w.add(good, {"cls": [0, 1]}), w.add(good[:2], {"cls": [0, 1]})), "earlier batches had (2, 8, 5)"),
            (lambda w: (w.add(good, {"cls": [0, 1]}, clip_ids=[0, 1]), w.add(good, {"cls": [0, 1]})), "none here but int"),
        ]
        for i, (action, message) in enumerate(cases):
            p = self.path(f"bad{i}.h5")
            with self.assertRaises(bwact.BwactError) as cm:
                with bwact.Writer(p, **attrs()) as w:
                    action(w)
            self.assertIn(message, str(cm.exception))
            self.assertIn(p, str(cm.exception))
            self.assertEqual("\n" in str(cm.exception), False)
            self.assertFalse(os.path.exists(p))
        self.assertEqual(os.listdir(self.dir), [])
        for kw, message in [({"regime": "mine"}, "regime must be one of"), ({"step": "7"}, "step must be an int"),
                            ({"dtype": "float64"}, "dtype must be"), ({"shard": (2, 2)}, "0 <= rank < world"),
                            ({"positions": None}, "positions are required")]:
            with self.assertRaises(bwact.BwactError) as cm:
                bwact.Writer(self.path("x.h5"), **attrs(**kw))
            self.assertIn(message, str(cm.exception))
        with self.assertRaises(bwact.BwactError) as cm:
            with bwact.Writer(self.path("be.h5"), **attrs(block_ends=[1, 3])) as w:
                w.add(good, {"cls": [0, 1]})
        self.assertIn("block_ends [1, 3]", str(cm.exception))

    @need_bwanalyze
    def test_bwanalyze_validates_written_files(self):
        p = self.write("v.h5", random_batches(np.random.default_rng(4), 9, 4))
        r = run_bwanalyze("validate", p)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)



def write_arrays(path, layers, labels, ids=None, batch=7, **kw):
    """Writes whole arrays with the Writer, in batches of `batch` clips."""
    with bwact.Writer(path, **attrs(**kw)) as w:
        for i in range(0, len(layers[0]), batch):
            w.add([x[i:i + batch] for x in layers], {k: v[i:i + batch] for k, v in labels.items()},
                  clip_ids=None if ids is None else ids[i:i + batch])
    return path


def one_line_error(test, result, *fragments):
    test.assertEqual(result.returncode, 1, result.stdout + result.stderr)
    lines = result.stderr.strip().splitlines()
    test.assertEqual(len(lines), 1, result.stderr)
    for fragment in fragments:
        test.assertIn(fragment, lines[0])


RECIPES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "docs", "pytorch-recipes.md")


def doc_block(first_line):
    """The one ```python block of docs/pytorch-recipes.md that starts with `first_line`, after as many
    empty lines as precede it in the file (so that a traceback names the document's line)."""
    with open(RECIPES) as fh:
        parts = fh.read().split("```python\n")
    found = []
    for i, part in enumerate(parts[1:], start=1):
        if part.startswith(first_line):
            before = sum(p.count("\n") for p in parts[:i]) + i
            found.append("\n" * before + part.split("```")[0])
    if len(found) != 1:
        raise AssertionError(f"{RECIPES}: {len(found)} python blocks start with {first_line!r}")
    return found[0]


class DocumentationTests(TempDir):
    """The recipes' code blocks run as written, with only their free names bound."""

    def run_block(self, block, **names):
        """Runs `block` in the temporary folder with only `names` defined; returns its globals and output."""
        import contextlib
        cwd = os.getcwd()
        os.chdir(self.dir)
        out = io.StringIO()
        scope = dict(names)
        try:
            with contextlib.redirect_stdout(out):
                exec(compile(block, RECIPES, "exec"), scope)
        finally:
            os.chdir(cwd)
        return scope, out.getvalue()

    def test_recipe_writer_example_runs_and_validates(self):
        _, out = self.run_block(doc_block("import numpy as np\nimport bwact\n"))
        self.assertEqual(out, "(40, 32, 24)\n")
        if BWANALYZE:
            r = run_bwanalyze("validate", self.path("my-run.h5"))
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)

    @need_models
    def test_hugging_face_recipe_runs_as_written(self):
        import small_models as sm
        checkpoint_dir = sm.save_videomae(self.path("checkpoint"), seed=12)
        data = sm.batches(6, 4, sm.video_shape(), seed=13)
        scope, _ = self.run_block(doc_block("from pathlib import Path\nfrom transformers import VideoMAEModel\n"),
                                  batches=data, checkpoint_dir=checkpoint_dir)
        model = scope["model"]
        self.assertEqual(model.config._attn_implementation, "eager")
        self.check_recording(self.path("runs/videomae/ucf101-step000000.h5"), data, prefix=0, clips=6, own=lambda v: (
            lambda o: (o.hidden_states, o.attentions))(model(pixel_values=v, output_hidden_states=True, output_attentions=True)))

    @need_models
    def test_timm_recipe_runs_as_written(self):
        import small_models as sm
        checkpoint_dir = sm.save_timm_vit(self.path("checkpoint"), seed=14)
        data = sm.batches(5, 3, sm.image_shape(sm.TIMM_SIZE), seed=15)
        scope, _ = self.run_block(doc_block("from pathlib import Path\nimport timm\n"), batches=data, checkpoint_dir=checkpoint_dir)
        model = scope["model"]
        self.assertEqual(model.patch_embed.img_size, (sm.TIMM_SIZE, sm.TIMM_SIZE))
        reference = sm.timm_vit(seed=14)
        for name, value in reference.state_dict().items():
            torch.testing.assert_close(model.state_dict()[name], value, rtol=0, atol=0, msg=name)

        def own(images):  # the blocks run by hand, and each block's softmax weights recomputed
            x = model.norm_pre(model.patch_drop(model._pos_embed(model.patch_embed(images))))
            xs, ws = [x], []
            for b in model.blocks:
                a, h = b.attn, b.norm1(x)
                q, k, _ = a.qkv(h).reshape(len(h), h.shape[1], 3, a.num_heads, a.head_dim).permute(2, 0, 3, 1, 4).unbind(0)
                ws.append(((a.q_norm(q) * a.scale) @ a.k_norm(k).transpose(-2, -1)).softmax(dim=-1))
                x = b(x)
                xs.append(x)
            return xs, ws
        self.check_recording(self.path("runs/vit/frames-step000000.h5"), data, prefix=1, clips=5, own=own)

    def check_recording(self, path, data, prefix, clips, own):
        """The file's depths equal the model's own (exactly) and its attention the model's weights."""
        with torch.no_grad():
            runs = [own(x) for x, _, _ in data]
        with bwact.open(path) as f:
            self.assertEqual(f.depths, list(range(len(runs[0][0]))))
            for d in f.depths:
                np.testing.assert_array_equal(f.tokens(d), np.concatenate([r[0][d][:, prefix:].numpy() for r in runs]),
                                              err_msg=f"depth {d}")
            for d in f.depths[1:]:
                want = []
                for r in runs:
                    a = r[1][d - 1].float()
                    if prefix:
                        a = a[:, :, prefix:, prefix:]
                        a = a / a.sum(dim=-1, keepdim=True).clamp_min(1e-30)
                    want.append(a.numpy())
                np.testing.assert_array_equal(f.attention(d), np.concatenate(want)[:clips], err_msg=f"attention {d}")
            np.testing.assert_array_equal(f.labels("motion"), np.concatenate([y["motion"].numpy() for _, y, _ in data]))
        if BWANALYZE:
            r = run_bwanalyze("validate", path)
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)


@need_bwanalyze
class ClipIdTests(TempDir):
    """Two runs over the same clips in different orders: aligned by clip id, refused without ids."""

    def setUp(self):
        super().setUp()
        rng = np.random.default_rng(5)
        n = 30
        self.a = [rng.standard_normal((n, 8, 5)).astype(np.float32) for _ in range(3)]
        self.b = [(rng.standard_normal((n, 8, 5)) + 0.5 * self.a[k]).astype(np.float32) for k in range(3)]
        self.labels = {"cls": np.arange(n) % 3}
        self.ids = np.arange(1000, 1000 + n)
        self.perm = rng.permutation(n)

    def permuted(self, name, ids=True):
        p = self.perm
        return write_arrays(self.path(name), [x[p] for x in self.b], {"cls": self.labels["cls"][p]},
                            self.ids[p] if ids else None)

    def test_reordered_clips_with_ids_give_the_aligned_cka(self):
        a = write_arrays(self.path("a.h5"), self.a, self.labels, self.ids)
        aligned = write_arrays(self.path("b.h5"), self.b, self.labels, self.ids)
        shuffled = self.permuted("b-shuffled.h5")
        want = cka_csv(a, aligned)
        got = cka_csv(a, shuffled)
        self.assertEqual(sorted(got), sorted(want))
        for key, value in want.items():
            self.assertAlmostEqual(got[key], value, delta=1e-10, msg=str(key))
            expected = linear_cka(self.a[key[0]].astype(np.float64).mean(1), self.b[key[1]].astype(np.float64).mean(1))
            self.assertAlmostEqual(value, expected, delta=1e-10, msg=str(key))
        # the other way round: A is aligned to the shuffled file's order
        back = cka_csv(shuffled, a)
        for (da, db), value in want.items():
            self.assertAlmostEqual(back[(db, da)], value, delta=1e-10)
        self.assertEqual(run_bwanalyze("validate", shuffled).returncode, 0)

    def test_without_ids_different_labels_are_refused(self):
        a = write_arrays(self.path("a.h5"), self.a, self.labels)
        shuffled = self.permuted("b-shuffled.h5", ids=False)
        one_line_error(self, run_bwanalyze("cka", a, shuffled), "do not hold the same clips", "labels 'cls' differ")
        # ids in one file only: the label check still applies
        a_ids = write_arrays(self.path("a-ids.h5"), self.a, self.labels, self.ids)
        one_line_error(self, run_bwanalyze("cka", a_ids, shuffled), "labels 'cls' differ")

    def test_different_id_sets_are_refused_with_the_first_differing_id(self):
        a = write_arrays(self.path("a.h5"), self.a, self.labels, self.ids)
        other = self.ids.copy()
        other[self.perm[4]] = 7
        b = write_arrays(self.path("b.h5"), self.b, self.labels, other)
        one_line_error(self, run_bwanalyze("cka", a, b), f"clip id '{self.ids[self.perm[4]]}' of {a} is not in {b}")
        one_line_error(self, run_bwanalyze("cka", b, a), f"clip id '7' of {b} is not in {a}")

    def test_validate_refuses_repeated_or_misshapen_ids(self):
        p = write_arrays(self.path("a.h5"), self.a, self.labels, self.ids)
        with h5py.File(p, "a") as f:
            ids = f["clip_ids"][()]
            ids[3] = ids[0]
            f["clip_ids"][...] = ids
        r = run_bwanalyze("validate", p)
        self.assertEqual(r.returncode, 1)
        self.assertIn("/clip_ids", r.stdout + r.stderr)
        self.assertIn("more than once", r.stdout + r.stderr)
        with h5py.File(p, "a") as f:
            del f["clip_ids"]
            f["clip_ids"] = np.arange(5)
        r = run_bwanalyze("validate", p)
        self.assertEqual(r.returncode, 1)
        self.assertIn("expected [30]", r.stdout + r.stderr)


@need_bwanalyze
class ShardTests(TempDir):
    """One run written as shards (one per rank) and indexed: one file for bwanalyze and h5py."""

    def setUp(self):
        super().setUp()
        rng = np.random.default_rng(6)
        self.n = 25
        self.layers = [rng.standard_normal((self.n, 8, 5)).astype(np.float32) + k for k in range(3)]
        self.labels = {"cls": np.arange(self.n) % 3, "other": np.arange(self.n) % 2}
        self.ids = [f"clip-{i:03d}" for i in range(self.n)]
        self.bounds = [(0, 9), (9, 17), (17, 25)]
        os.mkdir(self.path("run"))

    def shard(self, rank, world=3, **kw):
        lo, hi = self.bounds[rank]
        return write_arrays(self.path(f"run/shard-rank{rank}.h5"), [x[lo:hi] for x in self.layers],
                            {k: v[lo:hi] for k, v in self.labels.items()}, self.ids[lo:hi], batch=4,
                            shard=(rank, world), **kw)

    def index(self):
        shards = [self.shard(r) for r in (2, 0, 1)]
        order = bwact.index_shards(self.path("run/index.h5"), shards)
        self.assertEqual([os.path.basename(s) for s in order], ["shard-rank0.h5", "shard-rank1.h5", "shard-rank2.h5"])
        return self.path("run/index.h5")

    def test_shards_read_as_one_file_give_the_same_numbers(self):
        whole = write_arrays(self.path("whole.h5"), self.layers, self.labels, self.ids)
        index = self.index()
        r = run_bwanalyze("validate", index)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        with h5py.File(index, "r") as f:
            ds = f["layers/01/tokens"]
            self.assertTrue(ds.is_virtual)
            self.assertEqual(sorted({s.file_name for s in ds.virtual_sources()}),
                             ["shard-rank0.h5", "shard-rank1.h5", "shard-rank2.h5"])
            self.assertNotIn("shard_rank", f.attrs)
        r = run_bwanalyze("inspect", index)
        self.assertIn("3 files behind virtual datasets: shard-rank0.h5, shard-rank1.h5, shard-rank2.h5", r.stdout)
        self.assertIn("N = 25 clips", r.stdout)
        self.assertIn("clip ids   yes", r.stdout)
        got, want = bwact.read(index), bwact.read(whole)
        for x, y in zip(got["layers"], want["layers"]):
            np.testing.assert_array_equal(x, y)
        self.assertEqual(got["clip_ids"], self.ids)
        np.testing.assert_array_equal(got["labels"]["other"], self.labels["other"])
        other = write_arrays(self.path("other.h5"), [x[:, ::-1] ** 2 for x in self.layers], self.labels, self.ids)
        self.assertEqual(cka_csv(index, other), cka_csv(whole, other))
        self.assertEqual(cka_csv(index), cka_csv(whole))
        # sharded against reordered: a shuffled copy of the other run, matched by clip id
        p = np.random.default_rng(7).permutation(self.n)
        shuffled = write_arrays(self.path("other-shuffled.h5"), [x[:, ::-1][p] ** 2 for x in self.layers],
                                {k: v[p] for k, v in self.labels.items()}, [self.ids[i] for i in p])
        got = cka_csv(index, shuffled)
        for key, value in cka_csv(whole, other).items():
            self.assertAlmostEqual(got[key], value, delta=1e-10, msg=str(key))
        # the folder moves as a whole: the index names its shards relative to itself
        shutil.move(self.path("run"), self.path("moved"))
        self.assertEqual(cka_csv(self.path("moved/index.h5"), other), cka_csv(whole, other))

    def test_missing_shard_is_an_error(self):
        index = self.index()
        os.remove(self.path("run/shard-rank1.h5"))
        r = run_bwanalyze("validate", index)
        self.assertEqual(r.returncode, 1)
        self.assertIn("shard-rank1.h5", r.stdout)
        self.assertIn("missing", r.stdout)
        one_line_error(self, run_bwanalyze("cka", index), "shard-rank1.h5", "missing")

    def test_validate_checks_the_shards_themselves(self):
        index = self.index()
        with h5py.File(self.path("run/shard-rank2.h5"), "a") as f:
            f.attrs["regime"] = "sometimes"
        r = run_bwanalyze("validate", index)
        self.assertEqual(r.returncode, 1)
        self.assertIn("shard-rank2.h5: / attr regime", r.stdout)
        # a shard changed after indexing no longer agrees with the index
        with h5py.File(self.path("run/shard-rank2.h5"), "a") as f:
            f.attrs["regime"] = "external"
            f.attrs["step"] = np.int64(99)
        r = run_bwanalyze("validate", index)
        self.assertEqual(r.returncode, 1)
        self.assertIn("shard-rank2.h5: / attr step: is 99 in this shard but 7 in the index", r.stdout)

    def test_index_refuses_shards_that_disagree(self):
        cases = [
            (dict(step=8), "attribute step is 8"),
            (dict(block_ends=[2]), "attribute block_ends is [2]"),
        ]
        for kw, message in cases:
            shards = [self.shard(0), self.shard(1, **kw), self.shard(2)]
            r = subprocess.run([sys.executable, "-m", "bwact", "index", self.path("run/index.h5"), *shards],
                               capture_output=True, text=True)
            one_line_error(self, r, shards[1], message)
            self.assertFalse(os.path.exists(self.path("run/index.h5")))
        lo, hi = self.bounds[2]
        odd = write_arrays(self.path("run/odd.h5"), [x[lo:hi, :4] for x in self.layers],
                           {k: v[lo:hi] for k, v in self.labels.items()}, ["x", "y", "z", "w", "v", "u", "t", "s"],
                           shard=(2, 3), positions=bwact.grid_positions((1, 2, 4), (2, 4, 4)))
        with self.assertRaises(bwact.BwactError) as cm:
            bwact.index_shards(self.path("run/index.h5"), [self.shard(0), self.shard(1), odd])
        self.assertIn(f"{odd}: T, D = 4, 5", str(cm.exception))
        self.ids[10] = self.ids[2]
        shards = [self.shard(0), self.shard(1), self.shard(2)]
        with self.assertRaises(bwact.BwactError) as cm:
            bwact.index_shards(self.path("run/index.h5"), shards)
        self.assertIn(f"{shards[1]}: clip id 'clip-002' also occurs in shard {shards[0]}", str(cm.exception))
        with self.assertRaises(bwact.BwactError) as cm:
            bwact.index_shards(self.path("run/index.h5"), shards[:2])
        self.assertIn("rank 2 is missing", str(cm.exception))
        self.assertEqual(sorted(os.listdir(self.path("run"))), ["odd.h5", "shard-rank0.h5", "shard-rank1.h5", "shard-rank2.h5"])

    def test_report_reads_an_index_and_its_shards_as_one_run(self):
        index = self.index()
        r = run_bwanalyze("report", self.path("run"), "--out", self.path("report"), "--quick", "--quiet")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        with open(self.path("report/metrics.csv")) as fh:
            rows = list(csv.DictReader(fh))
        files = {row["file"] for row in rows}
        self.assertEqual(files, {index})

# A small video ViT, written here: tubelet embedding, pre-LN blocks, attention that can return weights.
if torch is not None:
    class Attention(torch.nn.Module):
        def __init__(self, dim, heads):
            super().__init__()
            self.heads = heads
            self.qkv = torch.nn.Linear(dim, 3 * dim)
            self.proj = torch.nn.Linear(dim, dim)

        def forward(self, x):
            b, t, d = x.shape
            q, k, v = self.qkv(x).reshape(b, t, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
            w = torch.softmax(q @ k.transpose(-2, -1) / (d // self.heads) ** 0.5, dim=-1)
            return self.proj((w @ v).transpose(1, 2).reshape(b, t, d)), w

    class Block(torch.nn.Module):
        def __init__(self, dim, heads):
            super().__init__()
            self.norm1 = torch.nn.LayerNorm(dim)
            self.attn = Attention(dim, heads)
            self.norm2 = torch.nn.LayerNorm(dim)
            self.mlp = torch.nn.Sequential(torch.nn.Linear(dim, 4 * dim), torch.nn.GELU(), torch.nn.Linear(4 * dim, dim))
            self.return_weights = False

        def forward(self, x):
            a, w = self.attn(self.norm1(x))
            x = x + a
            x = x + self.mlp(self.norm2(x))
            return (x, w) if self.return_weights else x

    class Embedding(torch.nn.Module):
        def __init__(self, dim, tubelet, tokens):
            super().__init__()
            self.proj = torch.nn.Conv3d(3, dim, kernel_size=tubelet, stride=tubelet)
            self.pos = torch.nn.Parameter(0.02 * torch.randn(1, tokens, dim))

        def forward(self, video):  # video [B, C, F, H, W]
            return self.proj(video).flatten(2).transpose(1, 2) + self.pos

    class TinyVideoViT(torch.nn.Module):
        def __init__(self, dim=16, heads=2, depth=3, tubelet=(2, 4, 4), size=(4, 8, 8)):
            super().__init__()
            tokens = (size[0] // tubelet[0]) * (size[1] // tubelet[1]) * (size[2] // tubelet[2])
            self.embed = Embedding(dim, tubelet, tokens)
            self.blocks = torch.nn.ModuleList(Block(dim, heads) for _ in range(depth))
            self.norm = torch.nn.LayerNorm(dim)
            self.dropout = torch.nn.Dropout(0.5)

        def set_return_weights(self, on):
            for b in self.blocks:
                b.return_weights = on

        def forward(self, video):
            x = self.dropout(self.embed(video))
            for b in self.blocks:
                x = b(x)
                x = x[0] if isinstance(x, tuple) else x
            return self.norm(x)


def video_batches(n, batch, seed, order=None):
    g = torch.Generator().manual_seed(seed)
    videos = torch.randn(n, 3, 4, 8, 8, generator=g)
    labels = torch.arange(n) % 4
    ids = np.arange(100, 100 + n)
    order = np.arange(n) if order is None else np.asarray(order)
    for i in range(0, n, batch):
        j = order[i:i + batch]
        yield videos[j], {"motion": labels[j]}, ids[j]


@need_torch
class RecorderTests(TempDir):
    def model(self, seed):
        torch.manual_seed(seed)
        return TinyVideoViT()

    def record(self, name, model, n=24, batch=5, seed=0, order=None, **kw):
        from bwact.torch import record
        model.set_return_weights(True)
        return record(model, [model.embed, *model.blocks], video_batches(n, batch, seed, order), self.path(name),
                      tubelet=(2, 4, 4), input_size=(4, 8, 8), run=name, probe_set="toy", block_ends=[1, 3],
                      attention="outputs", attention_clips=7, config={"dim": 16}, **kw)

    def reference(self, model, n=24, seed=0):
        """Every depth computed by hand from the model's parts, outside the recorder."""
        model.eval()
        with torch.no_grad():
            videos = next(video_batches(n, n, seed))[0]
            xs = [model.embed(videos)]
            ws = []
            for b in model.blocks:
                x, w = b.attn(b.norm1(xs[-1]))
                h = xs[-1] + x
                xs.append(h + b.mlp(b.norm2(h)))
                ws.append(w)
        return [x.numpy() for x in xs], [w.numpy() for w in ws]

    def test_capture_validates_and_cka_matches_numpy(self):
        model_a, model_b = self.model(1), self.model(2)
        model_a.train()
        self.assertEqual(self.record("run-a.h5", model_a), 24)
        self.assertTrue(model_a.training, "the recorder restores the model's mode")
        self.record("run-b.h5", model_b)
        ref, weights = self.reference(model_a)
        with bwact.open(self.path("run-a.h5")) as f:
            self.assertEqual(f.shape, (24, 8, 16))
            self.assertEqual(f.depths, [0, 1, 2, 3])
            for d in f.depths:
                np.testing.assert_allclose(f.tokens(d), ref[d], rtol=0, atol=2e-5)
            for d in (1, 2, 3):
                a = f.attention(d)
                self.assertEqual(a.shape, (7, 2, 8, 8))
                np.testing.assert_allclose(a, weights[d - 1][:7], atol=2e-6)
                np.testing.assert_allclose(a.sum(-1), 1, atol=1e-5)
            np.testing.assert_array_equal(f.clip_ids(), np.arange(100, 124))
            np.testing.assert_array_equal(f.labels("motion"), np.arange(24) % 4)
            self.assertEqual(f.positions()[-1].tolist(), [2.5, 5.5, 5.5])
        self.assertFalse(any(m._forward_hooks for m in model_a.modules()), "hooks are removed")
        if not BWANALYZE:
            return
        for name in ("run-a.h5", "run-b.h5"):
            r = run_bwanalyze("validate", self.path(name))
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        got = cka_csv(self.path("run-a.h5"), self.path("run-b.h5"))
        a, b = bwact.read(self.path("run-a.h5")), bwact.read(self.path("run-b.h5"))
        self.assertEqual(len(got), 16)
        for (da, db), value in got.items():
            expected = linear_cka(a["layers"][da].astype(np.float64).mean(1), b["layers"][db].astype(np.float64).mean(1))
            self.assertAlmostEqual(value, expected, delta=1e-10, msg=f"depths {da}, {db}")
        self.assertLess(min(got.values()), 0.999, "different models give CKA below 1")

    def test_attention_from_attention_modules(self):
        model = self.model(4)
        from bwact.torch import record
        n = record(model, [model.embed, *model.blocks], video_batches(9, 4, 1), self.path("m.h5"),
                   tubelet=(2, 4, 4), input_size=(4, 8, 8), run="m", probe_set="toy",
                   attention=[b.attn for b in model.blocks], attention_clips=5)
        self.assertEqual(n, 9)
        ref, weights = self.reference(model, n=9, seed=1)
        with bwact.open(self.path("m.h5")) as f:
            for d in (1, 2, 3):
                np.testing.assert_allclose(f.attention(d), weights[d - 1][:5], atol=2e-6)
            np.testing.assert_allclose(f.tokens(3), ref[3], atol=2e-5)

    def test_hooks_removed_and_no_file_on_error(self):
        from bwact.torch import record
        model = self.model(3)

        def broken():
            yield from video_batches(10, 5, 0)
            raise OSError("the clip reader failed")

        with self.assertRaises(OSError):
            record(model, [model.embed, *model.blocks], broken(), self.path("x.h5"),
                   tubelet=(2, 4, 4), input_size=(4, 8, 8), run="x", probe_set="toy")
        self.assertFalse(any(m._forward_hooks for m in model.modules()))
        self.assertEqual(os.listdir(self.dir), [])
        with self.assertRaises(bwact.BwactError) as cm:
            record(model, [model.embed, *model.blocks], video_batches(10, 5, 0), self.path("y.h5"),
                   tubelet=(2, 2, 2), input_size=(4, 8, 8), run="y", probe_set="toy")
        self.assertIn("gives 32", str(cm.exception))
        self.assertFalse(any(m._forward_hooks for m in model.modules()))
        self.assertEqual(os.listdir(self.dir), [])


if __name__ == "__main__":
    unittest.main()
