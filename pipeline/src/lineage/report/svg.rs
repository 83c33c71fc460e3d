//! Inline SVG charts for the HTML report: horizontal bars and line charts, no scripts.

use std::fmt::Write;

use serde_json::Value;

/// Series colours (colour-blind-safe palette).
const COLORS: [&str; 8] = [
    "#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000",
];
const WIDTH: f64 = 720.0;

/// Escapes text for HTML and SVG.
pub fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn number(v: &Value) -> Option<f64> {
    v.as_f64()
}

fn label(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Short number text: integers as is, others with 3 significant decimals.
pub fn short(x: f64) -> String {
    if x.fract() == 0.0 && x.abs() < 1e15 {
        format!("{x:.0}")
    } else if x.abs() >= 100.0 {
        format!("{x:.1}")
    } else {
        format!("{x:.3}")
    }
}

/// Horizontal bars: a group per row, a bar per value column.
pub fn bars(rows: &[Value], label_col: &str, values: &[String]) -> String {
    let rows: Vec<&Value> = rows.iter().take(30).collect();
    let max = rows
        .iter()
        .flat_map(|r| values.iter().filter_map(|v| number(&r[v.as_str()])))
        .fold(0.0_f64, f64::max);
    let (left, bar_h, gap) = (220.0, 14.0, 8.0);
    let group = bar_h * values.len() as f64 + gap;
    let legend = 22.0;
    let height = legend + group * rows.len() as f64 + 4.0;
    let span = WIDTH - left - 90.0;
    let mut svg = format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" viewBox="0 0 {WIDTH} {height}" role="img" font-family="sans-serif" font-size="11">"#
    );
    for (i, v) in values.iter().enumerate() {
        let x = left + i as f64 * 150.0;
        let _ = write!(
            svg,
            r#"<rect x="{x}" y="4" width="10" height="10" fill="{}"/><text x="{}" y="13">{}</text>"#,
            COLORS[i % COLORS.len()],
            x + 14.0,
            escape(v)
        );
    }
    for (r, row) in rows.iter().enumerate() {
        let y0 = legend + r as f64 * group;
        let _ = write!(
            svg,
            r#"<text x="{}" y="{}" text-anchor="end">{}</text>"#,
            left - 6.0,
            y0 + bar_h * values.len() as f64 / 2.0 + 4.0,
            escape(&truncate(&label(&row[label_col]), 34))
        );
        for (i, v) in values.iter().enumerate() {
            let x = number(&row[v.as_str()]).unwrap_or(0.0);
            let w = if max > 0.0 { x / max * span } else { 0.0 };
            let y = y0 + i as f64 * bar_h;
            let _ = write!(
                svg,
                r#"<rect x="{left}" y="{y}" width="{w:.1}" height="{}" fill="{}"><title>{}: {}</title></rect><text x="{:.1}" y="{}">{}</text>"#,
                bar_h - 2.0,
                COLORS[i % COLORS.len()],
                escape(v),
                short(x),
                left + w + 4.0,
                y + bar_h - 4.0,
                short(x)
            );
        }
    }
    svg.push_str("</svg>");
    svg
}

/// Lines of `y` over `x`, one per distinct `series` value.
pub fn lines(rows: &[Value], series: &str, x: &str, y: &str) -> String {
    let mut names: Vec<String> = Vec::new();
    let mut points: Vec<Vec<(f64, f64)>> = Vec::new();
    for row in rows {
        let (Some(px), Some(py)) = (number(&row[x]), number(&row[y])) else {
            continue;
        };
        let name = label(&row[series]);
        let i = match names.iter().position(|n| *n == name) {
            Some(i) => i,
            None => {
                names.push(name);
                points.push(Vec::new());
                names.len() - 1
            }
        };
        points[i].push((px, py));
    }
    let all = points.iter().flatten();
    let (mut x0, mut x1, mut y0, mut y1) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
    for &(px, py) in all {
        (x0, x1, y0, y1) = (x0.min(px), x1.max(px), y0.min(py), y1.max(py));
    }
    if names.is_empty() {
        return String::new();
    }
    let integral = |f: fn(&(f64, f64)) -> f64| points.iter().flatten().all(|p| f(p).fract() == 0.0);
    let integral_x = integral(|p| p.0);
    if integral(|p| p.1) && y0 >= 0.0 {
        // Counts start at zero.
        y0 = 0.0;
    }
    if x1 <= x0 {
        x1 = x0 + 1.0;
    }
    if y1 <= y0 {
        y1 = y0 + 1.0;
    }
    let (left, right, top, bottom, height) = (60.0, 130.0, 10.0, 30.0, 260.0);
    let (pw, ph) = (WIDTH - left - right, height - top - bottom);
    let sx = |v: f64| left + (v - x0) / (x1 - x0) * pw;
    let sy = |v: f64| top + (1.0 - (v - y0) / (y1 - y0)) * ph;
    let mut svg = format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" viewBox="0 0 {WIDTH} {height}" role="img" font-family="sans-serif" font-size="11">"#
    );
    let _ = write!(
        svg,
        r##"<rect x="{left}" y="{top}" width="{pw}" height="{ph}" fill="none" stroke="#999"/>"##
    );
    for t in 0..=4 {
        let fy = y0 + (y1 - y0) * t as f64 / 4.0;
        let _ = write!(
            svg,
            r##"<text x="{}" y="{:.1}" text-anchor="end">{}</text>"##,
            left - 4.0,
            sy(fy) + 4.0,
            short(fy)
        );
    }
    for fx in ticks(x0, x1, integral_x) {
        let _ = write!(
            svg,
            r##"<text x="{:.1}" y="{}" text-anchor="middle">{}</text>"##,
            sx(fx),
            height - bottom + 14.0,
            short(fx)
        );
    }
    let _ = write!(
        svg,
        r#"<text x="{}" y="{}" text-anchor="middle">{}</text>"#,
        left + pw / 2.0,
        height - 4.0,
        escape(x)
    );
    for (i, (name, pts)) in names.iter().zip(&points).enumerate() {
        let color = COLORS[i % COLORS.len()];
        let path: Vec<String> = pts
            .iter()
            .map(|&(px, py)| format!("{:.1},{:.1}", sx(px), sy(py)))
            .collect();
        let _ = write!(
            svg,
            r#"<polyline fill="none" stroke="{color}" stroke-width="1.5" points="{}"><title>{}</title></polyline>"#,
            path.join(" "),
            escape(name)
        );
        let ly = top + 14.0 * i as f64 + 8.0;
        let _ = write!(
            svg,
            r#"<rect x="{}" y="{}" width="10" height="10" fill="{color}"/><text x="{}" y="{}">{}</text>"#,
            WIDTH - right + 10.0,
            ly - 8.0,
            WIDTH - right + 24.0,
            ly + 1.0,
            escape(&truncate(name, 16))
        );
    }
    svg.push_str("</svg>");
    svg
}

/// Tick positions on `[x0, x1]`: every integer when the values are integers and few, else five
/// evenly spaced ones.
fn ticks(x0: f64, x1: f64, integral: bool) -> Vec<f64> {
    if integral && x1 - x0 <= 12.0 {
        (0..=(x1 - x0) as u64).map(|i| x0 + i as f64).collect()
    } else {
        (0..=4).map(|t| x0 + (x1 - x0) * t as f64 / 4.0).collect()
    }
}

fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        let cut: String = s.chars().take(n - 1).collect();
        format!("{cut}…")
    }
}
