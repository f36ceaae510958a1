//! JSON paths in error messages, written the same way by plugins and hosts: plain keys
//! joined with dots, odd keys quoted (`settings.task["a b"]`), control characters escaped
//! so that every error stays on one line, long keys or values cut short, and the nearest
//! known name offered for a mistyped one.

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

/// "Did you mean …": how alike two names must be (normalised Damerau–Levenshtein, 1 =
/// equal) to be offered: `strat` is `start` (0.8), `frobnicate` is nothing.
const ALIKE: f64 = 0.6;

/// The known name nearest to `word`, if any is near enough to be what was meant.
pub fn nearest<'a>(word: &str, known: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let length = word.chars().count();
    known
        .into_iter()
        // The distance is at least the difference in length: skip what cannot be alike
        // enough before measuring (a mistyped key may be a megabyte long).
        .filter(|name| {
            let other = name.chars().count();
            length.min(other) as f64 >= ALIKE * length.max(other) as f64
        })
        .map(|name| (strsim::normalized_damerau_levenshtein(word, name), name))
        .filter(|(alike, _)| *alike >= ALIKE)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, name)| name)
}

/// `; did you mean `name`?` for the nearest known name, or nothing.
pub fn did_you_mean<'a>(word: &str, known: impl IntoIterator<Item = &'a str>) -> String {
    nearest(word, known)
        .map(|name| format!("; did you mean `{name}`?"))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn near_names_are_offered_and_far_ones_are_not() {
        let verbs = ["start", "stop", "status", "settings", "set_local"];
        assert_eq!(nearest("strat", verbs), Some("start"));
        assert_eq!(nearest("stauts", verbs), Some("status"));
        assert_eq!(nearest("setings", verbs), Some("settings"));
        assert_eq!(nearest("frobnicate", verbs), None);
        assert_eq!(did_you_mean("stp", verbs), "; did you mean `stop`?");
        assert_eq!(did_you_mean("xyz", verbs), "");
        let paths = ["task.checksum_limit_mb", "task.schedule"];
        assert_eq!(
            nearest("task.checksum_limit", paths),
            Some("task.checksum_limit_mb")
        );
        assert_eq!(nearest("task.nothing", paths), None);
    }

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
