//! Each device's outcome of a step, grouped: the devices that answered alike, named as
//! compact ranges (`devices 0–2, 7`), so that a step on a fleet reports every device's
//! outcome in a few lines.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// At most this many ranges name a group's devices; the rest are counted.
const MOST_RANGES: usize = 8;

/// Devices, as ranges: `device 3`, `devices 0–2, 5`, `devices 0–9, … (and 40 more)`.
pub fn name_devices(devices: &[usize]) -> String {
    let mut ranges: Vec<(usize, usize)> = Vec::new();
    for &d in devices {
        match ranges.last_mut() {
            Some((_, end)) if *end + 1 == d => *end = d,
            _ => ranges.push((d, d)),
        }
    }
    let shown: Vec<String> = ranges
        .iter()
        .take(MOST_RANGES)
        .map(|&(a, b)| {
            if a == b {
                a.to_string()
            } else {
                format!("{a}–{b}")
            }
        })
        .collect();
    let noun = if devices.len() == 1 {
        "device"
    } else {
        "devices"
    };
    let mut text = format!("{noun} {}", shown.join(", "));
    if ranges.len() > MOST_RANGES {
        let named: usize = ranges[..MOST_RANGES].iter().map(|(a, b)| b - a + 1).sum();
        text.push_str(&format!(", … (and {} more)", devices.len() - named));
    }
    text
}

/// The devices that answered a step alike.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct Group {
    /// `ok`, `refused`, or `not_sent` (not addressed, or nothing to send it now).
    pub outcome: String,
    /// The answer (`ok`, a verdict) or the refusal (`storage_error: …`), as the report
    /// words it.
    pub answer: String,
    pub count: usize,
    /// The devices, as ranges (`devices 0–2, 5`).
    pub devices: String,
}

/// Groups each device's (outcome, answer), in the order each first appears.
pub fn group(answers: impl IntoIterator<Item = (usize, &'static str, String)>) -> Vec<Group> {
    let mut order: Vec<(&'static str, String)> = Vec::new();
    let mut members: BTreeMap<(&'static str, String), Vec<usize>> = BTreeMap::new();
    for (device, outcome, answer) in answers {
        let key = (outcome, answer);
        if !members.contains_key(&key) {
            order.push(key.clone());
        }
        members.entry(key).or_default().push(device);
    }
    order
        .into_iter()
        .map(|key| {
            let devices = members.remove(&key).unwrap_or_default();
            Group {
                outcome: key.0.to_string(),
                answer: key.1,
                count: devices.len(),
                devices: name_devices(&devices),
            }
        })
        .collect()
}

/// The groups in a line: the one answer when every device answered alike (`ok`, or `ok
/// on 3 devices`), else each group with its devices.
pub fn words(groups: &[Group], devices: usize) -> String {
    match groups {
        [] => "ok".into(),
        [one] if devices <= 1 => one.answer.clone(),
        [one] if one.count == 1 => format!("{} (1 device)", one.answer),
        [one] => format!("{} ({} devices)", one.answer, one.count),
        many => many
            .iter()
            .map(|g| format!("{} on {}", g.answer, g.devices))
            .collect::<Vec<_>>()
            .join("; "),
    }
}

/// Each distinct event summary with the devices that emitted it: `state stopped→running`
/// when only one device emitted events, or every device the same ones.
pub fn events(by_device: Vec<(usize, Vec<String>)>, devices: usize) -> Vec<String> {
    let emitting = by_device.iter().filter(|(_, e)| !e.is_empty()).count();
    let mut order: Vec<String> = Vec::new();
    let mut members: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    for (device, summaries) in by_device {
        for summary in summaries {
            let at = members.entry(summary.clone()).or_default();
            if at.is_empty() {
                order.push(summary);
            }
            if at.last() != Some(&device) {
                at.push(device);
            }
        }
    }
    order
        .into_iter()
        .map(|summary| {
            let devices_of = &members[&summary];
            if emitting <= 1 && devices <= 1 || devices_of.len() == devices {
                summary
            } else {
                format!("{summary} ({})", name_devices(devices_of))
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn devices_are_named_as_ranges_and_long_lists_counted() {
        assert_eq!(name_devices(&[3]), "device 3");
        assert_eq!(name_devices(&[0, 1, 2, 5]), "devices 0–2, 5");
        let every_other: Vec<usize> = (0..40).step_by(2).collect();
        assert_eq!(
            name_devices(&every_other),
            "devices 0, 2, 4, 6, 8, 10, 12, 14, … (and 12 more)"
        );
    }

    #[test]
    fn each_outcome_is_reported_with_its_devices() {
        let groups = group([
            (0, "ok", "ok".to_string()),
            (1, "refused", "storage_error: disk full".to_string()),
            (2, "ok", "ok".to_string()),
        ]);
        assert_eq!(groups.len(), 2);
        assert_eq!(
            words(&groups, 3),
            "ok on devices 0, 2; storage_error: disk full on device 1"
        );
        let alike = group([(0, "ok", "ok".to_string()), (1, "ok", "ok".to_string())]);
        assert_eq!(words(&alike, 2), "ok (2 devices)");
        assert_eq!(words(&alike[..1], 1), "ok");
    }

    #[test]
    fn events_name_their_devices_unless_every_device_emitted_them() {
        let lines = events(
            vec![
                (0, vec!["a".into(), "b".into()]),
                (1, vec!["a".into()]),
                (2, vec!["a".into()]),
            ],
            3,
        );
        assert_eq!(lines, vec!["a".to_string(), "b (device 0)".to_string()]);
        assert_eq!(events(vec![(0, vec!["a".into()])], 1), vec!["a"]);
    }
}
