//! How the CLI prints results: `--output table` (aligned columns for people, the default) or
//! `--output json` (the API's JSON, for scripts).

use clap::ValueEnum;
use serde_json::Value;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, ValueEnum)]
pub enum Format {
    #[default]
    Table,
    Json,
}

/// A column: its header and the JSON field it shows.
pub struct Column {
    pub header: &'static str,
    pub field: &'static str,
}

pub const fn col(header: &'static str, field: &'static str) -> Column {
    Column { header, field }
}

fn cell(v: &Value, path: &str) -> String {
    let mut cur = v;
    for part in path.split('.') {
        cur = match cur.get(part) {
            Some(x) => x,
            None => return String::new(),
        };
    }
    match cur {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Renders rows as an aligned table.
pub fn table(rows: &[Value], columns: &[Column]) -> String {
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|r| columns.iter().map(|c| cell(r, c.field)).collect())
        .collect();
    let widths: Vec<usize> = columns
        .iter()
        .enumerate()
        .map(|(i, c)| {
            cells
                .iter()
                .map(|r| r[i].chars().count())
                .chain([c.header.len()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |vals: Vec<&str>| {
        vals.iter()
            .enumerate()
            .map(|(i, v)| format!("{v:<w$}", w = widths[i]))
            .collect::<Vec<_>>()
            .join("  ")
            .trim_end()
            .to_string()
    };
    let mut out = vec![line(columns.iter().map(|c| c.header).collect())];
    for r in &cells {
        out.push(line(r.iter().map(String::as_str).collect()));
    }
    out.join("\n")
}

/// Prints one object (as `field: value` lines) or a list (as a table).
pub fn print(format: Format, value: &Value, columns: &[Column]) {
    match format {
        Format::Json => println!(
            "{}",
            serde_json::to_string_pretty(value).unwrap_or_default()
        ),
        Format::Table => {
            let rows: Vec<Value> = match value {
                Value::Array(a) => a.clone(),
                Value::Object(o) if o.get("items").is_some_and(Value::is_array) => {
                    o["items"].as_array().cloned().unwrap_or_default()
                }
                // A list wrapped in an object of its own name (`{"suspensions": […]}`).
                Value::Object(o) if o.len() == 1 && o.values().all(Value::is_array) => o
                    .values()
                    .next()
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default(),
                other => {
                    let w = columns.iter().map(|c| c.header.len()).max().unwrap_or(0);
                    for c in columns {
                        println!("{:<w$}  {}", c.header, cell(other, c.field));
                    }
                    return;
                }
            };
            println!("{}", table(&rows, columns));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aligns_columns_and_reads_nested_fields() {
        let rows = vec![
            serde_json::json!({"id": "1", "name": "laptop", "p": {"city": "Quend"}}),
            serde_json::json!({"id": "22", "name": null, "p": {}}),
        ];
        let t = table(
            &rows,
            &[col("ID", "id"), col("NAME", "name"), col("CITY", "p.city")],
        );
        assert_eq!(t, "ID  NAME    CITY\n1   laptop  Quend\n22");
    }
}
