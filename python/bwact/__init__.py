"""Write and read bwact/1 activation files for bwanalyze (bwssl-suite).

- `Writer`: a streaming, atomic writer (one batch of clips at a time).
- `bwact.torch.record`: record a PyTorch model's per-depth outputs with forward hooks (needs torch).
- `bwact.torch.layers_of`: the embedding, layers and prefix-token count of Hugging Face VideoMAE/ViT and timm ViTs.
- `open` / `read`: read a file (or a shard index) into numpy arrays.
- `index_shards`: make one file of a run written as shards (HDF5 virtual datasets).
- `grid_positions`: token centres of a tubelet grid, for /positions.
"""
from .reader import File, open, read  # noqa: A004
from .shards import index_shards
from .writer import FORMAT_VERSION, BwactError, Writer, grid_positions

__all__ = ["BwactError", "File", "FORMAT_VERSION", "Writer", "grid_positions", "index_shards", "open", "read"]
__version__ = "0.1.0"
