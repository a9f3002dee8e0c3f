"""RSA values from rsatoolbox itself, for the Swift tests: random clip vectors X, Y (seeded), their RDMs
from rsatoolbox.rdm.calc_rdm and the comparisons from rsatoolbox.rdm.compare.

Usage: rsatoolbox_check.py SEED N DX DY. Prints JSON: the matrices and {rdm}_{comparison} values.
"""
import json
import sys
from importlib import metadata

import numpy as np
import rsatoolbox

seed, n, dx, dy = (int(a) for a in sys.argv[1:5])
rng = np.random.default_rng(seed)
x = rng.standard_normal((n, dx))
y = x @ rng.standard_normal((dx, dy)) + rng.standard_normal((n, dy))
values = {}
for method in ("correlation", "euclidean"):
    rx = rsatoolbox.rdm.calc_rdm(rsatoolbox.data.Dataset(x), method=method)
    ry = rsatoolbox.rdm.calc_rdm(rsatoolbox.data.Dataset(y), method=method)
    for comparison, name in (("spearman", "spearman"), ("tau-a", "kendall")):
        values[f"{method}_{name}"] = float(np.asarray(rsatoolbox.rdm.compare(rx, ry, method=comparison)).ravel()[0])
print(json.dumps({"x": x.ravel().tolist(), "y": y.ravel().tolist(), "values": values, "version": metadata.version("rsatoolbox")}))
