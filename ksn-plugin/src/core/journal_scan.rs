//! Reading a record in the shape this plugin writes it (`change_record`, `encode_base`),
//! its fields in their order and without whitespace, by a strict JSON scanner that finds
//! where each value ends: what serde reads of the same bytes, at a fraction of its cost
//! (a restart reads every record back to the last snapshot). Any other shape, and
//! anything the scanner doubts, is left to serde, which then reads or rejects it whole.

use super::{entry_head, BaseOut, EntryList, Record};

/// JSON nests at most this deep here, as in serde_json.
const DEEPEST: usize = 128;

/// The record's body as this plugin writes it, or `None` (read it with serde).
pub(super) fn own_shape(text: &str) -> Option<Record<'_>> {
    // This plugin writes no whitespace and no raw control characters: without any, one
    // vectorised pass here, strings end at their first quote or backslash.
    if !no_control_characters(text.as_bytes()) {
        return None;
    }
    let mut at = Cursor { text, at: 0 };
    at.expect("{\"next_seq\":")?;
    let next_seq = at.number()?;
    let from_seq = match at.accept(",\"from_seq\":") {
        true => Some(at.number()?),
        false => None,
    };
    let base = match at.accept(",\"base\":") {
        // Rare (once per compaction): serde reads it, and its errors are its own.
        true => serde_json::from_str::<Option<BaseOut>>(at.value()?).ok()?,
        false => None,
    };
    // `null` is no state, as serde reads an absent option.
    let state = match at.accept(",\"state\":") {
        true => Some(at.value()?).filter(|&state| state != "null"),
        false => None,
    };
    at.expect(",\"entries\":[")?;
    let mut entries = EntryList::Many(Vec::new());
    if !at.accept("]") {
        loop {
            let raw = at.value()?;
            entries.push((entry_head(raw).ok()?, raw));
            if at.accept("]") {
                break;
            }
            at.expect(",")?;
        }
    }
    at.expect("}")?;
    (at.at == text.len()).then_some(Record {
        next_seq,
        from_seq,
        base,
        state,
        entries,
    })
}

struct Cursor<'a> {
    text: &'a str,
    at: usize,
}

impl<'a> Cursor<'a> {
    fn accept(&mut self, literal: &str) -> bool {
        let found = self.text.as_bytes()[self.at..].starts_with(literal.as_bytes());
        if found {
            self.at += literal.len();
        }
        found
    }

    fn expect(&mut self, literal: &str) -> Option<()> {
        self.accept(literal).then_some(())
    }

    /// A non-negative integer as JSON writes it (no leading zero), within `u64`.
    fn number(&mut self) -> Option<u64> {
        let rest = &self.text.as_bytes()[self.at..];
        let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
        if digits == 0 || (digits > 1 && rest[0] == b'0') {
            return None;
        }
        let n = self.text[self.at..self.at + digits].parse().ok()?;
        self.at += digits;
        Some(n)
    }

    /// One JSON value, whole and valid, as text.
    fn value(&mut self) -> Option<&'a str> {
        let start = self.at;
        self.at = value_end(self.text.as_bytes(), start)?;
        Some(&self.text[start..self.at])
    }
}

/// Whether `text` holds no byte below 0x20 (so neither whitespace other than spaces nor a
/// control character, which JSON allows in no string).
pub(super) fn no_control_characters(text: &[u8]) -> bool {
    text.iter().fold(0x20u8, |low, &b| low.min(b)) >= 0x20
}

/// Where the JSON value starting at `at` ends, if it is valid JSON without whitespace
/// between its tokens (as this plugin writes it; whitespace sends the record to serde),
/// in text without control characters (`no_control_characters`, checked once for the
/// record). Strings are checked as serde checks them, escapes included (the text is
/// already valid UTF-8, as a `&str`).
pub(super) fn value_end(text: &[u8], at: usize) -> Option<usize> {
    // Each open container: whether it is an object (keys, then values) or an array.
    let mut open: Vec<bool> = Vec::with_capacity(8);
    let mut at = at;
    loop {
        // A value.
        match *text.get(at)? {
            b'{' | b'[' if open.len() == DEEPEST => return None,
            b'{' => {
                at += 1;
                if text.get(at) == Some(&b'}') {
                    at += 1;
                } else {
                    open.push(true);
                    at = key(text, at)?;
                    continue;
                }
            }
            b'[' => {
                at += 1;
                if text.get(at) == Some(&b']') {
                    at += 1;
                } else {
                    open.push(false);
                    continue;
                }
            }
            b'"' => at = string_end(text, at)?,
            b't' => at = literal(text, at, b"true")?,
            b'f' => at = literal(text, at, b"false")?,
            b'n' => at = literal(text, at, b"null")?,
            _ => at = number_end(text, at)?,
        }
        // What follows a value: the next member, or the end of containers.
        loop {
            let Some(&object) = open.last() else {
                return Some(at);
            };
            match (text.get(at)?, object) {
                (b',', true) => {
                    at = key(text, at + 1)?;
                    break;
                }
                (b',', false) => {
                    at += 1;
                    break;
                }
                (b'}', true) | (b']', false) => {
                    at += 1;
                    open.pop();
                }
                _ => return None,
            }
        }
    }
}

/// A key and its colon: where its value starts.
fn key(text: &[u8], at: usize) -> Option<usize> {
    if text.get(at) != Some(&b'"') {
        return None;
    }
    let end = string_end(text, at)?;
    (text.get(end) == Some(&b':')).then_some(end + 1)
}

fn literal(text: &[u8], at: usize, word: &[u8]) -> Option<usize> {
    text[at..].starts_with(word).then_some(at + word.len())
}

/// The end of the string whose opening quote is at `at`.
fn string_end(text: &[u8], at: usize) -> Option<usize> {
    let mut at = at + 1;
    loop {
        // Most strings have no escape: one pass to the quote.
        at += memchr::memchr2(b'"', b'\\', text.get(at..)?)?;
        match text[at] {
            b'"' => return Some(at + 1),
            b'\\' => {
                at += 1;
                match *text.get(at)? {
                    b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => at += 1,
                    b'u' => {
                        let hex = text.get(at + 1..at + 5)?;
                        if !hex.iter().all(u8::is_ascii_hexdigit) {
                            return None;
                        }
                        // A lone surrogate is left to serde, which has its own rules.
                        let unit = u16::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok()?;
                        if (0xD800..0xE000).contains(&unit) {
                            return None;
                        }
                        at += 5;
                    }
                    _ => return None,
                }
            }
            _ => unreachable!("memchr2 found a quote or a backslash"),
        }
    }
}

/// The end of a number as JSON writes it: `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`.
fn number_end(text: &[u8], at: usize) -> Option<usize> {
    let digits = |from: usize| {
        text[from.min(text.len())..]
            .iter()
            .take_while(|b| b.is_ascii_digit())
            .count()
    };
    let mut at = at;
    if text.get(at) == Some(&b'-') {
        at += 1;
    }
    match digits(at) {
        0 => return None,
        n if n > 1 && text[at] == b'0' => return None,
        n => at += n,
    }
    if text.get(at) == Some(&b'.') {
        match digits(at + 1) {
            0 => return None,
            n => at += 1 + n,
        }
    }
    if matches!(text.get(at), Some(b'e' | b'E')) {
        at += 1;
        if matches!(text.get(at), Some(b'+' | b'-')) {
            at += 1;
        }
        match digits(at) {
            0 => return None,
            n => at += n,
        }
    }
    Some(at)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde_json::{json, Value as Json};

    use super::*;
    use crate::core::journal::{change_record, read_whole};

    fn any_json() -> impl Strategy<Value = Json> {
        let leaf = prop_oneof![
            Just(Json::Null),
            any::<bool>().prop_map(Json::Bool),
            any::<i64>().prop_map(|n| json!(n)),
            any::<f64>()
                .prop_filter("finite", |f| f.is_finite())
                .prop_map(|f| json!(f)),
            "[ -~\u{e9}\u{1F600}\n\t\"\\\\\u{1}]{0,12}".prop_map(Json::String),
        ];
        leaf.prop_recursive(4, 32, 6, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..6).prop_map(Json::Array),
                proptest::collection::btree_map("[a-z\"\\\\]{0,5}", inner, 0..6)
                    .prop_map(|m| Json::Object(m.into_iter().collect())),
            ]
        })
    }

    /// What both readers make of a body, for comparison.
    type Seen<'a> = (
        u64,
        Option<u64>,
        Option<BaseOut>,
        Option<&'a str>,
        Vec<(super::super::EntryHead<'a>, &'a str)>,
    );

    fn seen(record: Record<'_>) -> Seen<'_> {
        (
            record.next_seq,
            record.from_seq,
            record.base,
            record.state,
            record.entries.to_vec(),
        )
    }

    fn entry(seq: u64, extra: &Json) -> String {
        let mut text = format!(
            r#"{{"seq":{seq},"time_ms":{},"importance":"info","type":"note""#,
            seq * 10
        );
        if !extra.is_null() {
            text.push_str(&format!(r#","extra":{extra}"#));
        }
        text.push('}');
        text
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(500))]

        /// The scanner finds the end of any value serde writes, and accepts nothing of a
        /// value's text that serde would refuse.
        #[test]
        fn the_scanner_ends_values_where_serde_does(value in any_json(), cut in any::<prop::sample::Index>(), byte in any::<u8>()) {
            let text = serde_json::to_string(&value).unwrap();
            prop_assert_eq!(value_end(text.as_bytes(), 0), Some(text.len()));
            let mut damaged = text.into_bytes();
            let at = cut.index(damaged.len());
            damaged[at] = byte;
            if let Ok(damaged) = std::str::from_utf8(&damaged) {
                if no_control_characters(damaged.as_bytes())
                    && value_end(damaged.as_bytes(), 0) == Some(damaged.len())
                {
                    prop_assert!(serde_json::from_str::<serde::de::IgnoredAny>(damaged).is_ok(), "{}", damaged);
                }
            }
        }

        /// A record in this plugin's shape reads the same by either reader; one changed
        /// anywhere is read by the scanner only where serde reads it the same.
        #[test]
        fn a_record_reads_the_same_either_way(
            state in proptest::option::of(any_json()),
            extras in proptest::collection::vec(any_json(), 0..4),
            from_seq in proptest::option::of(0u64..3),
            base in 0usize..3,
            cut in any::<prop::sample::Index>(),
            byte in any::<u8>(),
        ) {
            let start = from_seq.unwrap_or(3);
            let entries: Vec<String> = extras.iter().enumerate().map(|(i, e)| entry(start + i as u64, e)).collect();
            let mut body = change_record(start + entries.len() as u64, from_seq, &entries, None);
            // As the writers place a base and a state: after the numbers, before the
            // entries.
            let base = ["", r#","base":null"#, r#","base":{"task_state":"stopped"}"#][base];
            let state = state.map(|s| format!(",\"state\":{s}")).unwrap_or_default();
            let text = String::from_utf8(body.clone()).unwrap();
            let at = text.find(",\"entries\":").unwrap();
            body = format!("{}{base}{state}{}", &text[..at], &text[at..]).into_bytes();
            let body = &body[9..];
            let text = std::str::from_utf8(body).unwrap();
            let fast = own_shape(text).expect("the plugin's own shape");
            prop_assert_eq!(seen(fast), seen(read_whole(body).unwrap()));

            let mut damaged = body.to_vec();
            let at = cut.index(damaged.len());
            damaged[at] = byte;
            if let Ok(text) = std::str::from_utf8(&damaged) {
                if let Some(fast) = own_shape(text) {
                    let whole = read_whole(text.as_bytes());
                    prop_assert!(whole.is_ok(), "serde refuses what the scanner read: {}", text);
                    prop_assert_eq!(seen(fast), seen(whole.unwrap()));
                }
            }
        }
    }

    #[test]
    fn what_the_scanner_doubts_goes_to_serde() {
        for text in [
            r#"{"next_seq":1, "entries":[]}"#,
            r#"{"entries":[],"next_seq":1}"#,
            r#"{"next_seq":01,"entries":[]}"#,
            r#"{"next_seq":1,"state":{"a":"\ud800"},"entries":[]}"#,
            r#"{"next_seq":1,"state":{"a":1.},"entries":[]}"#,
            r#"{"next_seq":1,"entries":[]} "#,
            "{\"next_seq\":1,\"state\":\"a\tb\",\"entries\":[]}",
        ] {
            assert!(own_shape(text).is_none(), "{text}");
        }
        let deep = format!("{}{}", "[".repeat(DEEPEST + 1), "]".repeat(DEEPEST + 1));
        assert_eq!(value_end(deep.as_bytes(), 0), None);
        let deepest = format!("{}{}", "[".repeat(DEEPEST), "]".repeat(DEEPEST));
        assert_eq!(value_end(deepest.as_bytes(), 0), Some(deepest.len()));
    }
}
