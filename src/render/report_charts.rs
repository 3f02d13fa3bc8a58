//! The report's charts as inline SVG, drawn with plotters' SVG backend (no fonts are embedded:
//! text is SVG `<text>` the browser sets in its own sans-serif). Axes and text are drawn in black
//! and recoloured by the page's CSS, so one chart reads in light and dark schemes.

use plotters::prelude::*;

use crate::report::rates::Bin;

/// Series colours, chosen to read on white and on near-black.
pub const ALLOW: RGBColor = RGBColor(0x3b, 0x82, 0xf6);
pub const BLOCK: RGBColor = RGBColor(0xdc, 0x26, 0x26);
pub const CAPTCHA: RGBColor = RGBColor(0xf5, 0x9e, 0x0b);
pub const CHALLENGE: RGBColor = RGBColor(0x8b, 0x5c, 0xf6);
pub const COUNTED: RGBColor = RGBColor(0x10, 0xb9, 0x81);
pub const PREVIOUS: RGBColor = RGBColor(0x9c, 0xa3, 0xaf);
pub const DOMESTIC: RGBColor = RGBColor(0x25, 0x63, 0xeb);
pub const OVERSEAS: RGBColor = RGBColor(0xea, 0x58, 0x0c);

const DRAW: &str = "drawing into a string cannot fail";

/// `123456` -> `123k`: axis labels stay short.
fn short(v: f64) -> String {
    match v.abs() {
        a if a >= 1e6 => format!("{:.1}M", v / 1e6),
        a if a >= 1e3 => format!("{:.0}k", v / 1e3),
        _ => format!("{v:.0}"),
    }
}

/// A series of one value per hour.
pub struct Series<'a> {
    pub name: &'a str,
    pub values: &'a [u64],
    pub color: RGBColor,
}

/// Hourly values: `stacked` as stacked bars, `lines` drawn over them. `hours` labels the x axis.
pub fn hours_chart(hours: &[String], stacked: &[Series<'_>], lines: &[Series<'_>]) -> String {
    let n = hours.len().max(1);
    let tops: Vec<u64> = (0..n)
        .map(|i| {
            stacked
                .iter()
                .map(|s| s.values.get(i).copied().unwrap_or(0))
                .sum()
        })
        .collect();
    let ymax = tops
        .iter()
        .chain(lines.iter().flat_map(|l| l.values))
        .copied()
        .max()
        .unwrap_or(0)
        .max(1) as f64
        * 1.05;
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (960, 300)).into_drawing_area();
        let mut chart = ChartBuilder::on(&root)
            .margin(10)
            .x_label_area_size(30)
            .y_label_area_size(56)
            .build_cartesian_2d(0f64..n as f64, 0f64..ymax)
            .expect(DRAW);
        // Only whole hours are labelled: plotters may also place labels between them.
        let label = |x: &f64| {
            (x.fract() == 0.0)
                .then(|| hours.get(*x as usize))
                .flatten()
                .map(|h| h.get(5..13).unwrap_or(h).replace('T', " "))
                .unwrap_or_default()
        };
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(8)
            .y_labels(6)
            .x_label_formatter(&label)
            .y_label_formatter(&|y| short(*y))
            .label_style(("sans-serif", 12))
            .axis_style(BLACK)
            .max_light_lines(0)
            .bold_line_style(BLACK.mix(0.15))
            .draw()
            .expect(DRAW);
        let mut base = vec![0u64; n];
        for s in stacked {
            chart
                .draw_series((0..n).filter_map(|i| {
                    let v = s.values.get(i).copied().unwrap_or(0);
                    let y0 = base[i];
                    base[i] += v;
                    (v > 0).then(|| {
                        Rectangle::new(
                            [
                                (i as f64 + 0.08, y0 as f64),
                                (i as f64 + 0.92, (y0 + v) as f64),
                            ],
                            s.color.filled(),
                        )
                    })
                }))
                .expect(DRAW);
        }
        for l in lines {
            chart
                .draw_series(LineSeries::new(
                    (0..n).map(|i| (i as f64 + 0.5, l.values.get(i).copied().unwrap_or(0) as f64)),
                    l.color.stroke_width(2),
                ))
                .expect(DRAW);
        }
        root.present().expect(DRAW);
    }
    svg
}

/// Clients per peak in doubling bins, with the limit as a vertical line (the x axis is log 2).
pub fn peaks_histogram(bins: &[Bin], limit: u64) -> String {
    let lo = bins.first().map_or(0, |b| b.from.ilog2());
    let hi = bins
        .last()
        .map_or(1, |b| b.to.ilog2())
        .max(limit.max(1).ilog2() + 1);
    let ymax = bins.iter().map(|b| b.clients).max().unwrap_or(0).max(1) as f64 * 1.1;
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (640, 240)).into_drawing_area();
        let mut chart = ChartBuilder::on(&root)
            .margin(10)
            .x_label_area_size(30)
            .y_label_area_size(48)
            .build_cartesian_2d(f64::from(lo)..f64::from(hi), 0f64..ymax)
            .expect(DRAW);
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels((hi - lo + 1) as usize)
            .x_label_formatter(&|x| short(2f64.powf(*x)))
            .y_label_formatter(&|y| short(*y))
            .label_style(("sans-serif", 12))
            .axis_style(BLACK)
            .max_light_lines(0)
            .bold_line_style(BLACK.mix(0.15))
            .x_desc("peak requests per client in the window (log scale)")
            .y_desc("clients")
            .draw()
            .expect(DRAW);
        chart
            .draw_series(bins.iter().map(|b| {
                let x = f64::from(b.from.ilog2());
                Rectangle::new(
                    [(x + 0.05, 0.0), (x + 0.95, b.clients as f64)],
                    ALLOW.filled(),
                )
            }))
            .expect(DRAW);
        let x = (limit.max(1) as f64).log2();
        chart
            .draw_series(LineSeries::new(
                [(x, 0.0), (x, ymax)],
                BLOCK.stroke_width(2),
            ))
            .expect(DRAW);
        root.present().expect(DRAW);
    }
    svg
}

/// A small line of hourly values without axes; `mark` draws a vertical line at that hour.
pub fn sparkline(values: &[u64], mark: Option<f64>) -> String {
    let n = values.len().max(2);
    let ymax = values.iter().copied().max().unwrap_or(0).max(1) as f64;
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (160, 28)).into_drawing_area();
        let mut chart = ChartBuilder::on(&root)
            .margin(2)
            .build_cartesian_2d(0f64..(n - 1) as f64, 0f64..ymax)
            .expect(DRAW);
        if let Some(x) = mark {
            chart
                .draw_series(LineSeries::new(
                    [(x, 0.0), (x, ymax)],
                    BLOCK.stroke_width(1),
                ))
                .expect(DRAW);
        }
        chart
            .draw_series(LineSeries::new(
                values
                    .iter()
                    .enumerate()
                    .map(|(i, &v)| (i as f64, v as f64)),
                ALLOW.stroke_width(1),
            ))
            .expect(DRAW);
        root.present().expect(DRAW);
    }
    svg
}
