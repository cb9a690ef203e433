"""The load count of bench/stats_numpy.py as a function, for the peers that need it (diff_numpy.py)."""
import json

import numpy as np
import pyarrow as pa
import pyarrow.ipc as ipc


def count_load(path):
    """(L × E float64 load counts, tokens) of a trace: pyarrow memory-map + np.bincount."""
    with pa.memory_map(path) as src:
        reader = ipc.open_stream(src)
        schema = json.loads(reader.schema.metadata[b"moescope"])["schema"]
        L, E, K = len(schema["layers"]), schema["experts"], schema["topK"]
        offs = np.repeat(np.arange(L, dtype=np.intp) * E, K)
        counts = np.zeros(L * E, dtype=np.int64)
        tokens = 0
        for batch in reader:
            col = batch.column("experts")
            n = len(col)
            ex = col.flatten().to_numpy().reshape(n, L * K)
            counts += np.bincount((ex.astype(np.intp) + offs).ravel(), minlength=L * E)
            tokens += n
    return counts.reshape(L, E).astype(np.float64), tokens
