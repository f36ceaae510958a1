//! The task's persistent state as it is written in a journal record (a full snapshot:
//! settings layers, consent, the mode, and the schedules that must survive a restart),
//! and as it is read back and checked.

use serde::{Deserialize, Serialize};
use serde_json::Value as Json;

use super::{
    consent::{Consent, Source},
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
