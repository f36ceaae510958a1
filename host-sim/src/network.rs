//! The simulated KSN services: Global KSN, the Administration Server's KSN proxy, and
//! Private KSN, each with a reputation database, an up/down switch and a latency.

use std::{
    collections::HashMap,
    sync::atomic::{AtomicBool, AtomicU32, Ordering},
    time::Duration,
};

use plugin_api::{FileQuery, KsnReply, Service, TransportFailure, Verdict};
use schemars::JsonSchema;
use serde::Deserialize;

use crate::schemas::{file_verdicts, url_verdicts};

/// Verdicts by object: a KSN service's database (a scenario's `ksn` section, or
/// `tests/data/`), or the device's own allow/deny lists (`local_lists`).
#[derive(Deserialize, JsonSchema, Default, Clone, Debug)]
#[serde(deny_unknown_fields)]
pub struct DatabaseSpec {
    /// Verdicts by MD5 checksum.
    #[serde(default)]
    #[schemars(schema_with = "file_verdicts")]
    pub files: HashMap<String, Verdict>,
    /// Verdicts by URL.
    #[serde(default)]
    #[schemars(schema_with = "url_verdicts")]
    pub urls: HashMap<String, Verdict>,
}

#[derive(Default, Debug)]
pub struct Database {
    files: HashMap<[u8; 16], Verdict>,
    urls: HashMap<String, Verdict>,
}

impl Database {
    /// Checks every checksum; the error names the entry.
    pub fn from_spec(spec: &DatabaseSpec, path: &str) -> Result<Self, String> {
        let reputation = |place: String, verdict: Verdict| {
            if verdict == Verdict::UNAVAILABLE {
                Err(format!(
                    "{place}: expected trusted, untrusted or unknown (unavailable is what a lookup answers without an answer, not a reputation)"
                ))
            } else {
                Ok(verdict)
            }
        };
        let mut files = HashMap::new();
        for (md5, verdict) in &spec.files {
            let place = plugin_api::documents::path::join(&format!("{path}.files"), md5);
            let key = FileQuery::parse_md5(md5).map_err(|e| format!("{place}: {e}"))?;
            files.insert(key, reputation(place, *verdict)?);
        }
        for (url, verdict) in &spec.urls {
            reputation(
                plugin_api::documents::path::join(&format!("{path}.urls"), url),
                *verdict,
            )?;
        }
        Ok(Self {
            files,
            urls: spec.urls.clone(),
        })
    }

    /// The verdict on a file; the empty case first, as it is the common one for local lists
    /// and sits on the lookup path.
    pub fn file(&self, md5: &[u8; 16]) -> Verdict {
        if self.files.is_empty() {
            return Verdict::UNKNOWN;
        }
        self.files.get(md5).copied().unwrap_or(Verdict::UNKNOWN)
    }

    pub fn url(&self, url: &str) -> Verdict {
        if self.urls.is_empty() {
            return Verdict::UNKNOWN;
        }
        self.urls.get(url).copied().unwrap_or(Verdict::UNKNOWN)
    }
}

/// The Global KSN data and the Private KSN local reputation database.
#[derive(Deserialize, JsonSchema, Default, Clone, Debug)]
#[serde(deny_unknown_fields)]
pub struct KsnSpec {
    #[serde(default)]
    pub global: DatabaseSpec,
    #[serde(default)]
    pub private: DatabaseSpec,
}

struct Link {
    up: AtomicBool,
    latency_ms: AtomicU32,
}

impl Default for Link {
    fn default() -> Self {
        Self {
            up: AtomicBool::new(true),
            latency_ms: AtomicU32::new(5),
        }
    }
}

pub struct Network {
    global: Database,
    private: Database,
    links: [Link; 4],
    /// Sleep for the latency (benchmarks) instead of only accounting for it (scenarios).
    real_latency: bool,
}

/// Why a request was not answered, and whether it reached the service.
pub struct Delivery {
    pub delivered: bool,
    pub result: Result<u32, TransportFailure>,
}

impl Network {
    pub fn new(spec: &KsnSpec, real_latency: bool) -> Result<Self, String> {
        Ok(Self {
            global: Database::from_spec(&spec.global, "ksn.global")?,
            private: Database::from_spec(&spec.private, "ksn.private")?,
            links: Default::default(),
            real_latency,
        })
    }

    pub fn set_link(&self, service: Service, up: bool, latency_ms: Option<u32>) {
        let link = &self.links[service.0 as usize];
        link.up.store(up, Ordering::Relaxed);
        if let Some(latency) = latency_ms {
            link.latency_ms.store(latency, Ordering::Relaxed);
        }
    }

    pub fn link(&self, service: Service) -> (bool, u32) {
        let link = &self.links[service.0 as usize];
        (
            link.up.load(Ordering::Relaxed),
            link.latency_ms.load(Ordering::Relaxed),
        )
    }

    /// Carries one request to `service`: refused at once when it is down; delivered and
    /// answered late (timed out) when its latency exceeds the timeout.
    pub fn carry(&self, service: Service, timeout_ms: u32) -> Delivery {
        if service == Service::NONE || service.0 as usize >= self.links.len() {
            return Delivery {
                delivered: false,
                result: Err(TransportFailure::UNREACHABLE),
            };
        }
        let (up, latency) = self.link(service);
        if !up {
            return Delivery {
                delivered: false,
                result: Err(TransportFailure::UNREACHABLE),
            };
        }
        let waited = latency.min(timeout_ms);
        if self.real_latency && waited > 0 {
            std::thread::sleep(Duration::from_millis(u64::from(waited)));
        }
        Delivery {
            delivered: true,
            result: if latency > timeout_ms {
                Err(TransportFailure::TIMED_OUT)
            } else {
                Ok(latency)
            },
        }
    }

    /// What `service` answers about a file. The proxy relays Global KSN; Private KSN
    /// answers from its own database and the KSN data it mirrors.
    pub fn file_reply(&self, service: Service, md5: &[u8; 16], latency_ms: u32) -> KsnReply {
        KsnReply {
            ksn: self.global.file(md5),
            private_database: if service == Service::PRIVATE {
                self.private.file(md5)
            } else {
                Verdict::UNKNOWN
            },
            latency_ms,
        }
    }

    pub fn url_reply(&self, service: Service, url: &str, latency_ms: u32) -> KsnReply {
        KsnReply {
            ksn: self.global.url(url),
            private_database: if service == Service::PRIVATE {
                self.private.url(url)
            } else {
                Verdict::UNKNOWN
            },
            latency_ms,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_down_service_receives_nothing_and_a_slow_one_times_out() {
        let net = Network::new(&KsnSpec::default(), false).unwrap();
        net.set_link(Service::GLOBAL, false, None);
        let d = net.carry(Service::GLOBAL, 1000);
        assert!(!d.delivered);
        assert_eq!(d.result, Err(TransportFailure::UNREACHABLE));
        net.set_link(Service::GLOBAL, true, Some(2000));
        let d = net.carry(Service::GLOBAL, 1000);
        assert!(d.delivered);
        assert_eq!(d.result, Err(TransportFailure::TIMED_OUT));
        assert_eq!(net.carry(Service::GLOBAL, 3000).result, Ok(2000));
    }

    #[test]
    fn unavailable_is_not_a_reputation() {
        let mut spec = KsnSpec::default();
        spec.global
            .urls
            .insert("http://x.example/".into(), Verdict::UNAVAILABLE);
        let err = Network::new(&spec, false).err().unwrap();
        assert!(
            err.starts_with(r#"ksn.global.urls["http://x.example/"]: expected trusted"#),
            "{err}"
        );
    }

    #[test]
    fn bad_checksums_in_a_database_are_named() {
        let mut spec = KsnSpec::default();
        spec.private.files.insert("xyz".into(), Verdict::TRUSTED);
        let err = Network::new(&spec, false).err().unwrap();
        assert!(err.starts_with("ksn.private.files.xyz"), "{err}");
    }
}
