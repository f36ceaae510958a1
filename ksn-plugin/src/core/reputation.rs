//! Reputation for the application's other tasks: the host's local allow/deny list, then
//! the Private KSN local reputation database, then the KSN answer; then the configured
//! action on an untrusted file.

use plugin_api::{
    AnswerSource, DataCategory, FileQuery, KsnReply, LookupAnswer, ObjectAction, Service,
    TransportFailure, Verdict,
};

use super::{
    cache::{fill, Lookup},
    egress::Sent,
    host::Host,
    journal::Event,
    task::Task,
};

/// The object a lookup is about.
enum Object<'a> {
    File(FileQuery),
    Url(&'a str),
}

fn decided(verdict: Verdict) -> bool {
    verdict == Verdict::TRUSTED || verdict == Verdict::UNTRUSTED
}

/// The Private KSN database's own verdict wins over the KSN data; only the Private KSN
/// service has such a database.
fn merge(service: Service, reply: KsnReply) -> (Verdict, AnswerSource) {
    if service == Service::PRIVATE && decided(reply.private_database) {
        (reply.private_database, AnswerSource::PRIVATE_DATABASE)
    } else {
        (reply.ksn, AnswerSource::KSN)
    }
}

impl<H: Host> Task<H> {
    pub fn check_file(&self, query: FileQuery) -> LookupAnswer {
        let hot = self.hot();
        if !hot.running {
            return LookupAnswer::UNAVAILABLE;
        }
        if hot.over_checksum_limit(query.size_bytes) {
            return answer(Verdict::UNKNOWN, AnswerSource::NONE, false);
        }
        let local = self.host.local_file_verdict(query);
        if decided(local) {
            return self.conclude(Object::File(query), local, AnswerSource::LOCAL_LIST, false);
        }
        match self
            .files
            .lookup(&query.md5, self.cache_clock(), hot.generation)
        {
            Lookup::Hit(hit) => self.conclude(Object::File(query), hit.verdict, hit.source, true),
            Lookup::Miss(guard) => {
                if !hot.allow_files {
                    return answer(Verdict::UNKNOWN, AnswerSource::NONE, false);
                }
                let (verdict, source) = self.ask(DataCategory::FILES, 24, |service, timeout| {
                    self.host.ksn_file(service, query, timeout)
                });
                fill(guard, verdict, source, self.now(), hot.generation);
                self.conclude(Object::File(query), verdict, source, false)
            }
        }
    }

    pub fn check_url(&self, url: &str) -> LookupAnswer {
        let hot = self.hot();
        if !hot.running {
            return LookupAnswer::UNAVAILABLE;
        }
        let local = self.host.local_url_verdict(url);
        if decided(local) {
            return self.conclude(Object::Url(url), local, AnswerSource::LOCAL_LIST, false);
        }
        match self.urls.lookup(url, self.cache_clock(), hot.generation) {
            Lookup::Hit(hit) => self.conclude(Object::Url(url), hit.verdict, hit.source, true),
            Lookup::Miss(guard) => {
                if !hot.allow_urls {
                    return answer(Verdict::UNKNOWN, AnswerSource::NONE, false);
                }
                let (verdict, source) =
                    self.ask(DataCategory::URLS, url.len() as u64, |service, timeout| {
                        self.host.ksn_url(service, url, timeout)
                    });
                fill(guard, verdict, source, self.now(), hot.generation);
                self.conclude(Object::Url(url), verdict, source, false)
            }
        }
    }

    /// Asks the network; `unavailable` when no service answered in time.
    fn ask(
        &self,
        category: DataCategory,
        bytes: u64,
        request: impl FnMut(Service, u32) -> Result<KsnReply, TransportFailure>,
    ) -> (Verdict, AnswerSource) {
        let mut events = Vec::new();
        let sent = self.send(category, 1, bytes, &mut events, request, || {});
        self.record(events);
        match sent {
            Sent::Answered(service, reply) => {
                self.outbound
                    .count(&self.snapshot.load(), DataCategory::STATISTICS);
                merge(service, reply)
            }
            Sent::Failed => (Verdict::UNAVAILABLE, AnswerSource::NONE),
        }
    }

    /// The answer; an untrusted object also gets the action and is recorded.
    #[inline]
    fn conclude(
        &self,
        object: Object<'_>,
        verdict: Verdict,
        source: AnswerSource,
        cached: bool,
    ) -> LookupAnswer {
        if verdict != Verdict::UNTRUSTED {
            return answer(verdict, source, cached);
        }
        self.untrusted(object, verdict, source, cached)
    }

    #[cold]
    #[inline(never)]
    fn untrusted(
        &self,
        object: Object<'_>,
        verdict: Verdict,
        source: AnswerSource,
        cached: bool,
    ) -> LookupAnswer {
        let snapshot = self.snapshot.load();
        let delete = snapshot.delete_untrusted;
        let (md5, url, action) = match object {
            Object::File(query) => {
                let action = if delete {
                    match self.host.backup_and_delete(query) {
                        Ok(()) => ObjectAction::DELETED,
                        Err(e) => {
                            log::error!("could not delete untrusted file {}: {e}", query.md5_hex());
                            ObjectAction::LOGGED
                        }
                    }
                } else {
                    ObjectAction::LOGGED
                };
                (Some(query.md5_hex()), None, action)
            }
            // A URL is not an object on the device: the detection is recorded.
            Object::Url(url) => (None, Some(url.to_string()), ObjectAction::LOGGED),
        };
        self.outbound.count(&snapshot, DataCategory::STATISTICS);
        self.outbound.count(&snapshot, DataCategory::KMP);
        self.record(vec![Event::ObjectUntrusted {
            md5,
            url,
            verdict,
            source,
            action,
        }]);
        LookupAnswer {
            verdict,
            action,
            source,
            cached,
        }
    }
}

fn answer(verdict: Verdict, source: AnswerSource, cached: bool) -> LookupAnswer {
    LookupAnswer {
        verdict,
        action: ObjectAction::NONE,
        source,
        cached,
    }
}
