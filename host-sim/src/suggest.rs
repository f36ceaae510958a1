//! "Did you mean …": the nearest of the known names to a mistyped one.

/// How alike two names must be (normalised Damerau–Levenshtein, 1 = equal) to be offered:
/// `strat` is `start` (0.8), `frobnicate` is nothing.
const ALIKE: f64 = 0.6;

/// The known name nearest to `word`, if any is near enough to be what was meant.
pub fn nearest<'a>(word: &str, known: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    known
        .into_iter()
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
}
