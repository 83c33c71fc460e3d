//! The report as one self-contained HTML file: inline CSS and SVG, no scripts, no network;
//! prints on paper (sections avoid page breaks inside charts).

use std::fmt::Write;
use std::path::Path;

use serde_json::Value;

use super::svg::{bars, escape, lines, short};
use super::{Chart, Report, Section};
use crate::lineage::LineageError;

/// Most table rows shown per section (the JSON has them all).
const MAX_ROWS: usize = 60;

const STYLE: &str = "body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;color:#222}\
h1{font-size:1.6rem}h2{font-size:1.2rem;margin-top:2rem;border-bottom:1px solid #ccc}\
table{border-collapse:collapse;font-size:.8rem;margin:.5rem 0}td,th{border:1px solid #ddd;padding:.2rem .4rem;text-align:left;vertical-align:top}\
th{background:#f3f3f3}td.n{text-align:right;font-variant-numeric:tabular-nums}\
pre{background:#f6f6f6;padding:.5rem;font-size:.75rem;white-space:pre-wrap;word-break:break-all}\
details{margin:.3rem 0}.ok{color:#1a7f37}.bad{color:#cf222e;font-weight:bold}.muted{color:#777}\
section{break-inside:avoid}@media print{details{display:block}summary{display:none}}";

/// Writes `report` as HTML to `path`.
pub fn write(report: &Report, path: &Path) -> Result<(), LineageError> {
    super::write_file(path, render(report).as_bytes())
}

/// The HTML text of `report`.
pub fn render(report: &Report) -> String {
    let mut h = String::new();
    let s = &report.subject;
    let title = match (&s.checkpoint, &s.version) {
        (Some(c), _) => format!("Lineage report: checkpoint {c}"),
        (None, Some(v)) => format!("Lineage report: version {v}"),
        _ => "Lineage report".to_string(),
    };
    let _ = write!(
        h,
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{}</title><style>{STYLE}</style></head><body><h1>{}</h1>",
        escape(&title),
        escape(&title)
    );
    h.push_str("<table>");
    let facts = [
        ("Checkpoint", s.checkpoint.clone()),
        ("Step", s.step.map(|v| v.to_string())),
        ("Dataset root", s.root.clone()),
        ("Version", s.version.clone()),
        ("Run output", s.run.clone()),
        ("Generated", Some(report.generated.clone())),
        ("Refinery", Some(report.tool_version.clone())),
    ];
    for (k, v) in facts {
        if let Some(v) = v {
            let _ = write!(h, "<tr><th>{k}</th><td>{}</td></tr>", escape(&v));
        }
    }
    h.push_str("</table>");
    checks(&mut h, report);
    for section in &report.sections {
        render_section(&mut h, section);
    }
    h.push_str("<h2>Tables</h2><p>Rerun any query above with <code>refinery query \"SQL\" --table NAME=PATH ...</code>:</p><table>");
    for (name, path) in &report.tables {
        let _ = write!(
            h,
            "<tr><th>{}</th><td>{}</td></tr>",
            escape(name),
            escape(path)
        );
    }
    h.push_str("</table></body></html>\n");
    h
}

fn checks(h: &mut String, report: &Report) {
    h.push_str("<h2>Checks</h2><table><tr><th>check</th><th>result</th></tr>");
    for c in &report.checks {
        let (class, word) = match (c.available, c.holds) {
            (false, _) => ("muted", "not applicable"),
            (true, true) => ("ok", "holds"),
            (true, false) => ("bad", "BROKEN"),
        };
        let _ = write!(
            h,
            "<tr><td>{}<details><summary>SQL</summary><pre>{}</pre></details></td><td class=\"{class}\">{word}</td></tr>",
            escape(&c.description),
            escape(&c.sql)
        );
    }
    h.push_str("</table>");
}

fn render_section(h: &mut String, s: &Section) {
    let _ = write!(
        h,
        "<section id=\"{}\"><h2>{}</h2><p>{}</p>",
        escape(&s.id),
        escape(&s.title),
        escape(&s.description)
    );
    if !s.available {
        h.push_str("<p class=\"muted\">Not available: a table it needs is absent.</p></section>");
        return;
    }
    if s.rows.is_empty() {
        h.push_str("<p class=\"muted\">No rows.</p>");
    } else {
        let chart = match &s.chart {
            Chart::None => String::new(),
            Chart::Bars { label, values } => bars(&s.rows, label, values),
            Chart::Lines { series, x, y } => lines(&s.rows, series, x, y),
        };
        h.push_str(&chart);
        table(h, s);
    }
    let _ = write!(
        h,
        "<details><summary>SQL</summary><pre>{}</pre></details></section>",
        escape(&s.sql)
    );
}

fn table(h: &mut String, s: &Section) {
    let long = |c: &str| matches!(c, "config" | "inputs");
    let open = s.rows.len() <= 12 && !s.columns.iter().any(|c| long(c));
    let _ = write!(
        h,
        "<details{}><summary>{} row(s)</summary><table><tr>",
        if open { " open" } else { "" },
        s.rows.len()
    );
    for c in &s.columns {
        let _ = write!(h, "<th>{}</th>", escape(c));
    }
    h.push_str("</tr>");
    for row in s.rows.iter().take(MAX_ROWS) {
        h.push_str("<tr>");
        for c in &s.columns {
            let v = &row[c.as_str()];
            match v {
                Value::Number(n) => {
                    let text = n.as_f64().map_or(n.to_string(), short);
                    let _ = write!(h, "<td class=\"n\">{text}</td>");
                }
                Value::String(t) if long(c) => {
                    let _ = write!(h, "<td><pre>{}</pre></td>", escape(t));
                }
                Value::String(t) => {
                    let _ = write!(h, "<td>{}</td>", escape(t));
                }
                Value::Null => h.push_str("<td class=\"muted\">-</td>"),
                other => {
                    let _ = write!(h, "<td>{}</td>", escape(&other.to_string()));
                }
            }
        }
        h.push_str("</tr>");
    }
    h.push_str("</table>");
    if s.rows.len() > MAX_ROWS {
        let _ = write!(
            h,
            "<p class=\"muted\">{} more row(s) in the JSON report.</p>",
            s.rows.len() - MAX_ROWS
        );
    }
    h.push_str("</details>");
}
