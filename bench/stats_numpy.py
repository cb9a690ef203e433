"""
numpy baseline for bench/stats.ts: the same load metrics over the same trace file.
Usage: python3 bench/stats_numpy.py TRACE   → one JSON line on stdout.
Reads the Arrow IPC stream memory-mapped with pyarrow and counts experts per layer with np.bincount.
"""
import json
import sys
import time

import numpy as np
import pyarrow as pa
import pyarrow.ipc as ipc


def main(path):
    t0 = time.perf_counter()
    count_s = 0.0
    with pa.memory_map(path) as src:
        reader = ipc.open_stream(src)
        header = json.loads(reader.schema.metadata[b"moescope"])
        schema = header["schema"]
        L, E, K = len(schema["layers"]), schema["experts"], schema["topK"]
        offs = np.repeat(np.arange(L, dtype=np.intp) * E, K)  # layer offset of each of the L·K slots
        counts = np.zeros(L * E, dtype=np.int64)
        tokens = 0
        for batch in reader:
            col = batch.column("experts")
            n = len(col)
            ex = col.flatten().to_numpy().reshape(n, L * K)
            t1 = time.perf_counter()
            counts += np.bincount((ex.astype(np.intp) + offs).ravel(), minlength=L * E)
            count_s += time.perf_counter() - t1
            tokens += n
    t2 = time.perf_counter()
    load = counts.reshape(L, E).astype(np.float64)
    mean = load.sum(axis=1, keepdims=True) / E
    share = load / load.sum(axis=1, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        plogp = np.where(share > 0, share * np.log(share), 0.0)
    metrics = dict(
        cv=(load.std(axis=1) / mean[:, 0]).tolist(),
        maxVio=((load.max(axis=1) - mean[:, 0]) / mean[:, 0]).tolist(),
        entropy=(-plogp.sum(axis=1) / np.log(E)).tolist(),
        dead=(load == 0).sum(axis=1).tolist(),
    )
    metrics_s = time.perf_counter() - t2
    print(json.dumps(dict(
        tokens=tokens,
        totalSeconds=time.perf_counter() - t0,
        countSeconds=count_s,
        metricsSeconds=metrics_s,
        load=counts.tolist(),
        **metrics,
    )))


if __name__ == "__main__":
    main(sys.argv[1])
