//! What the host gives the plugin: the only way the task reaches the outside world.

use abi_stable::{
    sabi_trait,
    std_types::{RBox, RResult, RSlice, RStr, RString, RVec},
    StableAbi,
};

use crate::{
    kinds::{DataCategory, LogLevel, Service, TransportFailure, Verdict},
    lookup::{FileQuery, KsnReply, ObjectRef},
};

/// Services the host provides to one task instance: event sink, clock, persistent
/// storage, the device's local allow/deny lists, the backup store, and the transport to
/// the KSN services. Called from any thread; must not call back into the task.
#[sabi_trait]
pub trait HostServices: Send + Sync {
    /// Receives one event (a JSON object with a `type`), in order. The KSN Usage task calls
    /// it outside its own locks, one thread at a time, so a slow sink delays no change of
    /// consent on another thread.
    fn emit_event(&self, event_json: RStr<'_>);

    /// The host's clock, in milliseconds (simulated time in the simulator).
    fn now_ms(&self) -> u64;

    /// Appends one record atomically: after a crash it is there whole or not at all.
    fn storage_append(&self, key: RStr<'_>, record: RSlice<'_, u8>) -> RResult<(), RString>;

    /// All records appended under `key`, oldest first.
    fn storage_records(&self, key: RStr<'_>) -> RResult<RVec<RVec<u8>>, RString>;

    /// The device's local allow/deny list: `trusted`, `untrusted` or `unknown`.
    fn local_file_verdict(&self, query: FileQuery) -> Verdict;

    /// The device's local allow/deny list for URLs.
    fn local_url_verdict(&self, url: RStr<'_>) -> Verdict;

    /// Sends a file reputation request to `service`, waiting at most `timeout_ms`.
    ///
    /// The transport must honour `timeout_ms` (answer `timed_out` once it has passed): a
    /// withdrawal waits for the sends in flight that it affects, so how long a withdrawal
    /// can take is bounded by this timeout.
    fn ksn_file(
        &self,
        service: Service,
        query: FileQuery,
        timeout_ms: u32,
    ) -> RResult<KsnReply, TransportFailure>;

    /// Sends a URL reputation request to `service`, waiting at most `timeout_ms`.
    fn ksn_url(
        &self,
        service: Service,
        url: RStr<'_>,
        timeout_ms: u32,
    ) -> RResult<KsnReply, TransportFailure>;

    /// Sends a batch of `items` items of `category` (statistics, KMP data); answers the
    /// latency in milliseconds.
    fn ksn_upload(
        &self,
        service: Service,
        category: DataCategory,
        items: u32,
        timeout_ms: u32,
    ) -> RResult<u32, TransportFailure>;

    /// Removes the object, keeping a backup copy in the host's backup store.
    #[sabi(last_prefix_field)]
    fn backup_and_delete(&self, query: FileQuery) -> RResult<(), RString>;

    /// Replaces every record under `key` with `records`, atomically: after a crash the key
    /// holds either the old records or the new ones, whole. The plugin compacts its storage
    /// with it (a fresh snapshot in place of the history it no longer needs). Added in
    /// 1.2.0; a host that cannot answers an error, and the plugin keeps appending.
    fn storage_replace(
        &self,
        key: RStr<'_>,
        records: RSlice<'_, RSlice<'_, u8>>,
    ) -> RResult<(), RString> {
        let _ = (key, records);
        abi_stable::std_types::RErr(RString::from("this host cannot replace records"))
    }

    /// How much of the task log the plugin keeps, beyond the consent records, which it
    /// keeps for ever (the audit trail). Added in 1.2.0.
    fn log_retention(&self) -> LogRetention {
        LogRetention::DEFAULT
    }

    /// The events of this task the host holds (as `emit_event` received them) whose `seq`
    /// is `from_seq` or later, oldest first. A management server keeps a device's events
    /// in its own database, apart from the device's storage: at creation the task asks for
    /// those after the last entry of its journal, so that a change that took effect while
    /// storage refused to record it (a withdrawal, above all) is not undone by a restart.
    /// The task applies again only what narrows what may leave, never what widens it, so
    /// a host may answer more than was lost, or events of no use. Added in 1.3.0.
    ///
    /// `Ok(list)` says the host keeps this task's events: the list is every one it holds
    /// from `from_seq` on (empty: none were lost). `Err` says it cannot tell: it keeps no
    /// events (the default, from 1.4.0), or reading them failed. The task then relies on
    /// its own journal, and where that cannot prove that every narrowing was recorded (the
    /// last session did not end cleanly) it fails closed: the statement's acceptance ends
    /// (`consent_changed`, source `unverified_restart`) and must be confirmed again. A host
    /// built against 1.3.0 that does not override this answers `Ok` with none.
    fn events_since(&self, from_seq: u64) -> RResult<RVec<RString>, RString> {
        let _ = from_seq;
        abi_stable::std_types::RErr(RString::from(KEEPS_NO_EVENTS))
    }

    /// Removes the object `object` (the one a `check_object` was about), keeping a backup
    /// copy; `query` is its checksum and size. Added in 1.3.0; a host that does not know
    /// objects answers as `backup_and_delete(query)`.
    fn backup_and_delete_object(
        &self,
        object: ObjectRef<'_>,
        query: FileQuery,
    ) -> RResult<(), RString> {
        let _ = object;
        self.backup_and_delete(query)
    }
}

/// What `HostServices::events_since` answers by default: the host keeps no events.
pub const KEEPS_NO_EVENTS: &str = "this host keeps no events";

/// How much of the task log a plugin keeps: an entry is dropped once it is not among the
/// newest `max_entries`, or is older than `max_age_ms` of host time. Consent records
/// (acceptances and withdrawals) are never dropped. Zero means no limit of that kind.
#[repr(C)]
#[derive(StableAbi, Clone, Copy, Debug, PartialEq, Eq)]
pub struct LogRetention {
    pub max_entries: u64,
    pub max_age_ms: u64,
}

impl LogRetention {
    /// The newest 10,000 entries of the last 90 days.
    pub const DEFAULT: Self = Self {
        max_entries: 10_000,
        max_age_ms: 90 * 24 * 60 * 60 * 1000,
    };
}

/// The owned host-services object handed to each task instance.
pub type HostBox = HostServices_TO<'static, RBox<()>>;

/// The host's logger. Rust's `log` facade is per binary, so the plugin's records reach the
/// host only through this sink, installed once per loaded library before anything else.
#[sabi_trait]
pub trait LogSink: Send + Sync {
    fn log(&self, level: LogLevel, target: RStr<'_>, message: RStr<'_>);

    /// The most verbose level the host wants; the plugin filters before formatting.
    #[sabi(last_prefix_field)]
    fn max_level(&self) -> LogLevel;
}

pub type LogSinkBox = LogSink_TO<'static, RBox<()>>;
