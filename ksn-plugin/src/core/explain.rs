//! The settings as the host reads them: effective values, where each comes from, locks,
//! and whether each applies in the current mode, with the reason in words.

use std::collections::BTreeMap;

use plugin_api::documents::{SettingView, SettingsView};
use serde_json::Value as Json;

use super::{
    consent::{Source, Statement},
    control::Control,
    layers::Resolved,
    statements::Shipped,
    table::{Role, Setting, TABLE},
};

/// The settings view (`settings_json`).
pub fn settings_view(control: &Control) -> SettingsView {
    let resolved = control.resolved();
    let mut settings: BTreeMap<String, BTreeMap<String, Json>> = BTreeMap::new();
    let mut details = BTreeMap::new();
    for d in &TABLE {
        let r = resolved[d.setting.index()];
        settings
            .entry(d.section.to_string())
            .or_default()
            .insert(d.key.to_string(), r.value.to_json());
        details.insert(
            d.path.to_string(),
            SettingView {
                value: r.value.to_json(),
                source: r.source,
                locked: r.locked,
                applies: control.applies(d.setting),
                why: why(control, d.setting, r),
                policy_value: control
                    .layers
                    .policy
                    .get(d.setting)
                    .map(|e| e.value.to_json()),
                default: d.default.to_json(),
                meaning: d.summary.to_string(),
            },
        );
    }
    SettingsView {
        private_ksn: control.private_ksn,
        settings,
        locked: control
            .layers
            .policy
            .locked_paths()
            .into_iter()
            .map(String::from)
            .collect(),
        details,
    }
}

pub fn settings_json(control: &Control) -> String {
    serde_json::to_string(&settings_view(control)).expect("the settings view serialises")
}

fn why(control: &Control, setting: Setting, r: Resolved) -> String {
    let mut parts = Vec::new();
    let withheld = setting
        .category_index()
        .and_then(|i| control.consent.withheld[i]);
    match (setting.descriptor().role, r.source) {
        (Role::Statement, _) if !r.value.as_bool() => not_accepted(control, setting, &mut parts),
        (_, source) if withheld.is_some() => {
            let w = withheld.expect("matched");
            parts.push(format!(
                "withdrawn by {} (log #{}, t={} ms) while the settings that say so were not recorded: it stays withdrawn until a policy push or a local change of this box decides it",
                source_word(source),
                w.record,
                w.time_ms
            ));
        }
        (Role::Statement, source) => {
            let title = if setting == Setting::KsnStatementAccepted {
                Statement::for_mode(control.private_ksn).title()
            } else {
                Statement::Kmp.title()
            };
            parts.push(format!("{title} was accepted by {}", source_word(source)));
            // A policy whose own acceptance is not in force is never credited with this one.
            let not_in_force = if setting == Setting::KsnStatementAccepted {
                control.consent.ksn_not_in_force
            } else {
                control.consent.kmp_not_in_force
            };
            let statement = setting.statement_in_mode(control.private_ksn);
            if let Some(n) = not_in_force.filter(|n| Some(n.statement) == statement) {
                parts.push(format!(
                    "the policy in force does not accept it: {}",
                    n.words(n.statement.current_version())
                ));
            }
            if setting == Setting::KmpStatementAccepted && control.state.0 == 1 && !control.kmp_active {
                parts.push("it takes effect at the next task start".to_string());
            }
        }
        (_, Source::Default) => parts.push("default value".to_string()),
        (_, Source::Policy) if r.locked => {
            parts.push("enforced by the policy (locked): a local change to another value is refused".to_string())
        }
        (_, Source::Policy) => parts.push(
            "set by the last policy push (unlocked): a local change overrides it until the next push".to_string(),
        ),
        (_, Source::Local) => parts.push("changed locally".to_string()),
        (_, Source::ModeChange | Source::StatementChanged | Source::UnverifiedRestart) => {}
        (_, Source::Unrecognised) => {}
    }
    if let Some(waiting) = control.waiting.as_ref().filter(|w| w.sets(setting)) {
        parts.push(format!(
            "waits: {} is applied once storage records it",
            waiting.words()
        ));
    }
    if r.locked && setting.descriptor().role == Role::Statement {
        parts.push("locked by the policy".to_string());
    }
    if !control.applies(setting) {
        parts.push(if setting.descriptor().role == Role::GlobalOnly {
            "unavailable in Private KSN mode: all data goes to the Private KSN services, and this box is not applied".to_string()
        } else {
            "does not apply in Private KSN mode: the task talks only to the Private KSN service".to_string()
        });
        if control.deferred_policy
            && control
                .layers
                .policy
                .get(setting)
                .is_some_and(|e| !e.locked)
        {
            parts.push("the policy's value applies when Private KSN goes off".to_string());
        }
    }
    parts.join("; ")
}

/// Why an acceptance box reads false, from the recorded end of its last acceptance.
fn not_accepted(control: &Control, setting: Setting, parts: &mut Vec<String>) {
    let ksn_box = setting == Setting::KsnStatementAccepted;
    let statement = if ksn_box {
        Statement::for_mode(control.private_ksn)
    } else {
        Statement::Kmp
    };
    parts.push(format!("{} is not accepted", statement.title()));
    let not_in_force = if ksn_box {
        control.consent.ksn_not_in_force
    } else {
        control.consent.kmp_not_in_force
    };
    if let Some(n) = not_in_force.filter(|n| n.statement == statement) {
        parts.push(n.words(statement.current_version()));
        return;
    }
    let ended = if ksn_box {
        control.consent.ksn_ended
    } else {
        control.consent.kmp_ended
    };
    let Some(ended) = ended else {
        if !ksn_box && !control.consent.ksn_accepted() {
            parts.push("it needs the KSN statement accepted first".to_string());
        }
        return;
    };
    let at = format!("(log #{}, t={} ms)", ended.record, ended.time_ms);
    parts.push(match (ended.with_ksn, ended.source) {
        (true, Source::StatementChanged) => format!(
            "its acceptance ended when the KSN statement's lapsed because that statement changed {at}; Managed Protection needs it"
        ),
        (true, _) => format!(
            "its acceptance ended when the KSN statement's did {at}; Managed Protection needs it"
        ),
        (false, Source::ModeChange) => format!(
            "the acceptance of {} lapsed when the Private KSN mode changed {at}",
            ended.statement.title()
        ),
        (false, Source::StatementChanged) => format!(
            "the statement changed: version {} replaces version {}, whose acceptance ended with the update {at}; read version {} and accept it",
            ended.statement.current_version(),
            ended.version,
            ended.statement.current_version()
        ),
        (false, Source::UnverifiedRestart) => format!(
            "its acceptance ended when the task was created {at}: {}; confirm it again, locally or by the next policy push",
            super::control::UNVERIFIED
        ),
        (false, source) => format!("withdrawn by {} {at}", source_word(source)),
    });
    let accepted_by_policy = control
        .layers
        .policy
        .get(setting)
        .is_some_and(|e| e.value.as_bool());
    if accepted_by_policy && ended.source != Source::Policy {
        parts.push(if ksn_box {
            "the policy accepts it: accept locally (re-stating the policy's value) or wait for the next policy push".to_string()
        } else {
            "the policy accepts it: it is in force again once the KSN statement is accepted".to_string()
        });
    }
}

fn source_word(source: Source) -> &'static str {
    match source {
        Source::Policy => "the policy",
        Source::Local => "a local change",
        Source::Default => "default",
        Source::ModeChange => "a mode change",
        Source::StatementChanged => "a new version of the statement",
        Source::UnverifiedRestart => "a restart that could not prove no withdrawal was lost",
        Source::Unrecognised => "an unrecognised source",
    }
}
