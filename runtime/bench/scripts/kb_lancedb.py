"""The same knowledge-base benchmark on LanceDB (Python `lancedb`), over the vectors and
queries `kb-bench --export DIR` wrote: add time, index build, recall@10 against exact search,
warm query p50/p99, and (with --cold) one query of the table already on disk, in this fresh
process.

    python kb_lancedb.py DIR [--dims 384] [--index ivf_flat|ivf_pq] [--nprobes 32] [--cold]
"""
import argparse, time
import numpy as np
import lancedb
import pyarrow as pa

p = argparse.ArgumentParser()
p.add_argument("dir")
p.add_argument("--dims", type=int, default=384)
p.add_argument("--index", default="ivf_flat")
p.add_argument("--nprobes", type=int, default=32)
p.add_argument("--cold", action="store_true")
a = p.parse_args()
d = a.dims
vectors = np.fromfile(f"{a.dir}/vectors.f32", dtype="<f4").reshape(-1, d)
queries = np.fromfile(f"{a.dir}/queries.f32", dtype="<f4").reshape(-1, d)[1:]
n = len(vectors)
db = lancedb.connect(f"{a.dir}/lancedb")

if a.cold:
    started = time.perf_counter()
    table = db.open_table("bench")
    table.search(queries[0]).metric("dot").nprobes(a.nprobes).limit(10).to_list()
    print(f"lancedb cold query: {(time.perf_counter() - started) * 1000:.0f} ms")
    raise SystemExit

texts = [f"chunk{i}" for i in range(n)]
data = pa.table({"id": pa.array(np.arange(n)), "text": pa.array(texts),
                 "vector": pa.FixedSizeListArray.from_arrays(pa.array(vectors.ravel()), d)})
started = time.perf_counter()
table = db.create_table("bench", data, mode="overwrite")
added = time.perf_counter() - started
lists = int(round(n ** 0.5))
started = time.perf_counter()
if a.index == "ivf_pq":
    table.create_index(metric="dot", num_partitions=lists, num_sub_vectors=d // 8, index_type="IVF_PQ")
else:
    table.create_index(metric="dot", num_partitions=lists, index_type="IVF_FLAT")
indexed = time.perf_counter() - started
print(f"lancedb add: {n} rows in {added:.1f} s, {a.index} index ({lists} lists) in {indexed:.1f} s "
      f"= {n / (added + indexed):.0f} rows/s")

table.search(queries[0]).metric("dot").nprobes(a.nprobes).limit(10).to_list()  # warm
latencies, recall = [], 0.0
for q in queries:
    started = time.perf_counter()
    hits = table.search(q).metric("dot").nprobes(a.nprobes).limit(10).to_list()
    latencies.append(time.perf_counter() - started)
    exact = set(np.argpartition(-(vectors @ q), 10)[:10].tolist())
    recall += len(exact & {h["id"] for h in hits}) / 10
latencies.sort()
ms = lambda x: x * 1000
print(f"lancedb vector queries (nprobes {a.nprobes}): recall@10 {recall / len(queries):.3f}, "
      f"p50 {ms(latencies[len(latencies) // 2]):.2f} ms, p99 {ms(latencies[int(len(latencies) * 0.99)]):.2f} ms "
      f"over {len(queries)} queries")
