//! The report's charts, drawn by plotters' SVG backend into strings that
//! the HTML inlines. Each function returns one `<svg>` element carrying its
//! title (`<title>`, for screen readers and the report's tests).

use chrono::{Days, NaiveDate};
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

pub const WIDTH: u32 = 960;

/// Tableau 10: distinguishable, and readable by most colour-blind readers.
pub const PALETTE: [RGBColor; 10] = [
    RGBColor(78, 121, 167),
    RGBColor(242, 142, 43),
    RGBColor(225, 87, 89),
    RGBColor(118, 183, 178),
    RGBColor(89, 161, 79),
    RGBColor(237, 201, 72),
    RGBColor(176, 122, 161),
    RGBColor(255, 157, 167),
    RGBColor(156, 117, 95),
    RGBColor(186, 176, 172),
];
const GRID: RGBColor = RGBColor(230, 230, 230);
const INK: RGBColor = RGBColor(60, 60, 60);
const FONT: &str = "sans-serif";

type Result<T> = std::result::Result<T, String>;

fn err<E: std::fmt::Display>(e: E) -> String {
    format!("cannot draw a chart: {e}")
}

/// Draws with `draw` on a WIDTH x `height` SVG and returns it, titled.
fn svg(
    title: &str,
    height: u32,
    draw: impl FnOnce(&DrawingArea<SVGBackend, Shift>) -> Result<()>,
) -> Result<String> {
    let mut text = String::new();
    {
        let root = SVGBackend::with_string(&mut text, (WIDTH, height)).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        draw(&root)?;
        root.present().map_err(err)?;
    }
    // Scales with the page (the width and height attributes stay as the
    // intrinsic size) and says what it shows. The namespace attribute goes:
    // HTML5 puts an inline <svg> in the SVG namespace by itself, and the
    // report then holds no http:// text at all (it fetches nothing).
    let title = super::html::escape(title);
    let text = text.replacen(" xmlns=\"http://www.w3.org/2000/svg\"", "", 1);
    Ok(text
        .replacen(
            "<svg ",
            &format!(
                "<svg role=\"img\" aria-label=\"{title}\" preserveAspectRatio=\"xMinYMin meet\" "
            ),
            1,
        )
        .replacen('>', &format!("><title>{title}</title>"), 1))
}

/// A chart with nothing to draw: its frame and why it is empty.
pub fn empty(title: &str, message: &str) -> Result<String> {
    svg(title, 120, |root| {
        root.draw(&Text::new(
            message.to_string(),
            (WIDTH as i32 / 2, 60),
            TextStyle::from((FONT, 16).into_font())
                .color(&INK)
                .pos(Pos::new(HPos::Center, VPos::Center)),
        ))
        .map_err(err)
    })
}

/// $1.2M, $12.3k, $950.
pub fn money(v: f64) -> String {
    let a = v.abs();
    let sign = if v < 0.0 { "-" } else { "" };
    if a >= 1e6 {
        format!("{sign}${:.1}M", a / 1e6)
    } else if a >= 1e4 {
        format!("{sign}${:.0}k", a / 1e3)
    } else if a >= 1e3 {
        format!("{sign}${:.1}k", a / 1e3)
    } else {
        format!("{sign}${a:.0}")
    }
}

/// Cuts long labels to `n` characters.
fn short(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(n - 1).collect();
        t.push('…');
        t
    }
}

/// One line per series over the periods `x` (labels), values in dollars.
pub fn lines(title: &str, x: &[String], series: &[(String, Vec<Option<f64>>)]) -> Result<String> {
    let max = series
        .iter()
        .flat_map(|(_, v)| v.iter().flatten())
        .fold(0.0f64, |m, v| m.max(*v));
    let n = x.len().max(2);
    svg(title, 380, |root| {
        let mut chart = ChartBuilder::on(root)
            .margin(16)
            // Room for the last period's label, centred on the right edge.
            .margin_right(40)
            .x_label_area_size(36)
            .y_label_area_size(72)
            .build_cartesian_2d(0..(n - 1), 0.0..(max * 1.12).max(1.0))
            .map_err(err)?;
        let labels = x.to_vec();
        chart
            .configure_mesh()
            .light_line_style(TRANSPARENT)
            .bold_line_style(GRID)
            .x_labels(x.len().min(12))
            .x_label_formatter(&|i| labels.get(*i).cloned().unwrap_or_default())
            .y_label_formatter(&|v| money(*v))
            .label_style((FONT, 13))
            .axis_style(INK)
            .draw()
            .map_err(err)?;
        for (k, (name, values)) in series.iter().enumerate() {
            let color = PALETTE[k % PALETTE.len()];
            let points: Vec<(usize, f64)> = values
                .iter()
                .enumerate()
                .filter_map(|(i, v)| v.map(|v| (i, v)))
                .collect();
            chart
                .draw_series(LineSeries::new(points.clone(), color.stroke_width(2)))
                .map_err(err)?
                .label(name.clone())
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(3))
                });
            chart
                .draw_series(
                    points
                        .iter()
                        .map(|&(i, v)| Circle::new((i, v), 3, color.filled())),
                )
                .map_err(err)?;
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .label_font((FONT, 14))
            .background_style(WHITE.mix(0.85))
            .border_style(GRID)
            .draw()
            .map_err(err)
    })
}

/// Horizontal bars, largest first from the top, the value at each bar's
/// end. `behind` draws a lighter bar under each (a target, e.g. the
/// reorder point) and `reference` a vertical line (e.g. break-even).
pub struct Bars<'a> {
    pub title: &'a str,
    pub labels: Vec<String>,
    pub values: Vec<f64>,
    pub format: fn(f64) -> String,
    pub color: RGBColor,
    pub legend: Option<(&'a str, &'a str)>,
    pub behind: Option<Vec<f64>>,
    pub reference: Option<(f64, &'a str)>,
}

pub fn bars(b: Bars) -> Result<String> {
    let n = b.labels.len();
    let all = b
        .values
        .iter()
        .chain(b.behind.iter().flatten())
        .chain(b.reference.iter().map(|(r, _)| r));
    let max = all.clone().fold(0.0f64, |m, v| m.max(*v));
    let min = all.fold(0.0f64, |m, v| m.min(*v));
    let span = (max - min).max(1e-9);
    let height = 60 + 28 * n as u32;
    let Bars {
        title,
        labels,
        values,
        format,
        color,
        legend,
        behind,
        reference,
    } = b;
    svg(title, height.max(140), |root| {
        let mut chart = ChartBuilder::on(root)
            .margin(14)
            .x_label_area_size(30)
            .y_label_area_size(230)
            .build_cartesian_2d(
                (min - if min < 0.0 { span * 0.1 } else { 0.0 })
                    ..(max
                        + span
                            * if legend.is_some() || reference.is_some() {
                                0.4
                            } else {
                                0.18
                            }),
                (0..n).into_segmented(),
            )
            .map_err(err)?;
        // Row k (0 = the largest) sits at segment n-1-k: the top.
        let row = |k: usize| n - 1 - k;
        let names = labels.clone();
        chart
            .configure_mesh()
            .disable_y_mesh()
            .light_line_style(TRANSPARENT)
            .bold_line_style(GRID)
            .y_labels(n)
            .y_label_formatter(&|v| match v {
                SegmentValue::CenterOf(i) if *i < n => short(&names[n - 1 - *i], 30),
                _ => String::new(),
            })
            .x_label_formatter(&|v| format(*v))
            .label_style((FONT, 13))
            .axis_style(INK)
            .draw()
            .map_err(err)?;
        let bar = |k: usize, v: f64, style: ShapeStyle, inset: u32| {
            let mut r = Rectangle::new(
                [
                    (0.0, SegmentValue::Exact(row(k))),
                    (v, SegmentValue::Exact(row(k) + 1)),
                ],
                style,
            );
            r.set_margin(inset, inset, 0, 0);
            r
        };
        let (main_label, behind_label) = legend.unwrap_or(("", ""));
        if let Some(behind) = &behind {
            let grey = RGBColor(200, 200, 200);
            let drawn = chart
                .draw_series(
                    behind
                        .iter()
                        .enumerate()
                        .map(|(k, v)| bar(k, *v, grey.filled(), 4)),
                )
                .map_err(err)?;
            if !behind_label.is_empty() {
                drawn.label(behind_label).legend(move |(x, y)| {
                    Rectangle::new([(x, y - 5), (x + 16, y + 5)], grey.filled())
                });
            }
        }
        let inset = if behind.is_some() { 9 } else { 4 };
        let drawn = chart
            .draw_series(
                values
                    .iter()
                    .enumerate()
                    .map(|(k, v)| bar(k, *v, color.filled(), inset)),
            )
            .map_err(err)?;
        if !main_label.is_empty() {
            drawn.label(main_label).legend(move |(x, y)| {
                Rectangle::new([(x, y - 5), (x + 16, y + 5)], color.filled())
            });
        }
        let value_style = TextStyle::from((FONT, 13).into_font())
            .color(&INK)
            .pos(Pos::new(HPos::Left, VPos::Center));
        chart
            .draw_series(values.iter().enumerate().map(|(k, v)| {
                Text::new(
                    format!("  {}", format(*v)),
                    (v.max(0.0), SegmentValue::CenterOf(row(k))),
                    value_style.clone(),
                )
            }))
            .map_err(err)?;
        if let Some((x, label)) = reference {
            let red = RGBColor(180, 40, 40);
            chart
                .draw_series(std::iter::once(PathElement::new(
                    vec![(x, SegmentValue::Exact(0)), (x, SegmentValue::Exact(n))],
                    red.stroke_width(2),
                )))
                .map_err(err)?
                .label(label)
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 16, y)], red.stroke_width(2))
                });
        }
        if legend.is_some() || reference.is_some() {
            chart
                .configure_series_labels()
                .position(SeriesLabelPosition::UpperRight)
                .label_font((FONT, 13))
                .background_style(WHITE.mix(0.9))
                .border_style(GRID)
                .draw()
                .map_err(err)?;
        }
        Ok(())
    })
}

/// A forecast week: its Monday, the forecast, and the interval (lower,
/// upper) when the view gives one.
pub type ForecastWeek = (NaiveDate, f64, Option<(f64, f64)>);

/// One category's weekly revenue and forecast.
pub struct Panel {
    pub name: String,
    /// Weeks (their Mondays) and revenue, oldest first.
    pub history: Vec<(NaiveDate, f64)>,
    /// Weeks, forecast and its interval when the view gives one.
    pub forecast: Vec<ForecastWeek>,
}

/// Small multiples: one panel per category, history as a solid line, the
/// forecast dashed with its interval shaded (when the view gives one).
/// Weeks sit at their place in time: a week missing between the history and
/// the forecast (the partial current week) shows as a gap.
pub fn forecast(title: &str, panels: &[Panel]) -> Result<String> {
    const COLS: usize = 4;
    let rows = panels.len().div_ceil(COLS).max(1);
    let with_interval = panels
        .iter()
        .any(|p| p.forecast.iter().any(|(_, _, i)| i.is_some()));
    svg(title, 40 + 230 * rows as u32, |root| {
        let (legend_area, grid) = root.split_vertically(40);
        let blue = PALETTE[0];
        let orange = PALETTE[1];
        let key = TextStyle::from((FONT, 14).into_font())
            .color(&INK)
            .pos(Pos::new(HPos::Left, VPos::Center));
        let mut items: Vec<(&str, ShapeStyle, bool)> = vec![
            ("weekly revenue", blue.stroke_width(2), false),
            ("forecast", orange.stroke_width(2), false),
        ];
        if with_interval {
            items.push(("prediction interval", orange.mix(0.25).filled(), true));
        }
        let mut x = 20;
        for (label, style, filled) in items {
            if filled {
                legend_area
                    .draw(&Rectangle::new([(x, 14), (x + 24, 26)], style))
                    .map_err(err)?;
            } else {
                legend_area
                    .draw(&PathElement::new(vec![(x, 20), (x + 24, 20)], style))
                    .map_err(err)?;
            }
            legend_area
                .draw(&Text::new(label.to_string(), (x + 30, 20), key.clone()))
                .map_err(err)?;
            x += 40 + 9 * label.len() as i32;
        }
        let areas = grid.split_evenly((rows, COLS));
        for (panel, area) in panels.iter().zip(areas.iter()) {
            let Some(first) = panel
                .history
                .iter()
                .map(|(w, _)| *w)
                .chain(panel.forecast.iter().map(|(w, _, _)| *w))
                .min()
            else {
                continue;
            };
            let at = |w: &NaiveDate| ((*w - first).num_days() / 7) as f64;
            let last = panel
                .history
                .iter()
                .map(|(w, _)| at(w))
                .chain(panel.forecast.iter().map(|(w, _, _)| at(w)))
                .fold(1.0f64, f64::max);
            let max = panel
                .history
                .iter()
                .map(|(_, v)| *v)
                .chain(
                    panel
                        .forecast
                        .iter()
                        .map(|(_, v, i)| i.map_or(*v, |(_, hi)| hi.max(*v))),
                )
                .fold(0.0f64, f64::max);
            let mut chart = ChartBuilder::on(area)
                .caption(short(&panel.name, 26), (FONT, 15))
                .margin(8)
                .x_label_area_size(22)
                .y_label_area_size(50)
                .build_cartesian_2d(0.0..last, 0.0..(max * 1.1).max(1.0))
                .map_err(err)?;
            chart
                .configure_mesh()
                .light_line_style(TRANSPARENT)
                .bold_line_style(GRID)
                .x_labels(5)
                .y_labels(5)
                .x_label_formatter(&|x| {
                    // MM-DD of the week's Monday.
                    (first + Days::new(7 * x.round().max(0.0) as u64))
                        .format("%m-%d")
                        .to_string()
                })
                .y_label_formatter(&|v| money(*v))
                .label_style((FONT, 11))
                .axis_style(INK)
                .draw()
                .map_err(err)?;
            let band: Vec<(f64, f64, f64)> = panel
                .forecast
                .iter()
                .filter_map(|(w, _, i)| i.map(|(lo, hi)| (at(w), lo, hi)))
                .collect();
            if band.len() >= 2 {
                let mut outline: Vec<(f64, f64)> = band.iter().map(|&(x, _, hi)| (x, hi)).collect();
                outline.extend(band.iter().rev().map(|&(x, lo, _)| (x, lo)));
                chart
                    .draw_series(std::iter::once(Polygon::new(
                        outline,
                        orange.mix(0.25).filled(),
                    )))
                    .map_err(err)?;
            } else if let [(x, lo, hi)] = band[..] {
                chart
                    .draw_series(std::iter::once(PathElement::new(
                        vec![(x, lo), (x, hi)],
                        orange.mix(0.4).stroke_width(6),
                    )))
                    .map_err(err)?;
            }
            chart
                .draw_series(LineSeries::new(
                    panel.history.iter().map(|(w, v)| (at(w), *v)),
                    blue.stroke_width(2),
                ))
                .map_err(err)?;
            // The forecast continues from the last week of history.
            let mut line: Vec<(f64, f64)> = panel
                .history
                .last()
                .map(|(w, v)| (at(w), *v))
                .into_iter()
                .collect();
            line.extend(panel.forecast.iter().map(|(w, v, _)| (at(w), *v)));
            chart
                .draw_series(DashedLineSeries::new(line, 6, 4, orange.stroke_width(2)))
                .map_err(err)?;
            chart
                .draw_series(
                    panel
                        .forecast
                        .iter()
                        .map(|(w, v, _)| Circle::new((at(w), *v), 3, orange.filled())),
                )
                .map_err(err)?;
        }
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn money_is_short() {
        assert_eq!(money(950.4), "$950");
        assert_eq!(money(1234.0), "$1.2k");
        assert_eq!(money(56_789.0), "$57k");
        assert_eq!(money(2_345_678.0), "$2.3M");
        assert_eq!(money(-1500.0), "-$1.5k");
    }

    #[test]
    fn charts_are_titled_svg() {
        let s = bars(Bars {
            title: "Stores <&>",
            labels: vec!["A & B".into(), "C".into()],
            values: vec![10.0, 5.0],
            format: money,
            color: PALETTE[0],
            legend: None,
            behind: None,
            reference: Some((1.0, "break-even")),
        })
        .unwrap();
        assert!(
            s.starts_with("<svg role=\"img\" aria-label=\"Stores &lt;&amp;&gt;\""),
            "{s}"
        );
        assert!(s.contains("<title>Stores &lt;&amp;&gt;</title>"), "{s}");
        assert!(s.contains("A &amp; B"), "{s}");
        assert_eq!(s.matches("<svg").count(), 1);
    }
}
