"""The cache benchmark behind bench/cache.sh: over one PostgreSQL-wire
connection, the customer 360 (all rows, and one customer) live and from a
materialized view, p50 of several runs, and the refresh against the live
query; and, given the crm PostgreSQL port, an incremental refresh
(`append_column`) after 1% new orders against a full refresh of the same
query; and, given the lake's folder, the same for a cache over one lake
table after 1% new files. Prints ratios; asserts nothing
(docs/benchmarks.md)."""
import glob, os, re, shutil, time, statistics, psycopg, urllib.request
import sys

if sys.argv[1] == "memory":
    # memory PORT USER PASSWORD SERVER_PID HTTP_PORT: resident memory of a
    # fresh server before and after its first read of cache.c360, against
    # the Arrow size it holds (quipu_cache_memory_bytes).
    port, user, password, pid, http = int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5], sys.argv[6]
    def rss():
        with open(f"/proc/{pid}/status") as f:
            return int(re.search(r"VmRSS:\s+(\d+) kB", f.read()).group(1)) * 1024
    c = psycopg.connect(host="127.0.0.1", port=port, user=user, password=password, dbname="quipu", autocommit=True)
    cur = c.cursor()
    cur.execute("SET quipu.max_staleness = '1 hour'")
    # One statement first (catalog read, caches prepared); EXPLAIN would
    # plan the scan, which loads the cache.
    cur.execute("SELECT count(*) FROM pos.public.stores"); cur.fetchall()
    before = rss()
    cur.execute("SELECT * FROM yachay.customer_360 WHERE customer_id = 42"); cur.fetchall()
    after = rss()
    metrics = urllib.request.urlopen(f"http://127.0.0.1:{http}/metrics").read().decode()
    held = re.search(r'quipu_cache_memory_bytes\{cache="cache.c360"\} (\S+)', metrics)
    if held is None:
        # QUIPU_CACHE_MEMORY=0: what the same first query costs without
        # holding the cache (its own buffers, kept by the allocator).
        print(f"not held: server resident memory +{(after - before) / 2**20:.1f} MiB")
        sys.exit(0)
    arrow = int(float(held.group(1)))
    print(f"in memory: Arrow {arrow / 2**20:.1f} MiB, server resident memory +{(after - before) / 2**20:.1f} MiB "
          f"({before / 2**20:.0f} -> {after / 2**20:.0f} MiB): {(after - before) / arrow:.2f}x the Arrow size")
    sys.exit(0)

port, user, password = int(sys.argv[1]), sys.argv[2], sys.argv[3]
c = psycopg.connect(host="127.0.0.1", port=port, user=user, password=password, dbname="quipu", autocommit=True)
cur = c.cursor()
def t(sql, n=1):
    xs = []
    for _ in range(n):
        t0 = time.perf_counter(); cur.execute(sql); rows = cur.fetchall() if cur.description else []; xs.append(time.perf_counter() - t0)
    return xs, rows
full = "SELECT * FROM yachay.customer_360"
one = "SELECT * FROM yachay.customer_360 WHERE customer_id = 42"
cur.execute("SET quipu.max_staleness = '0'")
live_full, rows_live = t(full, 3)
live_one, _ = t(one, 3)
for name in ["c360", "orders_inc", "orders_full", "history_inc", "history_full"]:
    cur.execute(f"DROP MATERIALIZED VIEW IF EXISTS cache.{name}")
t0 = time.perf_counter()
cur.execute("CREATE MATERIALIZED VIEW cache.c360 AS SELECT * FROM yachay.customer_360")
create_s = time.perf_counter() - t0
t0 = time.perf_counter(); cur.execute("REFRESH MATERIALIZED VIEW cache.c360"); refresh_s = time.perf_counter() - t0
cur.execute("SET quipu.max_staleness = '1 hour'")
cached_full, rows_cached = t(full, 5)
cached_one, _ = t(one, 30)
print(f"rows live={len(rows_live)} cached={len(rows_cached)} equal={sorted(map(str,rows_live))==sorted(map(str,rows_cached))}")
m = statistics.median
print(f"360 full: live p50 {m(live_full)*1000:.0f} ms, cached p50 {m(cached_full)*1000:.1f} ms, ratio 1/{m(live_full)/m(cached_full):.0f}")
print(f"one customer: live p50 {m(live_one)*1000:.0f} ms, cached p50 {m(cached_one)*1000:.1f} ms, ratio 1/{m(live_one)/m(cached_one):.0f}")
print(f"create {create_s:.2f} s, refresh {refresh_s:.2f} s, refresh / live query = {refresh_s/m(live_full):.2f}")

def rounds(prefix, add):
    """Three rounds of: add ~1% new data (`add(round)`), then refresh
    cache.<prefix>_full and cache.<prefix>_inc in alternating order; the
    times of each."""
    fulls, incs = [], []
    for round_ in range(3):
        add(round_)
        order = ["full", "inc"] if round_ % 2 == 0 else ["inc", "full"]
        for which in order:
            t0 = time.perf_counter(); cur.execute(f"REFRESH MATERIALIZED VIEW cache.{prefix}_{which}"); dt = time.perf_counter() - t0
            (fulls if which == "full" else incs).append(dt)
    return fulls, incs

if len(sys.argv) > 4:
    # Incremental against full, side by side: two caches of one query over
    # crm.orders, one declared append-only; each round adds 1% new orders
    # at the source, then refreshes both (in alternating order).
    src = psycopg.connect(host="127.0.0.1", port=int(sys.argv[4]), user="postgres", dbname="crm", autocommit=True)
    q = "SELECT order_id, customer_id, channel, status, total_usd FROM crm.public.orders"
    cur.execute(f"CREATE MATERIALIZED VIEW cache.orders_inc WITH (append_column = 'order_id') AS {q}")
    cur.execute(f"CREATE MATERIALIZED VIEW cache.orders_full AS {q}")
    n = src.execute("SELECT count(*) FROM orders").fetchone()[0]
    def add_orders(_round):
        top = src.execute("SELECT max(order_id) FROM orders").fetchone()[0]
        src.execute(f"INSERT INTO orders SELECT order_id + {top}, customer_id, channel, ordered_at, status, total_usd, utm_campaign FROM orders ORDER BY order_id LIMIT {n // 100}")
    fulls, incs = rounds("orders", add_orders)
    cur.execute("SET quipu.max_staleness = '1 hour'")
    a = t("SELECT count(*), sum(order_id), sum(total_usd) FROM cache.orders_inc")[1]
    b = t("SELECT count(*), sum(order_id), sum(total_usd) FROM cache.orders_full")[1]
    live = src.execute("SELECT count(*), sum(order_id), sum(total_usd) FROM orders").fetchone()
    print(f"orders {n} rows, +{n // 100} (1%) per round: incremental equal={a == b and tuple(a[0]) == tuple(live)}")
    print(f"refresh after 1% new rows: full p50 {m(fulls):.3f} s, incremental p50 {m(incs):.3f} s, incremental / full = {m(incs)/m(fulls):.3f}")

if len(sys.argv) > 5:
    # A cache over one lake table refreshed by its new files, against a
    # twin whose query cannot be (a LIMIT above every row: a full refresh
    # each time); each round copies about 1% of the table's bytes as new
    # files.
    lake = sys.argv[5]
    q = "SELECT order_id, customer_id, sku, qty, unit_price_usd FROM lake.public.sales_history WHERE status = 'delivered'"
    cur.execute(f"CREATE MATERIALIZED VIEW cache.history_inc AS {q}")
    cur.execute(f"CREATE MATERIALIZED VIEW cache.history_full AS {q} LIMIT 1000000000")
    files = sorted(glob.glob(os.path.join(lake, "sales_history", "year=*", "month=*", "*.parquet")))
    total = sum(os.path.getsize(f) for f in files)
    def add_files(round_):
        added, k = 0, 0
        while added < total / 100:
            f = files[(round_ * 7 + k) % len(files)]
            shutil.copy(f, f.replace(".parquet", f"-bench{round_}-{k}.parquet"))
            added += os.path.getsize(f); k += 1
    fulls, incs = rounds("history", add_files)
    cur.execute("SET quipu.max_staleness = '1 hour'")
    a = t("SELECT count(*), sum(order_id), sum(qty) FROM cache.history_inc")[1]
    b = t("SELECT count(*), sum(order_id), sum(qty) FROM cache.history_full")[1]
    cur.execute("SET quipu.max_staleness = '0'")
    live = t(f"SELECT count(*), sum(order_id), sum(qty) FROM ({q}) s")[1]
    print(f"sales_history {len(files)} files, {total} bytes, +~1% a round: incremental equal={a == b == live}")
    print(f"lake refresh after 1% new files: full p50 {m(fulls):.3f} s, incremental p50 {m(incs):.3f} s, incremental / full = {m(incs)/m(fulls):.3f}")
    for g in glob.glob(os.path.join(lake, "sales_history", "year=*", "month=*", "*-bench*.parquet")):
        os.remove(g)
