//! Events and task-log entries in a few words, for reports and the console. Entries are
//! read as the contract's `LogEntry` documents; a type from a newer plugin shows by name.

use plugin_api::documents::{read_document, Event, LogEntry};

/// One event (or task-log entry) as its JSON text, in a few words.
pub fn summarise(event_json: &str) -> String {
    match read_document::<LogEntry>("emit_event", event_json) {
        Ok(entry) => summarise_event(&entry.event),
        Err(e) => format!("malformed event ({e})"),
    }
}

/// An entry, with its number and time, in a few words.
pub fn entry_line(entry: &LogEntry) -> String {
    format!(
        "#{} t={}ms {}",
        entry.seq,
        entry.time_ms,
        summarise_event(&entry.event)
    )
}

pub fn summarise_event(event: &Event) -> String {
    match event {
        Event::StateChanged { from, to, .. } => format!("state {from}→{to}"),
        Event::TaskError { kind, .. } => format!("task_error {kind}"),
        Event::ConsentChanged {
            statement,
            version,
            accepted,
            source,
            category,
            with_statement,
        } => {
            let what = match category {
                Some(category) => format!("{} {category}", statement.as_str()),
                None => format!("{} v{version}", statement.as_str()),
            };
            let verb = if *accepted { "accepted" } else { "withdrawn" };
            let with = with_statement.map_or(String::new(), |s| format!(", with {}", s.as_str()));
            format!("{what} {verb} ({}{with})", source_name(*source))
        }
        Event::AcceptanceNotInForce {
            statement,
            version,
            current_version,
            source,
        } => match version {
            Some(version) => format!(
                "{} v{version} not in force ({}; the plugin ships v{current_version})",
                statement.as_str(),
                source_name(*source)
            ),
            None => format!(
                "{} not in force ({} names no version of it; the plugin ships v{current_version})",
                statement.as_str(),
                source_name(*source)
            ),
        },
        Event::JournalReconciled {
            first_seq,
            last_seq,
            applied,
        } => format!(
            "journal reconciled: #{first_seq}..#{last_seq} from the host's events ({applied} applied)"
        ),
        Event::EntriesNotRecorded { entries } => {
            format!("{entries} entries reached the host but not the log")
        }
        Event::ChangeWaiting { operation, .. } => {
            format!("{operation}: narrowing part applied, the rest waits for storage")
        }
        Event::ChangeDropped { operation, .. } => {
            format!("{operation}: the waiting rest was dropped")
        }
        Event::SettingsChanged {
            source,
            before,
            after,
        } => {
            let changes: Vec<String> = after
                .0
                .iter()
                .map(|(path, value)| {
                    let was = before.get(path).map_or("?".to_string(), |v| v.to_string());
                    format!("{path} {was}→{value}")
                })
                .collect();
            format!("settings ({}) {}", source_name(*source), changes.join(", "))
        }
        Event::PolicyApplied { locked } => format!("policy applied ({} locked)", locked.len()),
        Event::ObjectUntrusted {
            md5, url, action, ..
        } => {
            let object = md5.as_deref().or(url.as_deref()).unwrap_or("?");
            format!("untrusted {object} → {action}")
        }
        Event::KsnUnavailable { service, reason } => format!("{service} unavailable ({reason})"),
        Event::KsnRestored { service } => format!("{service} restored"),
        Event::PrivateKsnChanged { enabled } => format!("private_ksn {enabled}"),
        Event::LicenseChanged { license } => format!("licence {license}"),
        Event::OperationRefused {
            operation, kind, ..
        } => format!("{operation} refused: {kind}"),
        Event::EgressRefused {
            category, service, ..
        } => format!("egress refused: {category} to {service}"),
        Event::StorageRecovered { records } => {
            format!("storage works again ({records} waiting records written)")
        }
        other => other.type_name().into_owned(),
    }
}

fn source_name(source: plugin_api::documents::Source) -> String {
    crate::serde_name(&source)
}
