"""The polars peer of bench/scale.ts: the same count records moescope's engines compute — assignments per
(step, MoE layer, expert) over every Parquet file of a dataset — with polars' streaming engine, then MaxVio per
layer from them (to check the numbers agree). Prints one JSON line.

    python3 bench/scale_polars.py DATASET_FOLDER TOP_K
"""
import glob
import json
import sys
import time

import numpy as np
import polars as pl


def main() -> None:
    root, k = sys.argv[1], int(sys.argv[2])
    t0 = time.perf_counter()
    files = sorted(glob.glob(f"{root}/**/*.parquet", recursive=True))
    lf = pl.scan_parquet(files, hive_partitioning=False).select(pl.col("step").fill_null(0), pl.col("experts"))
    counts = (
        lf.with_columns(pl.int_ranges(0, pl.col("experts").list.len()).alias("slot"))
        .explode(["experts", "slot"])
        .group_by(pl.col("step"), (pl.col("slot") // k).alias("layer"), pl.col("experts").alias("expert"))
        .agg(pl.len().alias("n"))
        .collect(engine="streaming")
    )
    seconds = time.perf_counter() - t0
    per = counts.group_by("layer", "expert").agg(pl.col("n").sum()).sort("layer", "expert")
    layers = int(per["layer"].max()) + 1
    experts = int(per["expert"].max()) + 1
    load = np.zeros((layers, experts))
    load[per["layer"].to_numpy(), per["expert"].to_numpy()] = per["n"].to_numpy()
    mean = load.sum(axis=1) / experts
    max_vio = ((load.max(axis=1) - mean) / mean).tolist()
    print(json.dumps({"seconds": seconds, "rows": counts.height, "assignments": float(load.sum()), "maxVio": max_vio}))


if __name__ == "__main__":
    main()
