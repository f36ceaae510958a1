//! The settings as the host reads them: effective values, where each comes from, locks,
//! and whether each applies in the current mode, with the reason in words.

use serde_json::{json, Map, Value as Json};

use super::{
    consent::{Source, Statement},
    control::Control,
    layers::Resolved,
    table::{Role, Setting, TABLE},
};

pub fn settings_json(control: &Control) -> String {
    let resolved = control.resolved();
    let mut sections: Map<String, Json> = Map::new();
    let mut details: Map<String, Json> = Map::new();
    for d in &TABLE {
        let r = resolved[d.setting.index()];
        sections
            .entry(d.section)
            .or_insert_with(|| Json::Object(Map::new()))
            .as_object_mut()
            .expect("sections are objects")
            .insert(d.key.to_string(), r.value.to_json());
        let policy_value = control
            .layers
            .policy
            .get(d.setting)
            .map(|e| e.value.to_json());
        details.insert(
            d.path.to_string(),
            json!({
                "value": r.value.to_json(),
                "source": r.source,
                "locked": r.locked,
                "applies": control.applies(d.setting),
                "policy_value": policy_value,
                "default": d.default.to_json(),
                "summary": d.summary,
                "why": why(control, d.setting, r),
            }),
        );
    }
    json!({
        "private_ksn": control.private_ksn,
        "settings": sections,
        "locked": control.layers.policy.locked_paths(),
        "details": details,
    })
    .to_string()
}

fn why(control: &Control, setting: Setting, r: Resolved) -> String {
    let mut parts = Vec::new();
    let statement = Statement::for_mode(control.private_ksn);
    match (setting.descriptor().role, r.source) {
        (Role::Statement, Source::Default) => {
            let accepted_by_policy = control
                .layers
                .policy
                .get(setting)
                .is_some_and(|e| e.value.as_bool());
            if setting == Setting::KsnStatementAccepted {
                parts.push(format!("{} is not accepted", statement.title()));
            } else {
                parts.push("the Managed Protection statement is not accepted".to_string());
            }
            if accepted_by_policy {
                parts.push(
                    "the policy's acceptance was of the other mode's statement and lapsed when the Private KSN mode changed; accept locally or wait for the next policy push".to_string(),
                );
            }
        }
        (Role::Statement, source) => {
            let title = if setting == Setting::KsnStatementAccepted {
                statement.title()
            } else {
                Statement::Kmp.title()
            };
            parts.push(format!("{title} was accepted by {}", source_word(source)));
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
        (_, Source::ModeChange) => {}
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
    }
    parts.join("; ")
}

fn source_word(source: Source) -> &'static str {
    match source {
        Source::Policy => "policy",
        Source::Local => "a local change",
        Source::Default => "default",
        Source::ModeChange => "a mode change",
    }
}
