//! How much each event matters to an administrator, as a managed application judges it
//! (the security center's four importances). The task's own choice, written into every
//! entry it logs and emits; `docs/loading-from-c.md` lists it by event type.

use plugin_api::{
    documents::{Event, Importance},
    ErrorKind, LicenseState,
};

/// A detection, whatever was done with it.
pub const DETECTION: Importance = Importance::Critical;

pub fn importance(event: &Event) -> Importance {
    match event {
        // The task was stopped by a licence or mode that does not allow KSN: protection
        // from the cloud is gone until an administrator acts.
        Event::TaskError { kind, .. } if *kind == ErrorKind::LICENSE_VIOLATION => {
            Importance::Critical
        }
        Event::TaskError { .. } => Importance::FunctionalFailure,
        Event::ObjectUntrusted { .. } => DETECTION,
        Event::KsnUnavailable { .. } => Importance::Warning,
        Event::LicenseChanged { license } if *license != LicenseState::VALID => Importance::Warning,
        // An acceptance that is not in force, a refused operation, a change that waits
        // for storage or was lost and applied again: someone should look.
        Event::AcceptanceNotInForce { .. }
        | Event::OperationRefused { .. }
        | Event::ChangeWaiting { .. }
        | Event::ChangeDropped { .. }
        | Event::JournalReconciled { .. } => Importance::Warning,
        Event::EntriesNotRecorded { .. } => Importance::FunctionalFailure,
        Event::StateChanged { .. }
        | Event::SettingsChanged { .. }
        | Event::PolicyApplied { .. }
        | Event::ConsentChanged { .. }
        | Event::PrivateKsnChanged { .. }
        | Event::LicenseChanged { .. }
        | Event::KsnRestored { .. }
        | Event::EgressRefused { .. }
        | Event::StorageRecovered { .. }
        | Event::Other(_) => Importance::Info,
    }
}
