//! The console's views of the Administration Server: the group tree with each group's
//! statuses, the policies and their revisions, a diff of two revisions, the event store.

use plugin_api::documents::Importance;

use crate::world::World;
use admin_server::{policy, Filter, Status, Tree};

fn counts_line(world: &World, devices: &[usize]) -> String {
    counts_words(
        devices.len(),
        world.status_counts_of(devices.iter().copied()),
    )
}

/// `3 devices (2 OK, 1 Warning)`.
fn counts_words(n: usize, counts: [usize; 3]) -> String {
    let parts: Vec<String> = Status::ALL
        .iter()
        .zip(counts)
        .filter(|(_, n)| *n > 0)
        .map(|(s, n)| format!("{n} {s}"))
        .collect();
    let noun = if n == 1 { "device" } else { "devices" };
    if parts.is_empty() {
        format!("{n} {noun}")
    } else {
        format!("{n} {noun} ({})", parts.join(", "))
    }
}

/// The tree, as the Groups page shows it (the same rows): each group with the devices of
/// its subtree and their statuses, its flags and its active policy.
pub fn groups(world: &World) -> String {
    let server = &world.server;
    let statuses: Vec<(Status, Vec<String>)> = (0..world.devices.len())
        .map(|i| world.status_of(i))
        .collect();
    let mut lines = Vec::new();
    for g in crate::views::group_rows(world, &statuses) {
        let mut notes = vec![counts_words(g.devices, g.counts)];
        if g.own_devices != g.devices {
            notes[0].push_str(&format!(", {} in the group itself", g.own_devices));
        }
        if !g.inherit {
            notes.push("inherit cleared".into());
        }
        if let Some(private) = g.private_ksn {
            notes.push(format!(
                "Private KSN {}",
                if private { "on" } else { "off" }
            ));
        }
        if let Some(p) = g
            .active_policy
            .as_deref()
            .and_then(|n| server.policy(n).ok())
        {
            notes.push(format!(
                "policy {:?} revision {}{}",
                p.name,
                p.current().number,
                if p.current().content.force_inheritance {
                    ", forced"
                } else {
                    ""
                }
            ));
        }
        let name = if g.depth == 0 {
            format!("/ ({})", Tree::ROOT_NAME)
        } else {
            g.name.clone()
        };
        lines.push(format!(
            "{}{name}: {}",
            "  ".repeat(g.depth),
            notes.join("; ")
        ));
    }
    lines.push(format!(
        "Private KSN (the server's setting): {}",
        if server.private_ksn() { "on" } else { "off" }
    ));
    lines.join("\n")
}

/// Every policy: its group, whether it is active, its revisions, its profiles.
pub fn policies(world: &World) -> String {
    let server = &world.server;
    if server.policies().is_empty() {
        return "no policies (create_policy, or push_policy for the root group's)".into();
    }
    let mut lines = Vec::new();
    for p in server.policies() {
        let current = p.current();
        lines.push(format!(
            "{:?} of {}: {}, revision {} ({} by {} at {} ms)",
            p.name,
            server.tree().path(p.group),
            if p.active { "active" } else { "inactive" },
            current.number,
            current.what,
            current.by,
            current.time_ms
        ));
        for (place, profile) in current.content.profiles.iter().enumerate() {
            lines.push(format!(
                "  profile {} {:?}: when {}, {} settings",
                place + 1,
                profile.name,
                profile.condition.describe(),
                profile.settings.len()
            ));
        }
        for (path, entry) in &current.content.settings {
            lines.push(format!(
                "  {path} = {}{}",
                entry.value,
                if entry.locked { " (locked)" } else { "" }
            ));
        }
    }
    lines.join("\n")
}

/// `diff <policy> <a> <b>`: what changed from revision a to revision b (default: the
/// last two).
pub fn diff(world: &World, words: &[&str]) -> Result<String, String> {
    let usage = || "usage: diff <policy> [<revision> <revision>]".to_string();
    if words.is_empty() {
        return Err(usage());
    }
    // A name may have spaces (quoted or not): the revisions are the last two numbers.
    let split = match words {
        [.., a, b] if a.parse::<u32>().is_ok() && b.parse::<u32>().is_ok() => words.len() - 2,
        _ => words.len(),
    };
    let (name, numbers) = (words[..split].join(" "), &words[split..]);
    let name = name.trim_matches('"');
    let policy = world.server.policy(name)?;
    let current = policy.current().number;
    let (a, b) = match numbers {
        [] => (current.saturating_sub(1).max(1), current),
        [a, b] => (
            crate::steps::number(a)? as u32,
            crate::steps::number(b)? as u32,
        ),
        _ => return Err(usage()),
    };
    let lines = policy::diff(&policy.revision(a)?.content, &policy.revision(b)?.content);
    if lines.is_empty() {
        return Ok(format!("revisions {a} and {b} of {name:?} hold the same"));
    }
    let b_revision = policy.revision(b)?;
    Ok(std::iter::once(format!(
        "{name:?} revision {a} → {b} ({} by {}):",
        b_revision.what, b_revision.by
    ))
    .chain(lines.into_iter().map(|l| format!("  {l}")))
    .collect::<Vec<_>>()
    .join("\n"))
}

/// `events [importance|type] [N]`: the newest N events of the server's store, newest
/// first, as the Events page lists them (the same rows, the same default window).
pub fn events(world: &World, words: &[&str]) -> Result<String, String> {
    let mut query = crate::views::EventQuery::default();
    let mut filter = Filter::default();
    for word in words {
        if word.parse::<usize>().is_ok() {
            query.limit = Some(word.to_string());
        } else if let Some(importance) = Importance::from_name(word) {
            query.importance = Some(word.to_string());
            filter.importance = Some(importance);
        } else {
            query.kind = Some(word.to_string());
            filter.kind = Some(word.to_string());
        }
    }
    let mut lines: Vec<String> = crate::views::event_rows(world, &query)?
        .into_iter()
        .map(|e| {
            format!(
                "#{} {} ({} ms) device {} ({}) {}: {}: {}{}",
                e.id,
                e.at,
                e.time_ms,
                e.device,
                e.group,
                e.importance,
                e.kind,
                e.description,
                e.by.map(|by| format!(" [by {by}]")).unwrap_or_default()
            )
        })
        .collect();
    let store = world.server.events();
    let [info, warning, failure, critical] = store.counts(&filter);
    lines.push(format!(
        "{} events kept (cap {}), {} deleted; selected: {critical} critical, {failure} functional failure, {warning} warning, {info} info",
        store.len(),
        store.rules.cap,
        store.deleted
    ));
    Ok(lines.join("\n"))
}

/// Each device's status and its reasons, with counts.
pub fn statuses(world: &World) -> String {
    let all: Vec<usize> = (0..world.devices.len()).collect();
    let mut lines: Vec<String> = all
        .iter()
        .take(10)
        .map(|&i| {
            let (status, reasons) = world.status_of(i);
            let group = world.server.tree().path(world.server.devices()[i].group);
            if reasons.is_empty() {
                format!("device {i} ({group}): {status}")
            } else {
                format!("device {i} ({group}): {status}: {}", reasons.join("; "))
            }
        })
        .collect();
    if all.len() > 10 {
        lines.push(format!("... and {} more", all.len() - 10));
    }
    lines.push(format!("statuses: {}", counts_line(world, &all)));
    lines.join("\n")
}
