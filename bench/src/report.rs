//! The results table: aligned text for the terminal, Markdown for reports.

use crate::load::Measured;

pub struct Row {
    pub name: String,
    /// `None` when the scenario was skipped or could not be set up (the notes say why).
    pub measured: Option<Measured>,
    pub notes: Vec<String>,
}

impl Row {
    pub fn ran(name: &str, measured: Measured, notes: Vec<String>) -> Row {
        let mut notes = notes;
        if measured.failures > 0 {
            let kinds: Vec<String> = measured.failure_kinds.iter().map(|(kind, n)| format!("{kind} ×{n}")).collect();
            notes.insert(0, format!("failed: {}", kinds.join(", ")));
        }
        Row { name: name.to_owned(), measured: Some(measured), notes }
    }

    pub fn skipped(name: &str, reason: impl Into<String>) -> Row {
        Row { name: name.to_owned(), measured: None, notes: vec![format!("skipped: {}", reason.into())] }
    }

    pub fn failed(name: &str, reason: impl Into<String>) -> Row {
        Row { name: name.to_owned(), measured: None, notes: vec![format!("could not run: {}", reason.into())] }
    }

    fn cells(&self) -> [String; 9] {
        let ms = |micros: u64| format!("{:.2}", micros as f64 / 1000.0);
        let notes = self.notes.join("; ");
        match &self.measured {
            Some(m) => [
                self.name.clone(),
                m.requests.to_string(),
                m.failures.to_string(),
                format!("{:.0}", m.requests_per_sec()),
                ms(m.hist.quantile(0.50)),
                ms(m.hist.quantile(0.99)),
                ms(m.hist.max()),
                m.client_cpu.map_or_else(|| "?".to_owned(), |share| format!("{:.0}%", share * 100.0)),
                notes,
            ],
            None => {
                let dash = || "-".to_owned();
                [self.name.clone(), dash(), dash(), dash(), dash(), dash(), dash(), dash(), notes]
            }
        }
    }
}

const COLUMNS: [&str; 9] =
    ["scenario", "requests", "errors", "req/s", "p50 ms", "p99 ms", "max ms", "client CPU", "notes"];
const LAST: usize = COLUMNS.len() - 1;

/// What the table's header says about the run.
pub struct Header {
    pub label: String,
    pub date: String,
    pub lines: Vec<String>,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_line_up_and_escape() {
        let mut m =
            Measured { requests: 1234, ops: 1234, elapsed: std::time::Duration::from_secs(2), ..Default::default() };
        m.hist.record(1500);
        let rows = vec![Row::ran("get", m, vec!["a|b".into()]), Row::skipped("group-add-10", "no /Groups")];
        let header = Header { label: "sqlite".into(), date: "today".into(), lines: vec!["concurrency 8".into()] };
        let text = text(&header, &rows);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[2].find("requests").unwrap() + 8, lines[3].find("1234").unwrap() + 4, "{text}");
        assert!(lines[3].contains("617") && lines[3].contains("1.50"));
        let md = markdown(&header, &rows);
        assert!(md.contains("a\\|b") && md.contains("skipped: no /Groups"), "{md}");
    }
}
