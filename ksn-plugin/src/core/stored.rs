//! The task's persistent state as it is written in a journal record (a full snapshot:
//! settings layers, consent, the mode, and the schedules that must survive a restart),
//! and as it is read back and checked.

use serde::{Deserialize, Serialize};
use serde_json::Value as Json;

use super::{
    consent::{Acceptance, Consent, Ended, Source, Statement},
    doc::{PolicyEntry, Versions},
    layers::Layers,
    table::{Setting, Value},
};

/// The persistent state as it is written: borrowed from the task's state, no copies.
#[derive(Serialize)]
pub struct StoredOut<'a> {
    private_ksn: bool,
    /// The licence the host last reported, so a restored task knows it before the host
    /// says it again.
    #[serde(skip_serializing_if = "Option::is_none")]
    license: Option<plugin_api::LicenseState>,
    policy: Vec<PolicyOut>,
    local: Vec<LocalOut>,
    consent: &'a Consent,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    deferred_policy: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    last_batch_ms: Option<u64>,
}

#[derive(Serialize)]
struct PolicyOut {
    path: &'static str,
    value: Value,
    locked: bool,
    #[serde(skip_serializing_if = "Versions::is_empty")]
    versions: Versions,
}

#[derive(Serialize)]
struct LocalOut {
    path: &'static str,
    value: Value,
    source: Source,
}

/// The persistent state as it is read back: settings layers, consent, and the last known
/// mode.
#[derive(Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Stored {
    pub private_ksn: bool,
    #[serde(default, deserialize_with = "plugin_api::LicenseState::lenient_option")]
    pub license: Option<plugin_api::LicenseState>,
    pub policy: Vec<StoredPolicyValue>,
    pub local: Vec<StoredLocalValue>,
    pub consent: Consent,
    #[serde(default)]
    pub deferred_policy: bool,
    #[serde(default)]
    pub last_batch_ms: Option<u64>,
}

#[derive(Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct StoredPolicyValue {
    pub path: String,
    pub value: Json,
    pub locked: bool,
    #[serde(default)]
    pub versions: Versions,
}

#[derive(Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct StoredLocalValue {
    pub path: String,
    pub value: Json,
    pub source: Source,
}

impl StoredOut<'_> {
    /// Writes the bytes `serde_json::to_vec(self)` writes (tested), the keys and the
    /// table's names (paths, choices: `[a-z0-9_.]`, nothing to escape) copied in rather
    /// than escaped one by one: the state is most of a change record.
    pub fn write_json(&self, out: &mut Vec<u8>) {
        fn flag(out: &mut Vec<u8>, b: bool) {
            out.extend_from_slice(if b { b"true" } else { b"false" });
        }
        fn number(out: &mut Vec<u8>, n: u64) {
            let mut digits = [0u8; 20];
            let mut at = digits.len();
            let mut n = n;
            loop {
                at -= 1;
                digits[at] = b'0' + (n % 10) as u8;
                n /= 10;
                if n == 0 {
                    break;
                }
            }
            out.extend_from_slice(&digits[at..]);
        }
        fn name(out: &mut Vec<u8>, name: &str) {
            out.push(b'"');
            out.extend_from_slice(name.as_bytes());
            out.push(b'"');
        }
        fn value(out: &mut Vec<u8>, value: Value) {
            match value {
                Value::Bool(b) => flag(out, b),
                Value::Int(i) => number(out, i.into()),
                Value::Choice(c) => name(out, c),
            }
        }
        fn source(out: &mut Vec<u8>, source: Source) {
            serde_json::to_writer(out, &source).expect("sources serialise");
        }
        out.extend_from_slice(b"{\"private_ksn\":");
        flag(out, self.private_ksn);
        if let Some(license) = self.license {
            out.extend_from_slice(b",\"license\":");
            name(out, license.as_str());
        }
        out.extend_from_slice(b",\"policy\":[");
        for (i, p) in self.policy.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            out.extend_from_slice(b"{\"path\":");
            name(out, p.path);
            out.extend_from_slice(b",\"value\":");
            value(out, p.value);
            out.extend_from_slice(b",\"locked\":");
            flag(out, p.locked);
            if !p.versions.is_empty() {
                out.extend_from_slice(b",\"versions\":{");
                for (i, (statement, version)) in p.versions.named().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    name(out, statement.as_str());
                    out.push(b':');
                    number(out, version.into());
                }
                out.push(b'}');
            }
            out.push(b'}');
        }
        out.extend_from_slice(b"],\"local\":[");
        for (i, l) in self.local.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            out.extend_from_slice(b"{\"path\":");
            name(out, l.path);
            out.extend_from_slice(b",\"value\":");
            value(out, l.value);
            out.extend_from_slice(b",\"source\":");
            source(out, l.source);
            out.push(b'}');
        }
        out.extend_from_slice(b"],\"consent\":");
        write_consent(out, self.consent);
        if self.deferred_policy {
            out.extend_from_slice(b",\"deferred_policy\":true");
        }
        if let Some(ms) = self.last_batch_ms {
            out.extend_from_slice(b",\"last_batch_ms\":");
            number(out, ms);
        }
        out.push(b'}');
    }
}

/// The bytes serde writes of `consent` (tested with the state): the acceptances and how
/// they ended by hand, the rare rest (acceptances not in force, withheld categories)
/// through serde.
fn write_consent(out: &mut Vec<u8>, consent: &Consent) {
    fn head(
        out: &mut Vec<u8>,
        statement: Statement,
        version: u32,
        source: Source,
        time_ms: u64,
        record: u64,
    ) {
        out.extend_from_slice(b"{\"statement\":\"");
        out.extend_from_slice(statement.as_str().as_bytes());
        out.extend_from_slice(b"\",\"version\":");
        out.extend_from_slice(version.to_string().as_bytes());
        out.extend_from_slice(b",\"source\":");
        serde_json::to_writer(&mut *out, &source).expect("sources serialise");
        out.extend_from_slice(b",\"time_ms\":");
        out.extend_from_slice(time_ms.to_string().as_bytes());
        out.extend_from_slice(b",\"record\":");
        out.extend_from_slice(record.to_string().as_bytes());
    }
    let acceptance = |out: &mut Vec<u8>, a: &Option<Acceptance>| match a {
        Some(a) => {
            head(out, a.statement, a.version, a.source, a.time_ms, a.record);
            out.push(b'}');
        }
        None => out.extend_from_slice(b"null"),
    };
    let ended = |out: &mut Vec<u8>, e: &Option<Ended>| match e {
        Some(e) => {
            head(out, e.statement, e.version, e.source, e.time_ms, e.record);
            out.extend_from_slice(if e.with_ksn {
                b",\"with_ksn\":true}"
            } else {
                b",\"with_ksn\":false}"
            });
        }
        None => out.extend_from_slice(b"null"),
    };
    out.extend_from_slice(b"{\"ksn\":");
    acceptance(out, &consent.ksn);
    out.extend_from_slice(b",\"kmp\":");
    acceptance(out, &consent.kmp);
    out.extend_from_slice(b",\"ksn_ended\":");
    ended(out, &consent.ksn_ended);
    out.extend_from_slice(b",\"kmp_ended\":");
    ended(out, &consent.kmp_ended);
    for (key, value) in [
        (&b",\"ksn_not_in_force\":"[..], &consent.ksn_not_in_force),
        (&b",\"kmp_not_in_force\":"[..], &consent.kmp_not_in_force),
    ] {
        if let Some(value) = value {
            out.extend_from_slice(key);
            serde_json::to_writer(&mut *out, value).expect("consent serialises");
        }
    }
    if consent.withheld.iter().any(Option::is_some) {
        out.extend_from_slice(b",\"withheld\":");
        serde_json::to_writer(&mut *out, &consent.withheld).expect("consent serialises");
    }
    out.push(b'}');
}

impl Stored {
    /// The persistent state to write: settings layers, consent, the mode, whether the
    /// policy has values waiting for Private KSN to go off, and the last batch's time.
    pub fn capture<'a>(
        layers: &Layers,
        consent: &'a Consent,
        private_ksn: bool,
        license: plugin_api::LicenseState,
        deferred_policy: bool,
        last_batch_ms: Option<u64>,
    ) -> StoredOut<'a> {
        StoredOut {
            private_ksn,
            license: (license != plugin_api::LicenseState::UNKNOWN).then_some(license),
            deferred_policy,
            last_batch_ms,
            policy: layers
                .policy
                .entries
                .iter()
                .map(|e| PolicyOut {
                    path: e.setting.path(),
                    value: e.value,
                    locked: e.locked,
                    versions: e.versions,
                })
                .collect(),
            local: Setting::ALL
                .iter()
                .filter_map(|s| {
                    layers.local[s.index()].map(|(value, source)| LocalOut {
                        path: s.path(),
                        value,
                        source,
                    })
                })
                .collect(),
            consent,
        }
    }

    pub fn layers(&self) -> Result<Layers, String> {
        let setting = |path: &str, value: &Json| {
            let setting =
                Setting::from_path(path).ok_or_else(|| format!("unknown setting {path}"))?;
            let value = setting
                .parse_value(value)
                .map_err(|e| format!("{path}: {e}"))?;
            Ok::<_, String>((setting, value))
        };
        let mut layers = Layers::default();
        for p in &self.policy {
            let (setting, value) = setting(&p.path, &p.value)?;
            layers.policy.entries.push(PolicyEntry {
                setting,
                value,
                locked: p.locked,
                versions: p.versions,
            });
        }
        layers.policy.entries.sort_by_key(|e| e.setting);
        for l in &self.local {
            let (setting, value) = setting(&l.path, &l.value)?;
            layers.set_local(setting, value, l.source);
        }
        Ok(layers)
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::core::{
        consent::{Acceptance, Ended, Statement},
        table::Kind,
    };

    fn any_value(setting: Setting, pick: u32) -> Value {
        match setting.descriptor().kind {
            Kind::Bool => Value::Bool(pick % 2 == 1),
            Kind::Int { min, max } => Value::Int(min + pick % (max - min + 1)),
            Kind::Choice(names) => Value::Choice(names[pick as usize % names.len()]),
        }
    }

    const SOURCES: [Source; 5] = [
        Source::Default,
        Source::Policy,
        Source::Local,
        Source::ModeChange,
        Source::StatementChanged,
    ];

    proptest! {
        /// What `write_json` writes is what serde writes, for any state.
        #[test]
        fn the_state_writes_as_it_serialises(
            picks in proptest::collection::vec((0u8..4, any::<u32>(), any::<bool>(), 0u8..8), Setting::ALL.len()),
            private_ksn in any::<bool>(),
            license in 0u8..4,
            deferred in any::<bool>(),
            last_batch in proptest::option::of(any::<u64>()),
            time in any::<u64>(),
            consent_picks in proptest::collection::vec((any::<bool>(), 0usize..3, 0usize..5, any::<u32>(), any::<u64>()), 7),
        ) {
            let mut layers = Layers::default();
            for (setting, (layer, pick, locked, versions)) in Setting::ALL.iter().zip(&picks) {
                let value = any_value(*setting, *pick);
                if *layer & 1 == 1 {
                    let mut named = crate::core::doc::Versions::default();
                    for (bit, statement) in [Statement::Ksn, Statement::PrivateKsn, Statement::Kmp].into_iter().enumerate() {
                        if versions & (1 << bit) != 0 {
                            named.set(statement, pick % 7);
                        }
                    }
                    layers.policy.entries.push(PolicyEntry { setting: *setting, value, locked: *locked, versions: named });
                }
                if *layer & 2 == 2 {
                    layers.set_local(*setting, value, SOURCES[*pick as usize % SOURCES.len()]);
                }
            }
            const STATEMENTS: [Statement; 3] = [Statement::Ksn, Statement::PrivateKsn, Statement::Kmp];
            let pick = |i: usize| consent_picks[i];
            let acceptance = |i: usize| {
                let (given, st, so, version, record) = pick(i);
                given.then_some(Acceptance { statement: STATEMENTS[st], version, source: SOURCES[so], time_ms: time, record })
            };
            let ended = |i: usize| {
                let (given, st, so, version, record) = pick(i);
                given.then_some(Ended { statement: STATEMENTS[st], version, source: SOURCES[so], time_ms: time / 2, record, with_ksn: version % 2 == 0 })
            };
            let not_in_force = |i: usize| {
                let (given, st, so, version, record) = pick(i);
                given.then_some(crate::core::consent::NotInForce { statement: STATEMENTS[st], version: (version % 3 != 0).then_some(version), source: SOURCES[so], time_ms: time, record })
            };
            let (withhold, _, so, _, record) = pick(6);
            let mut withheld = [None; crate::core::consent::CATEGORIES];
            if withhold {
                withheld[record as usize % withheld.len()] = Some(crate::core::consent::Withheld { source: SOURCES[so], time_ms: time, record });
            }
            let consent = Consent {
                ksn: acceptance(0),
                kmp: acceptance(1),
                ksn_ended: ended(2),
                kmp_ended: ended(3),
                ksn_not_in_force: not_in_force(4),
                kmp_not_in_force: not_in_force(5),
                withheld,
            };
            let license = [
                plugin_api::LicenseState::UNKNOWN,
                plugin_api::LicenseState::VALID,
                plugin_api::LicenseState::EXPIRED,
                plugin_api::LicenseState::NO_KSN,
            ][license as usize];
            let out = Stored::capture(&layers, &consent, private_ksn, license, deferred, last_batch);
            let mut written = Vec::new();
            out.write_json(&mut written);
            prop_assert_eq!(String::from_utf8(written).unwrap(), serde_json::to_string(&out).unwrap());
        }
    }

    /// `write_json` copies the table's names in unescaped: they must need no escaping.
    #[test]
    fn the_tables_names_need_no_escaping() {
        let plain = |name: &str| {
            name.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'.')
        };
        for setting in Setting::ALL {
            assert!(plain(setting.path()), "{}", setting.path());
            if let Kind::Choice(names) = setting.descriptor().kind {
                assert!(names.iter().all(|n| plain(n)), "{names:?}");
            }
        }
        for license in plugin_api::LicenseState::ALL {
            assert!(plain(license.as_str()));
        }
    }
}
