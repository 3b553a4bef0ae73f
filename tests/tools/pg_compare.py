"""What the fuzz tools share: expressions evaluated by PostgreSQL (psql,
reached by PGHOST, PGPORT and PGUSER) and by `quipu sql` (QUIPU_BIN), in
batches, and every difference printed (a value on one side and an error
on the other counts; an error on both does not)."""
import json, os, random, subprocess, sys, tempfile
QUIPU = os.environ.get('QUIPU_BIN', 'quipu')
DATA = tempfile.mkdtemp(prefix='quipu-fuzz-')

def args(default_count=400):
    """SEED and COUNT from the command line, and a generator seeded so."""
    seed = int(sys.argv[1]) if len(sys.argv) > 1 else 1
    count = int(sys.argv[2]) if len(sys.argv) > 2 else default_count
    return seed, count, random.Random(seed)

def pg(exprs, prelude=""):
    sql = "%sSELECT row_to_json(x) FROM (SELECT %s) x" % (prelude, ", ".join("%s AS c%d" % (e, i) for i, e in enumerate(exprs)))
    p = subprocess.run(["psql", "-X", "-A", "-t", "-q", "-c", sql], capture_output=True, text=True)
    if p.returncode or p.stderr.strip():
        return None, p.stderr.strip()
    return json.loads(p.stdout.strip().splitlines()[-1]), None

def qp(exprs, prelude=""):
    sql = "%sSELECT %s" % (prelude, ", ".join("%s AS c%d" % (e, i) for i, e in enumerate(exprs)))
    p = subprocess.run([QUIPU, "--data-dir", DATA, "sql", "--format", "json", sql], capture_output=True, text=True)
    if p.returncode:
        return None, (p.stderr.strip() or p.stdout.strip())[:300]
    lines = [l for l in p.stdout.strip().splitlines() if l.startswith("{")]
    return json.loads(lines[-1]), None

def compare(cases, prelude="", batch=40):
    """Runs `cases` on both sides; prints each difference and the count."""
    bad = 0; errs_both = 0
    for s in range(0, len(cases), batch):
        part = cases[s:s+batch]
        a, ea = pg(part, prelude); b, eb = qp(part, prelude)
        if ea is None and eb is None:
            for i, e in enumerate(part):
                x = a.get("c%d" % i); y = b.get("c%d" % i)
                if x != y:
                    bad += 1; print("DIFF", e, "pg=%r quipu=%r" % (x, y))
            continue
        for e in part:
            a, ea = pg([e], prelude); b, eb = qp([e], prelude)
            if ea and eb:
                errs_both += 1
                if "-v" in sys.argv: print("BOTH", e, "|", ea, "|", eb)
                continue
            if ea or eb:
                bad += 1; print("ERRDIFF", e, "pg:", ea or a, "| quipu:", eb or b); continue
            if a.get("c0") != b.get("c0"):
                bad += 1; print("DIFF", e, "pg=%r quipu=%r" % (a.get("c0"), b.get("c0")))
    print("cases", len(cases), "differences", bad, "errors in both", errs_both)
