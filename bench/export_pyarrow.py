"""
pyarrow peer of `moescope export TRACE --parquet OUT` for bench/commands.ts: the same Arrow IPC trace written as
Parquet by pyarrow (the trace's record batches as they are, default compression), streaming batch by batch.
Usage: python3 bench/export_pyarrow.py TRACE OUT   → one JSON line: rows written.
"""
import json
import sys

import pyarrow as pa
import pyarrow.ipc as ipc
import pyarrow.parquet as pq


def main(path, out):
    rows = 0
    with pa.memory_map(path) as src:
        reader = ipc.open_stream(src)
        with pq.ParquetWriter(out, reader.schema) as w:
            for batch in reader:
                w.write_batch(batch)
                rows += batch.num_rows
    print(json.dumps(dict(rows=rows)))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
