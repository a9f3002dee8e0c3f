"""Command line: `python -m bwact index OUT.h5 SHARD.h5...` (or the `bwact` script)."""
import argparse
import sys

from .shards import index_shards
from .writer import BwactError


def main(argv=None):
    parser = argparse.ArgumentParser(prog="bwact", description="bwact/1 activation files")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("index", help="write one bwact/1 file (HDF5 virtual datasets) over the shards of a run")
    p.add_argument("out", help="the index file to write, normally in the shards' folder")
    p.add_argument("shards", nargs="+", help="the shard files (ordered by their shard_rank attribute)")
    args = parser.parse_args(argv)
    try:
        order = index_shards(args.out, args.shards)
    except BwactError as e:
        print(f"bwact: {e}", file=sys.stderr)
        return 1
    print(f"{args.out}: index over {len(order)} shard{'s' if len(order) != 1 else ''}: {', '.join(order)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
