//! How the console reads a step's arguments.

use serde_json::Value as Json;

/// A JSON document given inline or as `@file`; errors name the file and say why, in one
/// line.
pub fn json_argument(rest: &str) -> Result<Json, String> {
    match rest.trim().strip_prefix('@') {
        Some(file) => {
            let file = file.trim();
            let text = read_file(file).map_err(|why| format!("@{file}: {why}"))?;
            crate::json::parse(&text).map_err(|e| format!("@{file}: malformed JSON: {e}"))
        }
        None if rest.trim().is_empty() => Err("expected a JSON document or @file".into()),
        None => crate::json::parse(rest).map_err(|e| format!("malformed JSON: {e}")),
    }
}

/// A file's text, or why it cannot be had, in the user's words rather than the OS's
/// (`no such file`, not `No such file or directory (os error 2)`).
fn read_file(file: &str) -> Result<String, String> {
    use std::io::ErrorKind;
    if file.is_empty() {
        return Err("no file named".into());
    }
    if std::path::Path::new(file).is_dir() {
        return Err("is a directory".into());
    }
    std::fs::read_to_string(file).map_err(|e| match e.kind() {
        ErrorKind::NotFound => "no such file".into(),
        ErrorKind::PermissionDenied => "permission denied".into(),
        ErrorKind::InvalidData => "not UTF-8 text".into(),
        _ => {
            let text = e.to_string();
            let text = text.split(" (os error").next().unwrap_or(&text);
            text.to_lowercase()
        }
    })
}

pub fn number(word: &str) -> Result<u64, String> {
    word.parse()
        .map_err(|_| format!("expected a whole number, got `{word}`"))
}
