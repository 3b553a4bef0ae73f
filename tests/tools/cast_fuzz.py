"""Text literals cast to PostgreSQL's types against PostgreSQL: random
input texts for boolean, smallint, integer, bigint, numeric, real,
double precision, date, timestamp and timestamptz (the forms PostgreSQL
reads and near misses: spaces, signs, exponents, month names, ISO and
SQL orders, time zones, junk), each cast by `quipu sql` and by a
PostgreSQL server and printed as text; prints every difference (value or
error) and a count. A long run of docs/testing.md.

    python3 tests/tools/cast_fuzz.py SEED COUNT [ZONE [DATESTYLE]]

ZONE (default UTC) is the session's `TimeZone` on both sides, DATESTYLE
(default `ISO, MDY`) its `DateStyle`: `'ISO, DMY'` reads `1/2/2024` as
1 February. About a
third of the cases cast a column (a `VALUES` row read by a scalar
subquery), which Quipu reads at run time, not while it plans.

QUIPU_BIN is the quipu binary; PGHOST, PGPORT and PGUSER reach the server
(any database: nothing is stored).
"""
import os, sys
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pg_compare import args, compare
seed, N, R = args()
def pad(s):
    return R.choice(["", "", "", " ", "  "]) + s + R.choice(["", "", "", " ", "\t"])
def digits(n):
    return "".join(R.choice("0123456789") for _ in range(n))
def number(integer):
    s = R.choice(["", "", "-", "+"]) + R.choice(["0", "1", "7", "42", "32767", "32768", "2147483647",
                                                   "2147483648", "9223372036854775807", "9223372036854775808",
                                                   digits(R.randint(1, 25)), "00012"])
    if not integer or R.random() < 0.15:
        if R.random() < 0.5: s += "." + digits(R.randint(0, 8))
        if R.random() < 0.2: s += R.choice(["e", "E"]) + R.choice(["", "-", "+"]) + str(R.randint(0, 400))
    if R.random() < 0.08: s = R.choice([".5", "-.5", "5.", "1_000", "0x1F", "1,5", "", "- 1", "1e", "e5", "inf",
                                        "Infinity", "-infinity", "NaN", "nan", "1.5.2", "++1"])
    return pad(s)
def boolean():
    return pad(R.choice(["t", "f", "true", "false", "TRUE", "yes", "no", "y", "n", "on", "off", "of", "1", "0",
                         "tr", "ye", "2", "", "truee", "True ", "O"]))
MONTHS = ["Jan", "January", "feb", "FEBRUARY", "Mar", "Sept", "sep", "Dec", "decem"]
def date():
    y = R.choice(["2024", "1999", "2000", "0001", "99", "24", "1", "10000", "2024"])
    m = R.choice(["1", "01", "2", "02", "12", "13", "0"])
    d = R.choice(["1", "01", "29", "30", "31", "32", "0", "15"])
    r = R.random()
    if r < 0.4: s = "%s-%s-%s" % (y, m, d)
    elif r < 0.5: s = "%s/%s/%s" % (m, d, y)
    elif r < 0.6: s = "%s%s%s" % (y.zfill(4), m.zfill(2), d.zfill(2))
    elif r < 0.7: s = "%s %s %s" % (R.choice(MONTHS), d, y)
    elif r < 0.8: s = "%s-%s-%s" % (d, R.choice(MONTHS), y)
    elif r < 0.75: s = "%s %s, %s" % (R.choice(MONTHS), d, y)
    elif r < 0.78: s = "%s %s %s" % (d, R.choice(MONTHS), y)
    elif r < 0.81: s = "%s-%s-%s" % (y, R.choice(MONTHS), d)
    elif r < 0.85: s = "%s.%s.%s" % (y, m, d)
    elif r < 0.9: s = R.choice(["epoch", "today", "infinity", "-infinity", "allballs", "2024-02-29 BC",
                                "J2451545", "2024-366", "2024-W01-1", "Monday 2024-01-01", "2024.005",
                                "990108", "1999.008", "January 8, 99 BC", "y2024m01d05", "Jan 5"])
    else: s = "%s-%s-%s %s" % (y, m, d, R.choice(["AD", "BC", "12:00", "T12:00", ""]))
    return pad(s)
def clock():
    h = R.choice(["0", "00", "1", "12", "23", "24", "25"])
    s = "%s:%s" % (h, R.choice(["00", "30", "59", "60"]))
    if R.random() < 0.7: s += ":" + R.choice(["00", "59", "60", "01.5", "01.123456", "01.1234567"])
    if R.random() < 0.15: s += R.choice([" am", " pm", "AM", " PM"])
    return s
def zone():
    return R.choice(["", "", "", "Z", "+00", "+05:30", "-08", " UTC", " America/New_York", "+0530", " EST",
                     " PST8PDT", "+14:01", "-1200", " Europe/Paris", "+25"])
def timestamp():
    d = date().strip()
    r = R.random()
    if r < 0.7: s = d + R.choice([" ", "T", "  "]) + clock()
    elif r < 0.8: s = d
    else: s = R.choice(["epoch", "infinity", "2024-01-01 24:00:00", "2024-01-01 23:59:60",
                        "Wed Jan 03 10:00:00 2024", "2024-01-01 10:00:00.9999995", "20240105T103000",
                        "20240105 103000", "Jan 5 2024 10:00 PM", "2024-01-05 10:00 met dst",
                        "2024-03-10 02:30", "2024-11-03 01:30", "2024-01-05 10:00 utc+3"])
    return pad(s), zone()
cases = []
for i in range(N):
    r = R.random()
    if r < 0.08: t, v = "boolean", boolean()
    elif r < 0.16: t, v = "smallint", number(True)
    elif r < 0.26: t, v = "integer", number(True)
    elif r < 0.34: t, v = "bigint", number(True)
    elif r < 0.46: t, v = "numeric", number(False)
    elif r < 0.52: t, v = "real", number(False)
    elif r < 0.6: t, v = "double precision", number(False)
    elif r < 0.75: t, v = "date", date()
    elif r < 0.88:
        t = "timestamp"; v, _ = timestamp()
    else:
        t = "timestamptz"; v, z = timestamp(); v = v + z
    v = v.replace("'", "''")
    if R.random() < 0.35:
        cases.append("(SELECT CAST(CAST(v AS %s) AS text) FROM (VALUES ('%s')) AS t(v))" % (t, v))
    else:
        cases.append("CAST(CAST('%s' AS %s) AS text)" % (v, t))
zone = sys.argv[3] if len(sys.argv) > 3 else "UTC"
style = sys.argv[4] if len(sys.argv) > 4 else "ISO, MDY"
compare(cases, prelude="SET TimeZone = '%s'; SET DateStyle = '%s'; " % (zone, style))
