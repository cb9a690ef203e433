"""
DuckDB peer of the counting half of `moescope stats` for bench/commands.ts: load per layer and expert, CV, MaxVio,
normalised entropy and dead experts per layer, in SQL over the Parquet export of the same trace
(`moescope export TRACE --parquet FILE`: one row per token, `experts` a list of L·K ids, layer-major).
Usage: python3 bench/stats_duckdb.py FILE.parquet L E K   → one JSON line on stdout.
"""
import json
import sys
import time

import duckdb


def main(path, L, E, K):
    t0 = time.perf_counter()
    con = duckdb.connect()
    # Every (layer, expert) cell, zeros included (a dead expert is a row with n = 0).
    rows = con.execute(
        f"""
        WITH a AS (
            SELECT (i - 1) // {K} AS layer, e AS expert
            FROM (SELECT unnest(experts) AS e, generate_subscripts(experts, 1) AS i FROM read_parquet(?))
        ),
        c AS (SELECT layer, expert, count(*) AS n FROM a GROUP BY layer, expert),
        grid AS (
            SELECT l.range AS layer, x.range AS expert, coalesce(c.n, 0) AS n
            FROM range({L}) l CROSS JOIN range({E}) x
            LEFT JOIN c ON c.layer = l.range AND c.expert = x.range
        ),
        shares AS (SELECT *, n / sum(n) OVER (PARTITION BY layer) AS p FROM grid)
        SELECT layer,
               list(n ORDER BY expert) AS load,
               stddev_pop(n) / avg(n) AS cv,
               (max(n) - avg(n)) / avg(n) AS max_vio,
               -sum(CASE WHEN p > 0 THEN p * ln(p) ELSE 0 END) / ln({E}) AS entropy,
               count(*) FILTER (WHERE n = 0) AS dead
        FROM shares GROUP BY layer ORDER BY layer
        """,
        [path],
    ).fetchall()
    out = dict(load=[], cv=[], maxVio=[], entropy=[], dead=[])
    for _, load, cv, max_vio, entropy, dead in rows:
        out["load"].extend(load)
        out["cv"].append(cv)
        out["maxVio"].append(max_vio)
        out["entropy"].append(entropy)
        out["dead"].append(dead)
    out["seconds"] = time.perf_counter() - t0
    print(json.dumps(out))


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]))
