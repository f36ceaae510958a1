//! What the core needs from its host. The ABI shell implements it over `HostServices`;
//! tests and the in-process benchmark implement it directly.

use plugin_api::{DataCategory, FileQuery, KsnReply, Service, TransportFailure, Verdict};

pub trait Host: Send + Sync + 'static {
    fn emit_event(&self, event_json: &str);
    fn now_ms(&self) -> u64;
    fn storage_append(&self, key: &str, record: &[u8]) -> Result<(), String>;
    fn storage_records(&self, key: &str) -> Result<Vec<Vec<u8>>, String>;
    fn local_file_verdict(&self, query: FileQuery) -> Verdict;
    fn local_url_verdict(&self, url: &str) -> Verdict;
    fn ksn_file(
        &self,
        service: Service,
        query: FileQuery,
        timeout_ms: u32,
    ) -> Result<KsnReply, TransportFailure>;
    fn ksn_url(
        &self,
        service: Service,
        url: &str,
        timeout_ms: u32,
    ) -> Result<KsnReply, TransportFailure>;
    fn ksn_upload(
        &self,
        service: Service,
        category: DataCategory,
        items: u32,
        timeout_ms: u32,
    ) -> Result<u32, TransportFailure>;
    fn backup_and_delete(&self, query: FileQuery) -> Result<(), String>;
}
