//! The console's read-only views. Every document is read as the contract's type, so a
//! plugin that answers a malformed one gets one line naming the method and the place.

use plugin_api::{
    documents::{read_document, Counters, LedgerItem, LedgerOutcome, Statement},
    DataCategory, Service, TaskState, TaskStatus,
};

use crate::{
    views::task::{explain_on, log_lines, settings_view},
    world::World,
};

fn error(e: impl std::fmt::Display) -> String {
    format!("error: {e}")
}

pub fn status(world: &World) -> String {
    let statuses: Vec<TaskStatus> = world.devices.iter().map(|d| d.task.status()).collect();
    // Where the fleet runs several plugin versions, each line says which.
    let mixed = world
        .devices
        .iter()
        .any(|d| world.plugins[d.plugin].version != world.plugins[world.devices[0].plugin].version);
    let plugin = |i: usize| {
        if mixed {
            format!(", plugin {}", world.plugin_of(i).version.label())
        } else {
            String::new()
        }
    };
    let describe = |(i, s): (usize, &TaskStatus)| {
        let error = s
            .error
            .into_option()
            .map(|e| format!(" ({e})"))
            .unwrap_or_default();
        format!(
            "{}{error}, network {}, Private KSN {}, licence {}{}",
            s.state,
            s.network,
            if s.private_ksn { "on" } else { "off" },
            s.license,
            plugin(i)
        )
    };
    if statuses.len() <= 5 {
        return statuses
            .iter()
            .enumerate()
            .map(|(i, s)| format!("device {i}: {}", describe((i, s))))
            .collect::<Vec<_>>()
            .join("\n");
    }
    let mut counts: std::collections::BTreeMap<String, usize> = Default::default();
    for (i, s) in statuses.iter().enumerate() {
        *counts.entry(describe((i, s))).or_default() += 1;
    }
    counts
        .iter()
        .map(|(d, n)| format!("{n} devices: {d}"))
        .collect::<Vec<_>>()
        .join("\n")
}

pub fn settings(world: &World) -> Result<String, String> {
    let view = settings_view(world, 0)?;
    Ok(view
        .details
        .iter()
        .map(|(path, d)| {
            let mut notes = vec![crate::views::task::source_name(d.source)];
            if d.locked {
                notes.push("locked".into());
            }
            if !d.applies {
                notes.push("not applied in this mode".into());
            }
            format!("{path} = {} ({})", d.value, notes.join(", "))
        })
        .collect::<Vec<_>>()
        .join("\n"))
}

pub fn explain(world: &World, path: &str, paths: &[String]) -> Result<String, String> {
    explain_on(world, 0, path, paths)
}

pub fn log(world: &World, n: usize) -> Result<String, String> {
    Ok(log_lines(world, 0, n)?.join("\n"))
}

pub fn received(world: &World) -> String {
    let categories = [
        DataCategory::FILES,
        DataCategory::URLS,
        DataCategory::STATISTICS,
        DataCategory::KMP,
    ];
    let mut out = format!(
        "{:<8} {:>7} {:>7} {:>11} {:>7} {:>7}",
        "service", "files", "urls", "statistics", "kmp", "total"
    );
    for service in [Service::GLOBAL, Service::PROXY, Service::PRIVATE] {
        let sum = |category: Option<DataCategory>| -> u64 {
            world
                .devices
                .iter()
                .map(|d| match category {
                    Some(c) => d.state.received.count(service, c),
                    None => d.state.received.total(service),
                })
                .sum()
        };
        let cells: Vec<u64> = categories.iter().map(|c| sum(Some(*c))).collect();
        out.push_str(&format!(
            "\n{:<8} {:>7} {:>7} {:>11} {:>7} {:>7}",
            service.as_str(),
            cells[0],
            cells[1],
            cells[2],
            cells[3],
            sum(None)
        ));
    }
    out
}

pub fn ledger(world: &World, n: usize) -> Result<String, String> {
    let text = world.devices[0]
        .task
        .ledger_json()
        .into_result()
        .map_err(error)?;
    let items: Vec<LedgerItem> = read_document("ledger_json", &text).map_err(error)?;
    if items.is_empty() {
        return Ok("nothing has been sent".into());
    }
    Ok(items[items.len().saturating_sub(n)..]
        .iter()
        .map(|i| {
            format!(
                "#{} t={}ms {} × {} to {} ({} bytes, {}) allowed by log #{}",
                i.seq,
                i.time_ms,
                i.items,
                i.category,
                i.service,
                i.bytes,
                match i.outcome {
                    LedgerOutcome::Answered => "answered",
                    LedgerOutcome::TimedOut => "timed out",
                },
                i.consent_record
            )
        })
        .collect::<Vec<_>>()
        .join("\n"))
}

pub fn counters(world: &World) -> Result<String, String> {
    let text = world.devices[0]
        .task
        .counters_json()
        .into_result()
        .map_err(error)?;
    let counters: Counters = read_document("counters_json", &text).map_err(error)?;
    Ok(aligned(&[
        ("cache_entries", counters.cache_entries),
        ("queued_statistics", counters.queued_statistics),
        ("queued_kmp", counters.queued_kmp),
        ("ledger_items", counters.ledger_items),
    ]))
}

/// `name value` per line, names padded and values right-aligned like the `received`
/// table.
fn aligned(rows: &[(&str, u64)]) -> String {
    let name_width = rows.iter().map(|(n, _)| n.len()).max().unwrap_or(0);
    let value_width = rows
        .iter()
        .map(|(_, v)| v.to_string().len())
        .max()
        .unwrap_or(0);
    rows.iter()
        .map(|(name, value)| format!("{name:<name_width$}  {value:>value_width$}"))
        .collect::<Vec<_>>()
        .join("\n")
}

pub fn statement(world: &World, words: &[&str]) -> Result<String, String> {
    let statement = match words {
        [] => Statement::for_mode(world.devices[0].task.status().private_ksn),
        [name] => serde_json::from_value(serde_json::Value::from(*name))
            .map_err(|_| format!("statement: expected ksn, private_ksn or kmp, got `{name}`"))?,
        _ => return Err("usage: statement [ksn|private_ksn|kmp]".into()),
    };
    let description = world.plugin.describe().map_err(error)?;
    let found = description
        .statement(statement)
        .ok_or_else(|| format!("error: the plugin has no text of {}", statement.title()))?;
    Ok(format!(
        "{} (version {})\n\n{}",
        found.title, found.version, found.text
    ))
}

pub fn prompt(world: &World) -> String {
    let devices = world.devices.len();
    if devices == 1 {
        return format!("ksn[{}]> ", world.devices[0].task.status().state);
    }
    let running = world
        .devices
        .iter()
        .filter(|d| d.task.status().state == TaskState::RUNNING)
        .count();
    format!("ksn[{running}/{devices} running]> ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_are_aligned_name_value_lines() {
        assert_eq!(
            aligned(&[("cache_entries", 12), ("queued_kmp", 0)]),
            "cache_entries  12\nqueued_kmp      0"
        );
    }
}
