"""Date and time functions against PostgreSQL: random dates, timestamps,
timestamptz and intervals (month ends, leap days, DST change days of the
zones below, midnight and the last microsecond) through the functions and
operators analysts use (`date_trunc`, `extract` and `date_part` of every
field, `age`, `date_bin`, `+`/`-` of intervals and integers, casts
between the types, comparisons, `AT TIME ZONE`, `make_date`,
`make_timestamp`, `justify_*`, `generate_series` counts), each printed
as text by `quipu sql` and by a PostgreSQL server under a session zone;
prints every difference (value or error) and a count. A long run of
docs/testing.md.

    python3 tests/tools/datetime_fuzz.py SEED COUNT [TIME_ZONE]

About a third of the values are a column's (a `VALUES` row read by a
scalar subquery), computed at run time rather than while Quipu plans.
QUIPU_BIN is the quipu binary; PGHOST, PGPORT and PGUSER reach the server
(any database: nothing is stored).
"""
import os, sys
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pg_compare import args, compare
seed, N, R = args()
zone = sys.argv[3] if len(sys.argv) > 3 else "UTC"
ZONES = ["UTC", "America/New_York", "America/Lima", "Asia/Kolkata", "Europe/London",
         "Australia/Lord_Howe", "America/Santiago", "Asia/Tokyo"]
DAYS = ["2024-02-29", "2024-03-10", "2024-11-03", "2026-03-08", "2026-11-01", "2024-12-31",
        "2025-01-01", "2000-01-01", "1999-12-31", "2024-01-31", "2023-02-28", "2024-06-30",
        "2024-10-27", "2024-03-31", "2021-01-03", "2020-12-28", "1970-01-01", "2100-03-01"]
CLOCKS = ["00:00:00", "01:30:00", "02:30:00", "12:00:00", "23:59:59.999999", "10:15:30.5",
          "03:00:00", "00:00:00.000001", "18:45:00"]
def day():
    if R.random() < 0.7:
        return R.choice(DAYS)
    return "%04d-%02d-%02d" % (R.randint(1900, 2099), R.randint(1, 12), R.randint(1, 28))
def ts():
    return day() + " " + R.choice(CLOCKS)
def interval():
    return R.choice(["1 day", "1 mon", "1 year", "-1 day", "1 mon -1 day", "25 hours", "1 day 02:00",
                     "-3 mons 12:00", "2 weeks", "0.5 day", "1.5 months", "36 hours", "1 year 1 mon 1 day",
                     "00:00:00.000001", "-00:30", "45 days", "23:59:59"])
def value(kind):
    """A value of `kind` as (literal SQL, the text of a column's value)."""
    if kind == "date":
        t = day()
    elif kind in ("timestamp", "timestamptz"):
        t = ts()
        if kind == "timestamptz" and R.random() < 0.3:
            t += R.choice(["+00", "-05", "+05:30", "+14", "-03:30"])
    else:
        t = interval()
    return t
FIELDS = ["century", "day", "decade", "dow", "doy", "epoch", "hour", "isodow", "isoyear", "julian",
          "microseconds", "millennium", "milliseconds", "minute", "month", "quarter", "second",
          "timezone", "timezone_hour", "timezone_minute", "week", "year"]
TRUNC = ["microseconds", "milliseconds", "second", "minute", "hour", "day", "week", "month", "quarter",
         "year", "decade", "century", "millennium"]
IFIELDS = ["century", "day", "decade", "epoch", "hour", "microseconds", "millennium", "milliseconds",
           "minute", "month", "quarter", "second", "year"]
def expression(x, kind, y, ykind):
    """A random function of `x` (of `kind`), and `y` (of `ykind`) where one
    takes two."""
    if kind == "interval":
        return R.choice([
            "extract(%s FROM %s)" % (R.choice(IFIELDS), x),
            "date_part('%s', %s)" % (R.choice(IFIELDS), x),
            "date_trunc('%s', %s)" % (R.choice(TRUNC[:-3] + ["year"]), x),
            "justify_days(%s)" % x, "justify_hours(%s)" % x, "justify_interval(%s)" % x,
            "%s * 2.5" % x, "%s / 3" % x, "-%s" % x, "%s < INTERVAL '30 days'" % x,
            "%s + INTERVAL '1 day 1 hour'" % x,
        ])
    common = [
        "extract(%s FROM %s)" % (R.choice(FIELDS if kind == "timestamptz" else FIELDS[:17] + FIELDS[20:]), x),
        "date_part('%s', %s)" % (R.choice(FIELDS[:17] + FIELDS[20:]), x),
        "date_trunc('%s', %s)" % (R.choice(TRUNC), x),
        "%s + INTERVAL '%s'" % (x, interval()),
        "%s - INTERVAL '%s'" % (x, interval()),
        "CAST(%s AS date)" % x,
        "CAST(%s AS timestamp)" % x,
        "CAST(%s AS timestamptz)" % x,
        "%s AT TIME ZONE '%s'" % (x, R.choice(ZONES)),
        "date_bin(INTERVAL '%s', CAST(%s AS timestamp), TIMESTAMP '2001-01-01')" % (
            R.choice(["15 minutes", "1 hour", "1 day", "7 days", "90 seconds"]), x),
        "age(%s, %s)" % (x, y) if ykind == kind else "%s < %s" % (x, y),
        "%s - %s" % (x, y) if kind == ykind else "%s = %s" % (x, y),
        "GREATEST(%s, %s)" % (x, y),
        "%s BETWEEN %s AND %s + INTERVAL '1 day'" % (x, y, y),
        "(SELECT count(*) FROM generate_series(CAST(%s AS timestamp), CAST(%s AS timestamp) + INTERVAL '3 days', INTERVAL '%s'))" % (
            x, x, R.choice(["1 day", "6 hours", "1 mon"])),
    ]
    if kind == "date":
        common += ["%s + %d" % (x, R.randint(-400, 400)), "%s - %s" % (x, y) if ykind == "date" else "%s + 1" % x,
                   "make_date(CAST(extract(year FROM %s) AS int), 2, 28) + 1" % x,
                   "make_timestamp(2024, CAST(extract(month FROM %s) AS int), 1, 23, 59, 59.5)" % x]
    return R.choice(common)
cases = []
KINDS = ["date", "timestamp", "timestamptz", "interval"]
for i in range(N):
    kind = R.choice(KINDS)
    ykind = R.choice(["date", "timestamp", "timestamptz"]) if kind != "interval" else "interval"
    xv, yv = value(kind), value(ykind)
    column = R.random() < 0.35
    x = "CAST(v AS %s)" % kind if column else "CAST('%s' AS %s)" % (xv, kind)
    y = "CAST('%s' AS %s)" % (yv, ykind)
    e = "CAST(%s AS text)" % expression(x, kind, y, ykind)
    cases.append("(SELECT %s FROM (VALUES ('%s')) AS t(v))" % (e, xv) if column else e)
compare(cases, prelude="SET TimeZone = '%s'; " % zone)
