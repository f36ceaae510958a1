//! JSON paths in error messages, written the same way by plugins and hosts: plain keys
//! joined with dots, odd keys quoted (`settings.task["a b"]`), control characters escaped
//! so that every error stays on one line, and long keys or values cut short.

/// How much of a key or a value an error quotes, in characters.
pub const QUOTE_CHARS: usize = 80;

/// A key as a path segment: bare when it is a plain name, else quoted (`[""]`, `["a b"]`),
/// so that every place can be read back.
pub fn segment(key: &str) -> String {
    let plain = !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if plain {
        cut(key)
    } else {
        format!("[{}]", quote(key))
    }
}

/// `prefix` and then `key` as a path segment.
///
/// ```
/// use plugin_api::documents::path::join;
/// assert_eq!(join("settings", "task"), "settings.task");
/// assert_eq!(join("settings.task", "a b"), r#"settings.task["a b"]"#);
/// assert_eq!(join("", "task"), "task");
/// ```
pub fn join(prefix: &str, key: &str) -> String {
    let segment = segment(key);
    match (prefix.is_empty(), segment.starts_with('[')) {
        (true, _) => segment,
        (false, true) => format!("{prefix}{segment}"),
        (false, false) => format!("{prefix}.{segment}"),
    }
}

/// A string as JSON, cut to [`QUOTE_CHARS`] characters (`"abc…" (1048576 characters)`).
pub fn quote(text: &str) -> String {
    let quoted = serde_json::to_string(&cut(text)).unwrap_or_default();
    if text.chars().nth(QUOTE_CHARS).is_some() {
        format!("{quoted} ({} characters)", text.chars().count())
    } else {
        quoted
    }
}

/// At most [`QUOTE_CHARS`] characters of `text`, with `…` when it was longer.
pub fn cut(text: &str) -> String {
    match text.char_indices().nth(QUOTE_CHARS) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text.to_string(),
    }
}

/// Errors are one line: control characters (from a document's own keys and strings) are
/// written as escapes.
pub fn one_line(text: &str) -> String {
    if !text.chars().any(char::is_control) {
        return text.to_string();
    }
    text.chars()
        .map(|c| {
            if c.is_control() {
                c.escape_default().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_keys_and_values_are_cut_short() {
        let long = "k".repeat(1_000_000);
        let path = join("settings", &long);
        assert!(path.len() < 100, "{path}");
        let quoted = quote(&long);
        assert!(
            quoted.ends_with("(1000000 characters)") && quoted.len() < 120,
            "{quoted}"
        );
        assert_eq!(segment(""), r#"[""]"#);
        assert_eq!(one_line("a\nb"), r"a\nb");
    }
}
