//! What a name may be: of a group, a policy, a profile, a tag, an administrator. A page
//! shows it and a log records it, so it is short and holds nothing that hides or reorders
//! text: at most 256 characters, no control characters (NUL, newlines), no bidirectional
//! controls (U+202E would reverse the text after it on a page), not blank.

use crate::error::ServerError;

/// The longest name, in characters.
pub const MOST_CHARS: usize = 256;

/// The bidirectional formatting characters: embeddings, overrides, isolates and marks.
fn is_bidi_control(c: char) -> bool {
    matches!(
        c,
        '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}'
    )
}

/// `name` as a `what` (`group`, `policy`, ...) may be named, or one error saying why.
pub fn check(what: &str, name: &str) -> Result<(), ServerError> {
    if name.trim().is_empty() {
        return Err(ServerError::invalid_name(format!("a {what} needs a name")));
    }
    let count = name.chars().count();
    if count > MOST_CHARS {
        return Err(ServerError::invalid_name(format!(
            "a {what}'s name is at most {MOST_CHARS} characters, this one {count}"
        )));
    }
    if let Some((at, c)) = name
        .chars()
        .enumerate()
        .find(|(_, c)| c.is_control() || is_bidi_control(*c))
    {
        return Err(ServerError::invalid_name(format!(
            "a {what}'s name holds no control or bidirectional characters; character {} is U+{:04X}",
            at + 1,
            c as u32
        )));
    }
    Ok(())
}

/// `text` with every control or bidirectional character written as its code point
/// (`\u{202E}`), for a log or a page that shows what someone typed, refused or not.
pub fn visible(text: &str) -> String {
    let mut shown = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_control() || is_bidi_control(c) {
            shown.push_str(&format!("\\u{{{:04X}}}", c as u32));
        } else {
            shown.push(c);
        }
    }
    shown
}

/// The longest library name or path an update takes.
pub const MOST_LIBRARY_CHARS: usize = 4096;

/// A plugin library as an update names it (`fixture_updated_plugin`, or a path): not
/// blank, no control or bidirectional characters, at most 4,096 characters.
pub fn check_library(library: &str) -> Result<(), ServerError> {
    if library.trim().is_empty() {
        return Err(ServerError::invalid_name(
            "an update names a plugin library",
        ));
    }
    if library.chars().count() > MOST_LIBRARY_CHARS {
        return Err(ServerError::invalid_name(format!(
            "a plugin library's name is at most {MOST_LIBRARY_CHARS} characters"
        )));
    }
    if let Some(c) = library
        .chars()
        .find(|c| c.is_control() || is_bidi_control(*c))
    {
        return Err(ServerError::invalid_name(format!(
            "a plugin library's name holds no control or bidirectional characters, this one U+{:04X}",
            c as u32
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_someone_typed_is_shown_with_its_hidden_characters_written_out() {
        assert_eq!(visible("a\u{202E}b\nc"), "a\\u{202E}b\\u{000A}c");
        assert_eq!(visible("Servers (Frankfurt)"), "Servers (Frankfurt)");
    }

    #[test]
    fn names_are_short_visible_and_in_order() {
        assert!(check("group", "Servers (Frankfurt)").is_ok());
        assert!(check("group", &"é".repeat(256)).is_ok());
        for bad in [
            "",
            "  ",
            "a\0b",
            "line\nbreak",
            "abc\u{202E}txt.exe",
            "x\u{2067}y",
            &"a".repeat(257),
        ] {
            let e = check("group", bad).unwrap_err();
            assert_eq!(e.kind, crate::ServerErrorKind::InvalidName, "{bad:?}");
        }
        let e = check("policy", "abc\u{202E}").unwrap_err();
        assert!(
            e.message.contains("U+202E") && e.message.contains("character 4"),
            "{e}"
        );
    }
}
