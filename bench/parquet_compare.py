"""
For bench/commands.ts: whether two Parquet files hold the same routing — rows, and the `experts` ids of every
row equal (moescope's export and pyarrow's, read back with pyarrow). Usage: python3 bench/parquet_compare.py A B
→ one JSON line: rows of each, whether the expert ids are equal, each file's bytes.
"""
import json
import os
import sys

import numpy as np
import pyarrow.parquet as pq


def experts(path):
    f = pq.ParquetFile(path)
    parts = [b.column("experts").flatten().to_numpy() for b in f.iter_batches(columns=["experts"])]
    return f.metadata.num_rows, np.concatenate(parts) if parts else np.zeros(0)


def main(a, b):
    ra, ea = experts(a)
    rb, eb = experts(b)
    print(json.dumps(dict(rows=[ra, rb], expertsEqual=bool(ea.shape == eb.shape and np.array_equal(ea, eb)),
                          bytes=[os.path.getsize(a), os.path.getsize(b)])))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
