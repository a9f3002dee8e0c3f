# Entry points; each installs what it needs (scripts/setup.sh) on a fresh Debian/Ubuntu machine.
.PHONY: all build test test-models fuzz demo reproduce reproduce-quick fixtures clean bench-torch bench-analysis bench-mpi

all: build

build:
	bash scripts/setup.sh
	swift build -c release

test:
	bash scripts/test.sh

# The bwact package's tests on PyPI's torch 2.x, transformers 5.x and timm 1.x, in their own venv
# (.build/models-venv; the first run downloads about 3.1 GB). Not run by CI (docs/pytorch-recipes.md).
test-models:
	bash scripts/test-models.sh

# Hostile input: 3,000 fresh mutants (byte- and structure-level) of the fixtures, of python/bwact files and
# of a shard index, through validate and one other command each in turn, a third of them bwtrain's
# checkpoints and clip files (docs/hostile-input.md). MUTANTS, SEED (default: the clock), JOBS and
# PER_MUTANT (commands besides validate) override; ALL=1 runs every command.
fuzz:
	bash scripts/setup.sh
	swift build -c release --product bwanalyze
	swift build -c release --product bwtrain
	/usr/bin/python3 scripts/fuzz.py --binary .build/release/bwanalyze --bwtrain .build/release/bwtrain --fixtures Fixtures \
		--mutants $${MUTANTS:-3000} --seed $${SEED:-$$(date +%s)} --jobs $${JOBS:-2} \
		--commands-per-mutant $${PER_MUTANT:-1} $${ALL:+--all-commands} --keep fuzz-failures

# The main job: train e2e, simultaneous and sequential at K = 4 and simultaneous at K = 6 on the
# default preset, once per seed (SEEDS, default 0 1 2), dump activations and write the report
# (notebooks-export/; other seeds report under runs/default/report-seeds-*). Resumes and skips.
SEEDS ?= 0 1 2
reproduce:
	PRESET=default SEEDS="$(SEEDS)" bash scripts/reproduce.sh

# The same pipeline on the quick preset (a few minutes); report under runs/quick/report.
reproduce-quick:
	PRESET=quick SEEDS="$(SEEDS)" bash scripts/reproduce.sh

demo:
	bash scripts/demo.sh

# Regenerates the committed fixtures (they must not change: tests compare them).
fixtures: build
	.build/release/bwanalyze fixtures --out Fixtures

clean:
	rm -rf .build

# Side-by-side training throughput (issue 9): bwtrain bench beside a PyTorch CPU implementation of the
# same model on four frozen configurations, in one run. Needs PyTorch (not a test dependency).
bench-torch:
	swift build -c release --product bwtrain
	python3 bench/torch_reference.py --bwtrain .build/release/bwtrain $(BENCH_ARGS)

# Side-by-side analysis suite (issue 10): bwanalyze beside a numpy/scikit-learn implementation of the same
# metrics on a generated paper-scale file (2.97 GB, in a temporary folder, removed after), in one run.
# Needs numpy, h5py and scikit-learn (Debian's python3-sklearn). BENCH_ARGS="--scale small" for a smoke run.
bench-analysis:
	swift build -c release --product bwanalyze
	/usr/bin/python3 bench/analysis_benchmark.py --bwanalyze .build/release/bwanalyze $(BENCH_ARGS)

# R = 1 and R = 2 ranks (one BLAS thread each) for bwanalyze cka --pool tokens, probe and report on a
# generated 436 MB file and for bwtrain bench, in wall seconds (docs/mpi.md). Measure on an idle machine.
# Sizes and rank counts through the environment (CLIPS, TOKENS, FEATURES, LAYERS, RANKS), see the script.
bench-mpi:
	bash scripts/setup.sh
	bash scripts/bench-mpi.sh
