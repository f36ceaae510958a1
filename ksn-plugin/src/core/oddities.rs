//! What a host says that this plugin does not understand (a verdict, a URL too long to
//! look up), taken safely and logged once, not at every lookup.

use std::sync::atomic::{AtomicBool, Ordering};

use plugin_api::Verdict;

/// Things a host said that this plugin does not understand, each logged once.
#[derive(Default)]
pub struct Oddities {
    unknown_verdict: AtomicBool,
    pub overlong_url: AtomicBool,
}

impl Oddities {
    pub fn once(flag: &AtomicBool, message: impl FnOnce() -> String) {
        if !flag.swap(true, Ordering::Relaxed) {
            log::warn!("{}", message());
        }
    }

    /// A verdict a service answered, as this plugin knows them: anything else is `unknown`.
    pub fn verdict(&self, verdict: Verdict) -> Verdict {
        if Verdict::ALL.contains(&verdict) && verdict != Verdict::UNAVAILABLE {
            return verdict;
        }
        Self::once(&self.unknown_verdict, || {
            format!(
                "a KSN service answered a verdict this plugin does not know ({}); it is taken as unknown",
                verdict.0
            )
        });
        Verdict::UNKNOWN
    }
}
