//! The results table: aligned text for the terminal, Markdown for reports, and one JSON object per
//! run (JSON Lines) for scripts that check targets across runs.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::load::Measured;

pub enum Outcome {
    Ran(Measured),
    /// The scenario does not apply to this server or these options.
    Skipped(String),
    /// Its set-up failed.
    Failed(String),
}

pub struct Row {
    pub name: String,
    pub outcome: Outcome,
    pub notes: Vec<String>,
}

impl Row {
    pub fn ran(name: &str, measured: Measured, notes: Vec<String>) -> Row {
        let mut notes = notes;
        if measured.failures > 0 {
            let kinds: Vec<String> = measured.failure_kinds.iter().map(|(kind, n)| format!("{kind} ×{n}")).collect();
            notes.insert(0, format!("failed: {}", kinds.join(", ")));
        }
        Row { name: name.to_owned(), outcome: Outcome::Ran(measured), notes }
    }

    pub fn skipped(name: &str, reason: impl Into<String>) -> Row {
        Row { name: name.to_owned(), outcome: Outcome::Skipped(reason.into()), notes: Vec::new() }
    }

    pub fn failed(name: &str, reason: impl Into<String>) -> Row {
        Row { name: name.to_owned(), outcome: Outcome::Failed(reason.into()), notes: Vec::new() }
    }

    fn cells(&self) -> [String; 9] {
        let ms = |micros: u64| format!("{:.2}", micros as f64 / 1000.0);
        let (verb, reason) = match &self.outcome {
            Outcome::Ran(m) => {
                return [
                    self.name.clone(),
                    m.requests.to_string(),
                    m.failures.to_string(),
                    format!("{:.0}", m.requests_per_sec()),
                    ms(m.hist.quantile(0.50)),
                    ms(m.hist.quantile(0.99)),
                    ms(m.hist.max()),
                    m.client_cpu.map_or_else(|| "?".to_owned(), |share| format!("{:.0}%", share * 100.0)),
                    self.notes.join("; "),
                ]
            }
            Outcome::Skipped(reason) => ("skipped", reason),
            Outcome::Failed(reason) => ("could not run", reason),
        };
        let dash = || "-".to_owned();
        [self.name.clone(), dash(), dash(), dash(), dash(), dash(), dash(), dash(), format!("{verb}: {reason}")]
    }

    fn record(&self) -> RowRecord<'_> {
        let ms = |micros: u64| micros as f64 / 1000.0;
        let mut record = RowRecord { name: &self.name, notes: &self.notes, ..RowRecord::default() };
        match &self.outcome {
            Outcome::Ran(m) => {
                record.requests = Some(m.requests);
                record.errors = Some(m.failures);
                record.ops = Some(m.ops);
                record.elapsed_s = Some(m.elapsed.as_secs_f64());
                record.req_per_sec = Some(m.requests_per_sec());
                record.p50_ms = Some(ms(m.hist.quantile(0.50)));
                record.p99_ms = Some(ms(m.hist.quantile(0.99)));
                record.max_ms = Some(ms(m.hist.max()));
                record.client_cpu = m.client_cpu;
            }
            Outcome::Skipped(reason) => record.skipped = Some(reason),
            Outcome::Failed(reason) => record.failed = Some(reason),
        }
        record
    }
}

/// One row of the JSON record; the figures are `null` when the scenario did not run.
#[derive(Serialize, Default)]
struct RowRecord<'a> {
    name: &'a str,
    requests: Option<u64>,
    errors: Option<u64>,
    /// Operations: requests for most scenarios, half of them for two-request ones.
    ops: Option<u64>,
    /// The measured window in seconds (entra-sync: the whole sync).
    elapsed_s: Option<f64>,
    req_per_sec: Option<f64>,
    p50_ms: Option<f64>,
    p99_ms: Option<f64>,
    max_ms: Option<f64>,
    /// Share of one core.
    client_cpu: Option<f64>,
    notes: &'a [String],
    skipped: Option<&'a str>,
    failed: Option<&'a str>,
}

const COLUMNS: [&str; 9] =
    ["scenario", "requests", "errors", "req/s", "p50 ms", "p99 ms", "max ms", "client CPU", "notes"];
const LAST: usize = COLUMNS.len() - 1;

/// What the table's header says about the run.
#[derive(Serialize)]
pub struct Header {
    pub label: String,
    pub date: String,
    /// The lines under the title, in words.
    #[serde(rename = "header")]
    pub lines: Vec<String>,
    /// The same facts as values, for the JSON record only.
    #[serde(flatten)]
    pub facts: Facts,
}

#[derive(Serialize, Default)]
pub struct Facts {
    /// `--tag key=value` pairs, e.g. backend and size.
    pub tags: BTreeMap<String, String>,
    pub concurrency: usize,
    pub client: &'static str,
    /// Seconds per scenario, or `None` with a fixed number of operations per scenario.
    pub duration_s: Option<f64>,
    pub ops_per_scenario: Option<u64>,
    pub warmup_s: f64,
    pub sync_users: u64,
    /// Users on the server when measuring began.
    pub users_on_server: u64,
    /// The server's VmHWM and VmRSS at the end of the run, with `--server-pid`.
    pub server_rss_peak_kb: Option<u64>,
    pub server_rss_kb: Option<u64>,
}

pub fn text(header: &Header, rows: &[Row]) -> String {
    let cells: Vec<[String; 9]> = rows.iter().map(Row::cells).collect();
    let mut widths = COLUMNS.map(str::len);
    for row in &cells {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let line = |row: &[String]| -> String {
        let mut out = String::new();
        for (i, cell) in row.iter().enumerate() {
            let pad = widths[i].saturating_sub(cell.chars().count());
            match i {
                0 => out.push_str(&format!("{cell}{}", " ".repeat(pad))),
                LAST => out.push_str(cell),
                _ => out.push_str(&format!("{}{cell}", " ".repeat(pad))),
            }
            if i < LAST {
                out.push_str("  ");
            }
        }
        out.trim_end().to_owned()
    };
    let mut out = format!("{} ({})\n", header.label, header.date);
    for extra in &header.lines {
        out.push_str(&format!("  {extra}\n"));
    }
    out.push_str(&line(&COLUMNS.map(str::to_owned)));
    out.push('\n');
    for row in &cells {
        out.push_str(&line(row));
        out.push('\n');
    }
    out
}

pub fn markdown(header: &Header, rows: &[Row]) -> String {
    let mut out = format!("### {}\n\n{}", header.label, header.date);
    for extra in &header.lines {
        out.push_str(&format!(" · {extra}"));
    }
    out.push_str("\n\n| ");
    out.push_str(&COLUMNS.join(" | "));
    out.push_str(" |\n|---|--:|--:|--:|--:|--:|--:|--:|---|\n");
    for row in rows {
        let cells = row.cells().map(|c| c.replace('|', "\\|"));
        out.push_str(&format!("| {} |\n", cells.join(" | ")));
    }
    out.push('\n');
    out
}

/// The run as one line of JSON, newline included.
pub fn json(header: &Header, rows: &[Row]) -> String {
    #[derive(Serialize)]
    struct Record<'a> {
        kind: &'static str,
        #[serde(flatten)]
        header: &'a Header,
        rows: Vec<RowRecord<'a>>,
    }
    let record = Record { kind: "run", header, rows: rows.iter().map(Row::record).collect() };
    let mut line = serde_json::to_string(&record).expect("the record serialises");
    line.push('\n');
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_line_up_and_escape() {
        let mut m =
            Measured { requests: 1234, ops: 1234, elapsed: std::time::Duration::from_secs(2), ..Default::default() };
        m.hist.record(1500);
        let rows = vec![Row::ran("get", m, vec!["a|b".into()]), Row::skipped("group-add-10", "no /Groups")];
        let header = header();
        let text = text(&header, &rows);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[2].find("requests").unwrap() + 8, lines[3].find("1234").unwrap() + 4, "{text}");
        assert!(lines[3].contains("617") && lines[3].contains("1.50"));
        let md = markdown(&header, &rows);
        assert!(md.contains("a\\|b") && md.contains("skipped: no /Groups"), "{md}");
    }

    fn header() -> Header {
        let facts = Facts { concurrency: 8, server_rss_peak_kb: Some(51200), ..Facts::default() };
        Header { label: "sqlite".into(), date: "today".into(), lines: vec!["concurrency 8".into()], facts }
    }

    #[test]
    fn the_json_record_is_one_line_with_nulls_for_skipped_rows() {
        let mut m =
            Measured { requests: 2000, ops: 1000, elapsed: std::time::Duration::from_secs(4), ..Default::default() };
        m.hist.record(2500);
        let rows = vec![Row::ran("get-put", m, vec![]), Row::failed("list-cursor-deep", "HTTP 500")];
        let line = json(&header(), &rows);
        assert!(line.ends_with('\n') && line.matches('\n').count() == 1, "{line}");
        let value: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(value["kind"], "run");
        assert_eq!(value["header"][0], "concurrency 8");
        assert_eq!(value["server_rss_peak_kb"], 51200);
        assert_eq!(value["rows"][0]["req_per_sec"], 500.0);
        assert_eq!(value["rows"][0]["p50_ms"], 2.5);
        assert_eq!(value["rows"][1]["requests"], serde_json::Value::Null);
        assert_eq!(value["rows"][1]["failed"], "HTTP 500");
    }
}
