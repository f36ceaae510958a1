//! CSV as the consoles export it: every field quoted where it must be, and a field that
//! a spreadsheet would run as a formula (`=`, `+`, `-`, `@` first) made text.

/// One line of fields, ended.
pub fn line(fields: &[&str]) -> String {
    let mut out = fields
        .iter()
        .map(|f| field(f))
        .collect::<Vec<_>>()
        .join(",");
    out.push('\n');
    out
}

fn field(value: &str) -> String {
    let guarded = if value.starts_with(['=', '+', '-', '@']) {
        format!("'{value}")
    } else {
        value.to_string()
    };
    if guarded.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", guarded.replace('"', "\"\""))
    } else {
        guarded
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn fields_are_quoted_and_formulas_made_text() {
        assert_eq!(
            super::line(&["a", "b,c", "say \"hi\"", "=1+1"]),
            "a,\"b,c\",\"say \"\"hi\"\"\",'=1+1\n"
        );
    }
}
