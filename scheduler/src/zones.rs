//! `timestamptz` read in the session's time zone, as PostgreSQL reads it
//! (issue 22).
//!
//! PostgreSQL truncates, takes fields of and casts a `timestamptz` in the
//! session's `TimeZone`: under `SET TimeZone = 'America/Lima'`,
//! `date_trunc('day', t)` is Lima's midnight and `t::date` Lima's date,
//! and a literal compared with `t` (`t >= '2024-03-10'`) is a Lima time.
//! DataFusion reads them in the zone of the Arrow type, and a source's
//! column carries UTC (PostgreSQL and MongoDB connections, Parquet files),
//! so these answered in UTC whatever the session said.
//!
//! Where the session's zone is not UTC, the `timestamptz` argument of
//! `date_trunc`, `date_part` (`extract`), `date_bin`, `to_char`, `age`,
//! `concat`, `concat_ws`, `format`, `quote_*` and `quipu_text_out` (their
//! text), of a
//! cast to `date`, `time` or `timestamp`, of `± interval`, and the text
//! literal compared with one, are given the session's zone (the same instant, another
//! zone). The PostgreSQL pushdown does not send an expression in a zone
//! other than UTC (its connections run in UTC), so these are evaluated
//! here. A cast of a `timestamptz` to `timestamp` or `time` takes its
//! wall-clock time in its zone (`to_local_time`): Arrow's cast keeps the
//! UTC clock.
//!
//! In every session, a text literal compared with or cast to a date or
//! a timestamp is read as PostgreSQL reads it (`time_text`, which reads
//! every form of PostgreSQL's input: `'Jan 5 2024'`, `'1/31/2000 10:00
//! PM'`, a clock without seconds, a zone after it), and a column's text
//! cast to one through `quipu_time_text`; Arrow's parser refused all but
//! ISO. Read as a `timestamp` (without time zone), its offset is ignored
//! (`'2024-01-01 10:00+05'::timestamp` is 10:00; Arrow's parser converted
//! it to UTC). A `timestamp` or `date` meeting a `timestamptz` in
//! `COALESCE`, `CASE`, `GREATEST` or `LEAST` is read on the session's
//! clock (a date at its midnight), as PostgreSQL casts it to the common
//! type; DataFusion's coercion read it as UTC, and made `GREATEST(d, tz)`
//! a `timestamp`.

use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, IntervalUnit, TimeUnit};
use datafusion::common::DFSchema;
use datafusion::common::tree_node::Transformed;
use datafusion::error::Result;
use datafusion::logical_expr::expr::{Between, Cast, ScalarFunction, TryCast};
use datafusion::logical_expr::{BinaryExpr, Expr, ExprSchemable, LogicalPlan, Operator, lit};
use datafusion::scalar::ScalarValue;
use quipu_connectors::dialect::at_time_zone::AT_TIME_ZONE;
use quipu_connectors::dialect::datetime_input::{self, DateOrder};
use quipu_connectors::dialect::float_literals::comparison;
use quipu_connectors::dialect::time_text::{self, literal_as_written};
use quipu_connectors::dialect::{text_literal, utc_zone};

/// `plan` with its `timestamptz` values read in `zone` (the session's
/// `datafusion.execution.time_zone`, where it is not UTC) and its
/// timestamp literals read as PostgreSQL reads them.
pub fn rewrite(plan: LogicalPlan, zone: Option<&str>, order: DateOrder) -> Result<LogicalPlan> {
    let zone: Option<Arc<str>> = zone.filter(|z| !utc_zone(z)).map(Into::into);
    // In a UTC session only time literals and the calls of `reads_dates`
    // need the pass, which recomputes every node's schema.
    if zone.is_none()
        && !any_expr(&plan, |e| {
            is_time_literal(e, order) || reads_dates(e) || text_cast_to_time(e).is_some()
        })
    {
        return union_clocks(plan, None);
    }
    let plan = crate::rounding::rewrite_retyped(plan, |e, schema| {
        rewrite_expr(e, schema, zone.as_ref(), order)
    })?;
    union_clocks(plan, zone.as_ref())
}

/// A `UNION` whose column is a `timestamptz` in one input and a
/// `timestamp` or a `date` in another: the latter read on the session's
/// clock ([`on_session_clock`]), as PostgreSQL casts it to the common
/// type; DataFusion's coercion read it as UTC (the type a source's
/// `timestamptz` has), and made the column a `timestamp` where a date
/// met it.
fn union_clocks(plan: LogicalPlan, zone: Option<&Arc<str>>) -> Result<LogicalPlan> {
    plan.transform_up_with_subqueries(|node| {
        let LogicalPlan::Union(u) = node else {
            return Ok(Transformed::no(node));
        };
        let width = u.schema.fields().len();
        let zoned: Vec<bool> = (0..width)
            .map(|i| {
                u.inputs.iter().any(|p| {
                    matches!(
                        p.schema().field(i).data_type(),
                        DataType::Timestamp(_, Some(_))
                    )
                })
            })
            .collect();
        // In a UTC session a `timestamp` is read so already; a date was
        // made a `timestamp` with the column (its zone lost).
        let naive = |p: &LogicalPlan, i: usize| {
            zoned[i]
                && match p.schema().field(i).data_type() {
                    DataType::Timestamp(_, None) => zone.is_some(),
                    t => matches!(t, DataType::Date32 | DataType::Date64),
                }
        };
        if !u.inputs.iter().any(|p| (0..width).any(|i| naive(p, i))) {
            return Ok(Transformed::no(LogicalPlan::Union(u)));
        }
        let union =
            quipu_connectors::dialect::float_sets::retyped_union(u.inputs, |p, i, t, c| {
                naive(p, i).then(|| on_session_clock(&c, Some(t), zone).unwrap_or(c))
            })?;
        Ok(Transformed::yes(union))
    })
    .map(|t| t.data)
}

/// Whether an expression of `plan` (subqueries included) holds a part
/// for which `found` is true.
fn any_expr(plan: &LogicalPlan, found: impl Fn(&Expr) -> bool) -> bool {
    use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
    let mut any = false;
    let _ = plan.apply_with_subqueries(|node| {
        node.apply_expressions(|e| {
            e.apply(|x| {
                any |= found(x);
                Ok(if any {
                    TreeNodeRecursion::Stop
                } else {
                    TreeNodeRecursion::Continue
                })
            })
        })
    });
    any
}

/// The type PostgreSQL reads text as (`'timestamp'`, `'timestamptz'`,
/// `'date'`, `'interval'`) where `e` casts text that is not a literal to
/// a time or an interval, and the text is not read so yet
/// ([`time_text`]).
fn text_cast_to_time(e: &Expr) -> Option<&'static str> {
    let Expr::Cast(Cast { expr, field }) = e else {
        return None;
    };
    let to = match field.data_type() {
        DataType::Timestamp(_, None) => "timestamp",
        DataType::Timestamp(_, Some(_)) => "timestamptz",
        DataType::Date32 => "date",
        DataType::Interval(IntervalUnit::MonthDayNano) => "interval",
        _ => return None,
    };
    match expr.as_ref() {
        Expr::Literal(..) => None,
        Expr::ScalarFunction(f) if f.name() == time_text::TIME_TEXT => None,
        _ => Some(to),
    }
}

/// Whether `e` is a cast of text.
fn text_operand(e: &Expr, schema: &DFSchema) -> bool {
    matches!(e, Expr::Cast(Cast { expr, .. }) if expr.get_type(schema).is_ok_and(|t| t.is_string()))
}

/// Whether `e` is a text literal cast to a date or a timestamp, or one
/// PostgreSQL reads as a date or a time (`datetime_input`): Arrow's cast
/// may read it otherwise, or refuse it in other words.
fn is_time_literal(e: &Expr, order: DateOrder) -> bool {
    if let Expr::Cast(Cast { expr, field }) = e
        && text_literal(expr).is_some()
        && matches!(
            field.data_type(),
            DataType::Date32 | DataType::Timestamp(..)
        )
    {
        return true;
    }
    text_literal(e).is_some_and(|t| {
        SPECIAL_TIMES.contains(&t.trim().to_ascii_lowercase().as_str())
            || datetime_input::read(t, order).is_ok()
    })
}

/// The words PostgreSQL reads as a date or a time ([`special_time`]).
const SPECIAL_TIMES: &[&str] = &["epoch", "now", "today", "tomorrow", "yesterday"];

/// A text literal that is one of PostgreSQL's special date and time
/// inputs (`'today'::date`, `TIMESTAMP 'epoch'`), as the value it stands
/// for, of type `to`: `epoch` is 1970-01-01 00:00 UTC, `now` the
/// statement's start (`now()`), `today`, `tomorrow` and `yesterday` a
/// midnight of the session's calendar. Arrow's parser refused them. None
/// for other text, or `to` no date or timestamp. (`infinity` is refused
/// still: Quipu's dates and timestamps have no infinities.)
fn special_time(text: &str, to: &DataType) -> Option<Expr> {
    use datafusion::functions::datetime::expr_fn::{current_date, now};
    use datafusion::logical_expr::lit;
    if !matches!(to, DataType::Date32 | DataType::Timestamp(..)) {
        return None;
    }
    let cast = |e: Expr| Expr::Cast(Cast::new(Box::new(e), to.clone()));
    // A midnight `k` days from today: a `timestamptz` is that wall clock
    // read in the session's zone (the cast of a `timestamp` to it).
    let days = |k: i32| {
        let day = ScalarValue::IntervalMonthDayNano(Some(
            datafusion::arrow::datatypes::IntervalMonthDayNano::new(0, k, 0),
        ));
        let date = Expr::Cast(Cast::new(
            Box::new(current_date() + Expr::Literal(day, None)),
            DataType::Date32,
        ));
        match to {
            DataType::Timestamp(unit, Some(_)) => cast(Expr::Cast(Cast::new(
                Box::new(date),
                DataType::Timestamp(*unit, None),
            ))),
            _ => cast(date),
        }
    };
    Some(match text.trim().to_ascii_lowercase().as_str() {
        "epoch" => match to {
            DataType::Date32 => cast(lit("1970-01-01")),
            DataType::Timestamp(_, None) => cast(lit("1970-01-01 00:00:00")),
            _ => cast(lit("1970-01-01 00:00:00+00")),
        },
        // The instant, typed UTC first: the `now()` built here is not
        // the session's (its type is not in the session's zone), and a
        // `timestamp` would be read as a wall clock.
        "now" => cast(Expr::Cast(Cast::new(
            Box::new(now()),
            DataType::Timestamp(TimeUnit::Nanosecond, Some("UTC".into())),
        ))),
        "today" => days(0),
        "tomorrow" => days(1),
        "yesterday" => days(-1),
        _ => return None,
    })
}

/// Whether `e` truncates a value, reads one `AT TIME ZONE` or makes a
/// series (a date among them is read at its midnight in the session's
/// zone, in a UTC session too: [`date_as_instant`]), or is a `CASE`,
/// `COALESCE`, `GREATEST` or `LEAST`, where a date may meet a
/// `timestamptz` ([`meeting_in_zone`]).
fn reads_dates(e: &Expr) -> bool {
    match e {
        Expr::ScalarFunction(f) => matches!(
            f.func.name(),
            "date_trunc" | "generate_series" | AT_TIME_ZONE | "coalesce" | "greatest" | "least"
        ),
        Expr::Case(_) => true,
        _ => false,
    }
}

/// PostgreSQL has no `date_trunc` or `AT TIME ZONE` of a `date`: it reads
/// the date as the `timestamptz` of its midnight in the session's zone,
/// so `date_trunc('month', d)` is a `timestamptz` (`2024-02-01
/// 00:00:00+00`) and `d AT TIME ZONE 'Asia/Tokyo'` a `timestamp` (Tokyo's
/// clock at that midnight). DataFusion read the date as a `timestamp`
/// and answered a `timestamp` and a `timestamptz`.
fn date_as_instant(
    func: &Arc<datafusion::logical_expr::ScalarUDF>,
    args: &mut [Expr],
    schema: &DFSchema,
    zone: Option<&Arc<str>>,
) -> bool {
    let at: &[usize] = match func.name() {
        "date_trunc" => &[1],
        AT_TIME_ZONE => &[0],
        // A series of dates is one of `timestamptz` (`interval` steps).
        "generate_series" if args.len() == 3 => &[0, 1],
        _ => return false,
    };
    let mut any = false;
    for &i in at {
        let Some(a) = args.get_mut(i) else {
            continue;
        };
        if !matches!(a.get_type(schema), Ok(DataType::Date32 | DataType::Date64)) {
            continue;
        }
        let date = std::mem::replace(a, Expr::Literal(ScalarValue::Null, None));
        *a = midnight_in(date, zone);
        any = true;
    }
    any
}

/// Functions whose value depends on the zone of a `timestamptz` argument.
const ZONED: &[&str] = &[
    "date_trunc",
    "date_part",
    "date_bin",
    "to_char",
    "age",
    // Text of a value (`crate::text_forms`): printed on the zone's clock.
    quipu_connectors::dialect::pg_out::TEXT_OUT,
    "concat",
    "concat_ws",
    "format",
    "quote_literal",
    "quote_nullable",
    "json_build_object",
    "json_build_array",
    "to_json",
];

/// The zone-aware type of `e` in `zone`, if `e` is a `timestamptz` in
/// another zone.
fn other_zone(e: &Expr, schema: &DFSchema, zone: Option<&Arc<str>>) -> Option<DataType> {
    let zone = zone?;
    match e.get_type(schema) {
        Ok(DataType::Timestamp(unit, Some(tz))) if *tz != **zone => {
            Some(DataType::Timestamp(unit, Some(zone.clone())))
        }
        _ => None,
    }
}

/// `e` in `zone` when it is a `timestamptz` in another zone.
fn in_zone(e: Expr, schema: &DFSchema, zone: Option<&Arc<str>>) -> (Expr, bool) {
    match other_zone(&e, schema, zone) {
        Some(to) => (Expr::Cast(Cast::new(Box::new(e), to)), true),
        None => (e, false),
    }
}

/// The `timestamptz` of the midnight that begins `date` in `zone` (UTC
/// when the session has none).
fn midnight_in(date: Expr, zone: Option<&Arc<str>>) -> Expr {
    let wall = Expr::Cast(Cast::new(
        Box::new(date),
        DataType::Timestamp(TimeUnit::Microsecond, None),
    ));
    // In UTC the wall clock is the instant: casts alone, which a
    // PostgreSQL source (its connections run in UTC) can be sent.
    let Some(zone) = zone.cloned() else {
        return Expr::Cast(Cast::new(
            Box::new(wall),
            DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
        ));
    };
    wall_clock_in(wall, Some(&zone))
}

/// Whether `e` is `to_timestamp(text, format)`.
fn reads_text_time(e: &Expr) -> bool {
    matches!(e, Expr::ScalarFunction(f) if f.name() == "to_timestamp" && f.args.len() >= 2)
}

/// Whether one of `a` and `b` is a `timestamp` or a `date` and the other
/// a `timestamptz`, in a session whose zone is not UTC.
fn mixed_timestamps(a: &Expr, b: &Expr, schema: &DFSchema, zone: Option<&Arc<str>>) -> bool {
    if zone.is_none() {
        return false;
    }
    let date = |t: &DataType| matches!(t, DataType::Date32 | DataType::Date64);
    match (a.get_type(schema), b.get_type(schema)) {
        (Ok(DataType::Timestamp(_, x)), Ok(DataType::Timestamp(_, y))) => {
            x.is_some() != y.is_some()
        }
        (Ok(DataType::Timestamp(_, Some(_))), Ok(d))
        | (Ok(d), Ok(DataType::Timestamp(_, Some(_)))) => date(&d),
        _ => false,
    }
}

/// `values`, which meet in one result (`COALESCE`, `CASE`, `GREATEST`,
/// `LEAST`), each `timestamp` or `date` read on the session's
/// clock where another is a `timestamptz`, as PostgreSQL casts them to
/// the common type (DataFusion's coercion read them as UTC). False when
/// nothing changed.
fn meeting_in_zone(values: Vec<&mut Expr>, schema: &DFSchema, zone: Option<&Arc<str>>) -> bool {
    let types: Vec<Option<DataType>> = values.iter().map(|v| v.get_type(schema).ok()).collect();
    let zoned = types
        .iter()
        .any(|t| matches!(t, Some(DataType::Timestamp(_, Some(_)))));
    if !zoned {
        return false;
    }
    let mut any = false;
    for (v, t) in values.into_iter().zip(types) {
        // In UTC DataFusion's coercion reads a `timestamp` so already; a
        // date it made a `timestamp` (`GREATEST(d, tz)` lost its zone).
        if zone.is_none() && matches!(t, Some(DataType::Timestamp(_, None))) {
            continue;
        }
        if let Some(read) = on_session_clock(v, t.as_ref(), zone) {
            *v = read;
            any = true;
        }
    }
    any
}

/// `e`, a `timestamp` or a `date` (of type `t`), as the `timestamptz`
/// PostgreSQL casts it to: its wall clock or its midnight in `zone`
/// (None: `e` is neither).
fn on_session_clock(e: &Expr, t: Option<&DataType>, zone: Option<&Arc<str>>) -> Option<Expr> {
    match t? {
        DataType::Timestamp(_, None) => Some(wall_clock_in(e.clone(), zone)),
        DataType::Date32 | DataType::Date64 => Some(midnight_in(e.clone(), zone)),
        _ => None,
    }
}

/// `wall`, a `timestamp`, read on `zone`'s clock: a `timestamptz` in
/// `zone` (UTC when the session has none), the hours a daylight-saving
/// change skips or repeats resolved as PostgreSQL resolves them.
fn wall_clock_in(wall: Expr, zone: Option<&Arc<str>>) -> Expr {
    let zone: Arc<str> = zone.cloned().unwrap_or_else(|| "UTC".into());
    let at = quipu_connectors::dialect::at_time_zone::at_time_zone()
        .call(vec![wall, datafusion::logical_expr::lit(zone.to_string())]);
    Expr::Cast(Cast::new(
        Box::new(at),
        DataType::Timestamp(TimeUnit::Microsecond, Some(zone)),
    ))
}

/// A text literal compared with `other`, a date or a timestamp: read as
/// PostgreSQL reads it (`time_text::literal_as_written`, in `zone` where
/// `other` is a `timestamptz` in another zone), a special word
/// (`'today'`) as the value it stands for. None when `lit` is not a text
/// literal, `other` no date or timestamp, or Arrow's cast reads the text
/// as it is; PostgreSQL's error where it refuses the text.
fn literal_for(
    lit: &Expr,
    other: &Expr,
    schema: &DFSchema,
    zone: Option<&Arc<str>>,
    order: DateOrder,
) -> Result<Option<Expr>> {
    let Some(text) = text_literal(lit) else {
        return Ok(None);
    };
    let t = match other.get_type(schema) {
        Ok(t @ (DataType::Timestamp(..) | DataType::Date32)) => t,
        _ => return Ok(None),
    };
    let to = other_zone(other, schema, zone);
    if let Some(special) = special_time(text, to.as_ref().unwrap_or(&t)) {
        return Ok(Some(rewrite_expr(special, schema, zone, order)?.data));
    }
    let fixed = literal_as_written(text, to.as_ref().unwrap_or(&t), order)?;
    if fixed.is_none() && to.is_none() {
        return Ok(None);
    }
    let lit = match fixed {
        Some(t) => Expr::Literal(ScalarValue::Utf8(Some(t)), None),
        None => lit.clone(),
    };
    Ok(Some(match to {
        Some(to) => Expr::Cast(Cast::new(Box::new(lit), to)),
        None => lit,
    }))
}

/// A cast to `to` of `e`, a `timestamptz` (already in the session's
/// zone): to a `timestamp` or `time`, its wall-clock time in its zone.
fn cast_of_zoned(e: Expr, schema: &DFSchema, to: &DataType) -> (Expr, bool) {
    let wall_clock = matches!(
        to,
        DataType::Timestamp(_, None) | DataType::Time32(_) | DataType::Time64(_)
    );
    match e.get_type(schema) {
        Ok(DataType::Timestamp(_, Some(tz))) if wall_clock && !utc_zone(&tz) => (
            datafusion::functions::datetime::to_local_time().call(vec![e]),
            true,
        ),
        _ => (e, false),
    }
}

/// The operand of a cast to `to`: in the session's zone, and on its wall
/// clock for a `timestamp` or `time`.
fn cast_operand(
    e: Expr,
    schema: &DFSchema,
    zone: Option<&Arc<str>>,
    to: &DataType,
) -> (Box<Expr>, bool) {
    let (e, a) = in_zone(e, schema, zone);
    let (e, b) = cast_of_zoned(e, schema, to);
    (Box::new(e), a || b)
}

/// Whether a cast to `to` reads the zone of its `timestamptz` operand.
fn zone_dependent(to: &DataType) -> bool {
    matches!(
        to,
        DataType::Date32
            | DataType::Date64
            | DataType::Time32(_)
            | DataType::Time64(_)
            | DataType::Timestamp(_, None)
    )
}

fn is_interval(e: &Expr, schema: &DFSchema) -> bool {
    matches!(e.get_type(schema), Ok(DataType::Interval(_)))
}

fn changed(e: Expr, yes: bool) -> Transformed<Expr> {
    if yes {
        Transformed::yes(e)
    } else {
        Transformed::no(e)
    }
}

/// A call of one of [`ZONED`] with its `timestamptz` arguments in the
/// session's zone.
fn zoned_args(
    func: Arc<datafusion::logical_expr::ScalarUDF>,
    args: Vec<Expr>,
    schema: &DFSchema,
    zone: Option<&Arc<str>>,
) -> Transformed<Expr> {
    let mut any = false;
    let to_char = func.name() == "to_char";
    let args = args
        .into_iter()
        .map(|a| {
            // PostgreSQL prints a date through `to_char` as the
            // `timestamptz` of its midnight in the session's zone
            // (`TZ` and `OF` print the zone).
            if to_char && matches!(a.get_type(schema), Ok(DataType::Date32 | DataType::Date64)) {
                any = true;
                return midnight_in(a, zone);
            }
            let (a, c) = in_zone(a, schema, zone);
            any |= c;
            a
        })
        .collect();
    changed(Expr::ScalarFunction(ScalarFunction { func, args }), any)
}

fn rewrite_expr(
    e: Expr,
    schema: &DFSchema,
    zone: Option<&Arc<str>>,
    order: DateOrder,
) -> Result<Transformed<Expr>> {
    Ok(match e {
        // `to_timestamp(text, format)` reads a time on the session's
        // clock (DataFusion's, in UTC).
        e @ Expr::ScalarFunction(_) if zone.is_some() && reads_text_time(&e) => {
            let wall = Expr::Cast(Cast::new(
                Box::new(e),
                DataType::Timestamp(TimeUnit::Microsecond, None),
            ));
            Transformed::yes(wall_clock_in(wall, zone))
        }
        Expr::ScalarFunction(ScalarFunction { func, mut args })
            if matches!(func.name(), "coalesce" | "greatest" | "least") =>
        {
            let yes = meeting_in_zone(args.iter_mut().collect(), schema, zone);
            changed(Expr::ScalarFunction(ScalarFunction { func, args }), yes)
        }
        Expr::Case(mut case) => {
            let values = quipu_connectors::dialect::case_values_mut(&mut case);
            let yes = meeting_in_zone(values, schema, zone);
            changed(Expr::Case(case), yes)
        }
        Expr::ScalarFunction(ScalarFunction { func, mut args })
            if matches!(func.name(), AT_TIME_ZONE | "generate_series")
                || ZONED.contains(&func.name()) =>
        {
            let dated = date_as_instant(&func, &mut args, schema, zone);
            let mut t = if ZONED.contains(&func.name()) {
                zoned_args(func, args, schema, zone)
            } else {
                Transformed::no(Expr::ScalarFunction(ScalarFunction { func, args }))
            };
            t.transformed |= dated;
            t
        }
        // Text that is not a literal, cast to a time: each value read as
        // PostgreSQL reads it (`time_text`), then as any cast.
        e @ Expr::Cast(_) if text_cast_to_time(&e).is_some() && text_operand(&e, schema) => {
            let to = text_cast_to_time(&e).unwrap_or("timestamp");
            let Expr::Cast(Cast { expr, field }) = e else {
                unreachable!("matched above")
            };
            let mut args = vec![*expr, datafusion::logical_expr::lit(to)];
            // A `timestamptz` without an offset is on the session's clock.
            match (zone, to) {
                (Some(zone), "timestamptz") => args.push(lit(zone.to_string())),
                _ if order != DateOrder::Mdy => args.push(lit("")),
                _ => {}
            }
            // A date's numbers in the session's order.
            if order != DateOrder::Mdy {
                args.push(lit(order.name()));
            }
            let read = time_text::time_text().call(args);
            let cast = Expr::Cast(Cast {
                expr: Box::new(read),
                field,
            });
            Transformed::yes(rewrite_expr(cast, schema, zone, order)?.data)
        }
        // `'today'::date`, `TIMESTAMP 'epoch'`: the value the word stands
        // for, cast in the session's zone as any other value.
        Expr::Cast(Cast { expr, field })
            if text_literal(&expr)
                .and_then(|t| special_time(t, field.data_type()))
                .is_some() =>
        {
            let special = text_literal(&expr).and_then(|t| special_time(t, field.data_type()));
            let special = special.unwrap_or(Expr::Cast(Cast { expr, field }));
            Transformed::yes(rewrite_expr(special, schema, zone, order)?.data)
        }
        // `TIMESTAMP '2024-01-01 10:00'`, `'...'::timestamptz`,
        // `'2024-01-01 10:00+05'::timestamp` (the offset ignored),
        // `DATE 'Jan 5 2024'`.
        Expr::Cast(Cast { expr, field })
            if text_literal(&expr).is_some()
                && matches!(
                    field.data_type(),
                    DataType::Date32 | DataType::Timestamp(..)
                ) =>
        {
            let text = text_literal(&expr).unwrap_or_default();
            match literal_as_written(text, field.data_type(), order)? {
                Some(text) => Transformed::yes(Expr::Cast(Cast {
                    expr: Box::new(Expr::Literal(ScalarValue::Utf8(Some(text)), None)),
                    field,
                })),
                None => Transformed::no(Expr::Cast(Cast { expr, field })),
            }
        }
        Expr::Cast(Cast { expr, field }) if zone_dependent(field.data_type()) => {
            let (expr, yes) = cast_operand(*expr, schema, zone, field.data_type());
            changed(Expr::Cast(Cast { expr, field }), yes)
        }
        // A `timestamp` cast to a `timestamptz` reads its wall clock in the
        // zone: through `quipu_at_time_zone`, which resolves the hours a
        // daylight-saving change skips or repeats as PostgreSQL does
        // (Arrow's cast refused them).
        Expr::Cast(Cast { expr, field })
            if matches!(field.data_type(), DataType::Timestamp(_, Some(tz)) if !utc_zone(tz))
                && matches!(expr.get_type(schema), Ok(DataType::Timestamp(_, None))) =>
        {
            let DataType::Timestamp(_, Some(tz)) = field.data_type() else {
                unreachable!("matched above")
            };
            let at = quipu_connectors::dialect::at_time_zone::at_time_zone()
                .call(vec![*expr, datafusion::logical_expr::lit(tz.to_string())]);
            Transformed::yes(Expr::Cast(Cast {
                expr: Box::new(at),
                field,
            }))
        }
        // The cast DataFusion's coercion puts on a `timestamp` meeting a
        // source's `timestamptz` (typed UTC) in a `UNION`: PostgreSQL
        // reads its wall clock in the session's zone, as above.
        Expr::Cast(Cast { expr, field })
            if zone.is_some()
                && matches!(field.data_type(), DataType::Timestamp(_, Some(tz)) if utc_zone(tz))
                && matches!(expr.get_type(schema), Ok(DataType::Timestamp(_, None))) =>
        {
            Transformed::yes(Expr::Cast(Cast {
                expr: Box::new(wall_clock_in(*expr, zone)),
                field,
            }))
        }
        Expr::TryCast(TryCast { expr, field }) if zone_dependent(field.data_type()) => {
            let (expr, yes) = cast_operand(*expr, schema, zone, field.data_type());
            changed(Expr::TryCast(TryCast { expr, field }), yes)
        }
        // A `timestamp` or a `date` meeting a `timestamptz` is read in
        // the session's zone, as PostgreSQL casts it (DataFusion's
        // coercion read it in the other side's, UTC as read from a
        // source).
        Expr::BinaryExpr(BinaryExpr { left, op, right })
            if (comparison(op) || op == Operator::Minus)
                && mixed_timestamps(&left, &right, schema, zone) =>
        {
            let wall = |e: Box<Expr>| {
                let t = e.get_type(schema).ok();
                on_session_clock(&e, t.as_ref(), zone).map_or(e, Box::new)
            };
            Transformed::yes(Expr::BinaryExpr(BinaryExpr {
                left: wall(left),
                op,
                right: wall(right),
            }))
        }
        Expr::BinaryExpr(BinaryExpr { left, op, right }) if comparison(op) => {
            if let Some(r) = literal_for(&right, &left, schema, zone, order)? {
                return Ok(Transformed::yes(Expr::BinaryExpr(BinaryExpr {
                    left,
                    op,
                    right: Box::new(r),
                })));
            }
            if let Some(l) = literal_for(&left, &right, schema, zone, order)? {
                return Ok(Transformed::yes(Expr::BinaryExpr(BinaryExpr {
                    left: Box::new(l),
                    op,
                    right,
                })));
            }
            Transformed::no(Expr::BinaryExpr(BinaryExpr { left, op, right }))
        }
        // `timestamptz ± interval` adds days and months on the session's
        // calendar: across a daylight-saving change `+ interval '1 day'`
        // is 23 or 25 hours, as in PostgreSQL (Arrow adds them in the
        // zone of the type, UTC as read from a source).
        Expr::BinaryExpr(BinaryExpr { left, op, right })
            if matches!(op, Operator::Plus | Operator::Minus)
                && (is_interval(&left, schema) || is_interval(&right, schema)) =>
        {
            let (l, a) = in_zone(*left, schema, zone);
            let (r, b) = in_zone(*right, schema, zone);
            changed(
                Expr::BinaryExpr(BinaryExpr {
                    left: Box::new(l),
                    op,
                    right: Box::new(r),
                }),
                a || b,
            )
        }
        Expr::Between(Between {
            expr,
            negated,
            low,
            high,
        }) => {
            let l = literal_for(&low, &expr, schema, zone, order)?;
            let h = literal_for(&high, &expr, schema, zone, order)?;
            let any = l.is_some() || h.is_some();
            let e = Expr::Between(Between {
                negated,
                low: l.map(Box::new).unwrap_or(low),
                high: h.map(Box::new).unwrap_or(high),
                expr,
            });
            changed(e, any)
        }
        e => Transformed::no(e),
    })
}
