"""Interval input and arithmetic against PostgreSQL: random interval texts
(PostgreSQL's verbose units with signs, fractions, `ago` and `@`, clock
times, SQL standard `Y-M` and `D H:M:S`, ISO 8601 `P...` in both forms,
and junk), each read by `quipu sql` and by a PostgreSQL server, printed
as text, and put through arithmetic (`* 1.5`, `/ 7`, `+ date`,
`justify_interval`, `extract(epoch ...)`); prints every difference (value
or error: a value on one side and an error on the other counts) and a
count. A long run of docs/testing.md.

    python3 tests/tools/interval_fuzz.py SEED COUNT

About a third of the texts are a column's (a `VALUES` row read by a
scalar subquery), which Quipu reads at run time, not while it plans.

QUIPU_BIN is the quipu binary; PGHOST, PGPORT and PGUSER reach the server
(any database: nothing is stored).
"""
import os, sys
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pg_compare import args, compare
seed, N, R = args()
UNITS = ["microsecond", "microseconds", "us", "usec", "millisecond", "milliseconds", "ms", "msec",
         "second", "seconds", "sec", "secs", "s", "minute", "minutes", "min", "mins", "m",
         "hour", "hours", "hr", "hrs", "h", "day", "days", "d", "week", "weeks", "w",
         "month", "months", "mon", "mons", "year", "years", "yr", "yrs", "y",
         "decade", "decades", "century", "centuries", "millennium", "millennia",
         "DAY", "Hours", "MONTHS"]
def num(frac=True):
    n = str(R.choice([0, 1, 2, 3, 7, 10, 12, 24, 25, 30, 31, 59, 60, 61, 100, 365, 1000, 99999]))
    if frac and R.random() < 0.3:
        n += "." + "".join(R.choice("0123456789") for _ in range(R.randint(1, 7)))
    if R.random() < 0.3:
        n = R.choice(["-", "+"]) + n
    return n
def clock():
    h = R.choice(["0", "1", "02", "23", "24", "25", "100", "-1", "+3"])
    m = R.choice(["00", "05", "59", "60", "7"])
    s = "%s:%s" % (h, m)
    if R.random() < 0.6:
        s += ":" + R.choice(["00", "30", "59", "60", "05.5", "01.123456", "01.1234567"])
    return s
def verbose():
    parts = []
    for _ in range(R.randint(1, 4)):
        r = R.random()
        if r < 0.75:
            parts.append(num() + R.choice(["", " ", " ", " "]) + R.choice(UNITS))
        else:
            parts.append(clock())
    s = " ".join(parts)
    if R.random() < 0.1: s = "@ " + s
    if R.random() < 0.15: s += " ago"
    return s
def sql_std():
    r = R.random()
    if r < 0.35: return "%s-%s" % (num(False), R.choice(["0", "1", "11", "12", "13"]))
    if r < 0.7: return "%s %s" % (num(False), clock())
    return "%s-%s %s %s" % (num(False), R.choice(["0", "3", "11"]), num(False), clock())
def iso():
    if R.random() < 0.25:
        # The alternative form, P0001-02-03T04:05:06.
        return "P%04d-%02d-%02dT%02d:%02d:%02d" % (R.randint(0, 20), R.randint(0, 13), R.randint(0, 40),
                                                 R.randint(0, 30), R.randint(0, 60), R.randint(0, 60))
    s = "P"
    for u in "YMWD":
        if R.random() < 0.4: s += num() + u
    if R.random() < 0.6:
        s += "T"
        for u in "HMS":
            if R.random() < 0.5: s += num() + u
    return s
def junk():
    return R.choice(["", " ", "day", "1 fortnight", "1 day day", "1,5 days", "1e3 days", "infinity",
                     "-infinity", "1 day 1 day", "1 year 1 year", "1::2", "1:2:3:4", "P", "PT",
                     "P1", "1 days 2", "--1 day", "1 d a y", "2147483648 days", "178000000 years",
                     "9223372036854775807 microseconds", "1 month 2147483647 days"])
def text():
    r = R.random()
    if r < 0.55: return verbose()
    if r < 0.75: return sql_std()
    if r < 0.92: return iso()
    return junk()
WRAP = [
    "CAST(%s AS text)",
    "CAST(%s * 1.5 AS text)",
    "CAST(%s / 7 AS text)",
    "CAST(-%s AS text)",
    "CAST(DATE '2024-01-31' + %s AS text)",
    "CAST(TIMESTAMP '2024-02-29 12:00:00' - %s AS text)",
    "CAST(justify_interval(%s) AS text)",
    "CAST(justify_hours(%s) AS text)",
    "CAST(extract(epoch FROM %s) AS text)",
    "CAST(date_part('day', %s) AS text)",
    "CAST(%s < INTERVAL '1 mon' AS text)",
]
cases = []
for i in range(N):
    t = text().replace("'", "''")
    column = R.random() < 0.35
    lit = "CAST(v AS interval)" if column else "CAST('%s' AS interval)" % t
    e = R.choice(WRAP) % lit if R.random() < 0.6 else WRAP[0] % lit
    cases.append("(SELECT %s FROM (VALUES ('%s')) AS t(v))" % (e, t) if column else e)
compare(cases, "")
