"""The polars peer of bench/scale.ts: the same count records moescope's engines compute — assignments per
(step, MoE layer, expert) over every Parquet file of a dataset — with polars' streaming engine, then MaxVio per
layer from them (to check the numbers agree). Prints one JSON line.

    python3 bench/scale_polars.py DATASET_FOLDER TOP_K [--per-file]

--per-file: one streaming query per file, their counts summed after. The one query over all files holds memory
that grows with the dataset (past 15 GB RSS at 10 M DeepSeek-scale tokens, bench/RESULTS.md); file by file it is
bounded by the largest file — what a polars user with that much data would write.
"""
import glob
import json
import sys
import time

import numpy as np
import polars as pl


def main() -> None:
    root, k = sys.argv[1], int(sys.argv[2])
    per_file = "--per-file" in sys.argv[3:]
    t0 = time.perf_counter()
    files = sorted(glob.glob(f"{root}/**/*.parquet", recursive=True))

    def count(paths: list[str]) -> pl.DataFrame:
        lf = pl.scan_parquet(paths, hive_partitioning=False).select(pl.col("step").fill_null(0), pl.col("experts"))
        return (
            lf.with_columns(pl.int_ranges(0, pl.col("experts").list.len()).alias("slot"))
            .explode(["experts", "slot"])
            .group_by(pl.col("step"), (pl.col("slot") // k).alias("layer"), pl.col("experts").alias("expert"))
            .agg(pl.len().alias("n"))
            .collect(engine="streaming")
        )

    if per_file:
        counts = pl.concat([count([f]) for f in files]).group_by("step", "layer", "expert").agg(pl.col("n").sum())
    else:
        counts = count(files)
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
