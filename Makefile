# Entry points; each installs what it needs (scripts/setup.sh) on a fresh Debian/Ubuntu machine.
.PHONY: all build test demo fixtures clean

all: build

build:
	bash scripts/setup.sh
	swift build -c release

test:
	bash scripts/test.sh

demo:
	bash scripts/demo.sh

# Regenerates the committed fixtures (they must not change: tests compare them).
fixtures: build
	.build/release/bwanalyze fixtures --out Fixtures

clean:
	rm -rf .build
