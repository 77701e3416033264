//! Two SVG plots, written by hand (no plotting dependency): the latency distribution (latency
//! at each percentile, on the usual log scale of 1/(1-p)), and updates delivered per second.

use std::fmt::Write;

use hdrhistogram::Histogram;

const WIDTH: f64 = 800.0;
const HEIGHT: f64 = 420.0;
const LEFT: f64 = 70.0;
const RIGHT: f64 = 20.0;
const TOP: f64 = 40.0;
const BOTTOM: f64 = 50.0;

fn frame(title: &str, x_label: &str, y_label: &str) -> String {
    let mut svg = String::new();
    let _ = write!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" font-family="sans-serif" font-size="12">
<rect width="100%" height="100%" fill="white"/>
<text x="{}" y="22" text-anchor="middle" font-size="15">{title}</text>
<line x1="{LEFT}" y1="{}" x2="{}" y2="{}" stroke="black"/>
<line x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{}" stroke="black"/>
<text x="{}" y="{}" text-anchor="middle">{x_label}</text>
<text x="16" y="{}" text-anchor="middle" transform="rotate(-90 16 {})">{y_label}</text>
"#,
        WIDTH / 2.0,
        HEIGHT - BOTTOM,
        WIDTH - RIGHT,
        HEIGHT - BOTTOM,
        HEIGHT - BOTTOM,
        WIDTH / 2.0,
        HEIGHT - 12.0,
        HEIGHT / 2.0,
        HEIGHT / 2.0,
    );
    svg
}

/// Five labels up the y axis, from 0 to `y_max`, with `decimals` digits.
fn y_ticks(svg: &mut String, y_max: f64, decimals: usize) {
    for i in 0..=4 {
        let value = y_max * f64::from(i) / 4.0;
        let y = HEIGHT - BOTTOM - (HEIGHT - TOP - BOTTOM) * (value / y_max);
        let _ = writeln!(
            svg,
            r#"<text x="{}" y="{:.1}" text-anchor="end">{value:.decimals$}</text>"#,
            LEFT - 6.0,
            y + 4.0
        );
    }
}

/// Latency (ms) against percentile, one line per histogram.
pub fn latency(series: &[(&str, &str, &Histogram<u64>)]) -> String {
    let mut svg = frame(
        "End-to-end latency by percentile",
        "percentile",
        "latency (ms)",
    );
    // x: log10(1 / (1 - p)), from p = 0 to p = 99.99 %.
    let x_max = 4.0;
    let y_max = series
        .iter()
        .map(|(_, _, h)| h.max() as f64 / 1000.0)
        .fold(1.0, f64::max)
        * 1.1;
    let x = |p: f64| LEFT + (WIDTH - LEFT - RIGHT) * ((1.0 / (1.0 - p)).log10() / x_max).min(1.0);
    let y = |ms: f64| HEIGHT - BOTTOM - (HEIGHT - TOP - BOTTOM) * (ms / y_max);
    for (label, p) in [
        ("0", 0.0),
        ("90", 0.9),
        ("99", 0.99),
        ("99.9", 0.999),
        ("99.99", 0.9999),
    ] {
        let _ = writeln!(
            svg,
            r##"<text x="{:.1}" y="{}" text-anchor="middle">{label}</text><line x1="{0:.1}" y1="{TOP}" x2="{0:.1}" y2="{}" stroke="#ddd"/>"##,
            x(p),
            HEIGHT - BOTTOM + 18.0,
            HEIGHT - BOTTOM,
        );
    }
    y_ticks(&mut svg, y_max, 1);
    for (index, (label, colour, histogram)) in series.iter().enumerate() {
        if histogram.is_empty() {
            continue;
        }
        let mut points = String::new();
        for step in 0..=400 {
            let p = 1.0 - 10f64.powf(-x_max * f64::from(step) / 400.0);
            let ms = histogram.value_at_quantile(p) as f64 / 1000.0;
            let _ = write!(points, "{:.1},{:.1} ", x(p), y(ms));
        }
        let _ = writeln!(
            svg,
            r#"<polyline points="{points}" fill="none" stroke="{colour}" stroke-width="2"/>
<text x="{}" y="{}" fill="{colour}">{label} ({} samples)</text>"#,
            LEFT + 12.0,
            TOP + 16.0 + 16.0 * index as f64,
            histogram.len()
        );
    }
    svg.push_str("</svg>\n");
    svg
}

/// Updates delivered in each second of the run.
pub fn timeline(per_second: &[u64]) -> String {
    let mut svg = frame(
        "Updates delivered per second",
        "seconds since the start",
        "updates / s",
    );
    let y_max = per_second.iter().copied().max().unwrap_or(1).max(1) as f64 * 1.1;
    let n = per_second.len().max(1) as f64;
    let bar = (WIDTH - LEFT - RIGHT) / n;
    for (second, count) in per_second.iter().enumerate() {
        let h = (HEIGHT - TOP - BOTTOM) * (*count as f64 / y_max);
        let _ = writeln!(
            svg,
            r##"<rect x="{:.1}" y="{:.1}" width="{:.2}" height="{h:.1}" fill="#3b7dd8"/>"##,
            LEFT + bar * second as f64,
            HEIGHT - BOTTOM - h,
            (bar - 0.5).max(0.5)
        );
    }
    y_ticks(&mut svg, y_max, 0);
    let step = (n / 10.0).ceil().max(1.0) as usize;
    for second in (0..per_second.len()).step_by(step) {
        let _ = writeln!(
            svg,
            r#"<text x="{:.1}" y="{}" text-anchor="middle">{second}</text>"#,
            LEFT + bar * (second as f64 + 0.5),
            HEIGHT - BOTTOM + 18.0
        );
    }
    svg.push_str("</svg>\n");
    svg
}
