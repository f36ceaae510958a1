//! Reputation for the application's other tasks: the host's local allow/deny list, then
//! the Private KSN local reputation database, then the KSN answer; then the configured
//! action on an untrusted file.
//!
//! Statistics and Managed Protection items a lookup produces are counted under the
//! snapshot it was answered under (`Egress::enqueue` drops them if that consent is no
//! longer the one in force).

use plugin_api::{
    AnswerSource, DataCategory, FileQuery, KsnReply, LookupAnswer, ObjectAction, ObjectRef,
    Service, TaskError, TransportFailure, Verdict,
};

use super::{
    cache::{fill, Lookup, MAX_CACHED_URL_BYTES},
    egress::Sent,
    host::{Host, HostObject},
    journal::Event,
    oddities::Oddities,
    snapshot::Snapshot,
    task::Task,
};

/// URLs longer than this are not looked up (answered `unknown`, nothing sent): no service
/// takes them, and they would only carry more of the device's data away.
pub const MAX_URL_BYTES: usize = 8192;

/// The object a lookup is about: a file (the host's object, when it named one) or a URL.
enum Object<'a> {
    File(FileQuery, Option<HostObject<'a>>),
    Url(&'a str),
}

fn decided(verdict: Verdict) -> bool {
    verdict == Verdict::TRUSTED || verdict == Verdict::UNTRUSTED
}

impl<H: Host> Task<H> {
    pub fn check_file(&self, query: FileQuery) -> LookupAnswer {
        self.check_file_object(query, None)
    }

    /// `check_file` about one object of the host's: the action applies to it. Handle 0 is
    /// no object: the action is `check_file`'s (`backup_and_delete` of the query, whose
    /// host decides which files it names), and a path given with it is only logged.
    pub fn check_object(&self, query: FileQuery, object: ObjectRef<'_>) -> LookupAnswer {
        self.check_file_object(query, Some(HostObject::of(object)))
    }

    /// `check_file` or `check_object`, as a shell that reads an optional object calls it
    /// (one call site, so the lookup inlines into it).
    #[inline]
    pub fn check_file_object(
        &self,
        query: FileQuery,
        object: Option<HostObject<'_>>,
    ) -> LookupAnswer {
        let hot = self.hot();
        if !hot.running {
            return LookupAnswer::NOT_RUNNING;
        }
        if hot.over_checksum_limit(query.size_bytes) {
            return answer(Verdict::UNKNOWN, AnswerSource::NONE, false);
        }
        let local = self.host.local_file_verdict(query);
        if decided(local) {
            return self.conclude(
                Object::File(query, object),
                local,
                AnswerSource::LOCAL_LIST,
                false,
                None,
            );
        }
        match self
            .files
            .lookup(&query.md5, self.clock.coarse(), hot.generation)
        {
            Lookup::Hit(hit) => self.conclude(
                Object::File(query, object),
                hit.verdict,
                hit.source,
                true,
                None,
            ),
            Lookup::Miss(guard) => {
                if !hot.allow_files {
                    return answer(Verdict::UNKNOWN, AnswerSource::NOT_CONSENTED, false);
                }
                let (verdict, source, snapshot) =
                    self.ask(DataCategory::FILES, 24, |service, timeout| {
                        self.host.ksn_file(service, query, timeout)
                    });
                // An answer the gate refused says nothing of the file: not cached.
                if source != AnswerSource::NOT_CONSENTED {
                    fill(guard, verdict, source, self.clock.coarse(), hot.generation);
                }
                self.conclude(
                    Object::File(query, object),
                    verdict,
                    source,
                    false,
                    snapshot,
                )
            }
        }
    }

    /// URL reputation; a URL that is empty, malformed or holds a control character is the
    /// host's mistake (`invalid_argument`), never sent anywhere.
    pub fn check_url(&self, url: &str) -> Result<LookupAnswer, TaskError> {
        check_url_form(url)?;
        let hot = self.hot();
        if !hot.running {
            return Ok(LookupAnswer::NOT_RUNNING);
        }
        if url.len() > MAX_URL_BYTES {
            Oddities::once(&self.oddities.overlong_url, || {
                format!(
                    "a URL of {} bytes was not looked up (at most {MAX_URL_BYTES})",
                    url.len()
                )
            });
            return Ok(answer(Verdict::UNKNOWN, AnswerSource::NONE, false));
        }
        let local = self.host.local_url_verdict(url);
        if decided(local) {
            return Ok(self.conclude(
                Object::Url(url),
                local,
                AnswerSource::LOCAL_LIST,
                false,
                None,
            ));
        }
        if url.len() > MAX_CACHED_URL_BYTES {
            return Ok(self.ask_url(url, hot.allow_urls, None));
        }
        Ok(
            match self.urls.lookup(url, self.clock.coarse(), hot.generation) {
                Lookup::Hit(hit) => {
                    self.conclude(Object::Url(url), hit.verdict, hit.source, true, None)
                }
                Lookup::Miss(guard) => {
                    self.ask_url(url, hot.allow_urls, Some((guard, hot.generation)))
                }
            },
        )
    }

    fn ask_url(
        &self,
        url: &str,
        allowed: bool,
        cache: Option<(
            super::cache::Guard<'_, String, super::cache::UrlWeight>,
            u32,
        )>,
    ) -> LookupAnswer {
        if !allowed {
            return answer(Verdict::UNKNOWN, AnswerSource::NOT_CONSENTED, false);
        }
        let (verdict, source, snapshot) =
            self.ask(DataCategory::URLS, url.len() as u64, |service, timeout| {
                self.host.ksn_url(service, url, timeout)
            });
        if let Some((guard, generation)) = cache.filter(|_| source != AnswerSource::NOT_CONSENTED) {
            fill(guard, verdict, source, self.clock.coarse(), generation);
        }
        self.conclude(Object::Url(url), verdict, source, false, snapshot)
    }

    /// Asks the network; `unavailable` when no service answered in time. The snapshot is
    /// the one the request was sent under.
    fn ask(
        &self,
        category: DataCategory,
        bytes: u64,
        mut request: impl FnMut(Service, u32) -> Result<KsnReply, TransportFailure>,
    ) -> (Verdict, AnswerSource, Option<std::sync::Arc<Snapshot>>) {
        let mut events = Vec::new();
        let now = self.now();
        let (sent, snapshot) = self.egress.send(
            &self.snapshot,
            |snapshot| self.route(snapshot, now),
            category,
            now,
            &mut events,
            |_| Some((1, bytes)),
            |service, _, timeout| request(service, timeout),
            |_, _| {},
        );
        self.record(events);
        match sent {
            Sent::Answered(service, reply) => {
                self.egress.enqueue(&snapshot, DataCategory::STATISTICS);
                let (verdict, source) = self.merge(service, reply);
                (verdict, source, Some(snapshot))
            }
            Sent::Failed => (
                Verdict::UNAVAILABLE,
                AnswerSource::SERVICE_DOWN,
                Some(snapshot),
            ),
            Sent::Refused => (
                Verdict::UNKNOWN,
                AnswerSource::NOT_CONSENTED,
                Some(snapshot),
            ),
        }
    }

    /// The Private KSN database's own verdict wins over the KSN data; only the Private KSN
    /// service has such a database.
    fn merge(&self, service: Service, reply: KsnReply) -> (Verdict, AnswerSource) {
        let private = self.oddities.verdict(reply.private_database);
        if service == Service::PRIVATE && decided(private) {
            (private, AnswerSource::PRIVATE_DATABASE)
        } else {
            (self.oddities.verdict(reply.ksn), AnswerSource::KSN)
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
        snapshot: Option<std::sync::Arc<Snapshot>>,
    ) -> LookupAnswer {
        if verdict != Verdict::UNTRUSTED {
            return answer(verdict, source, cached);
        }
        self.untrusted(object, verdict, source, cached, snapshot)
    }

    #[cold]
    #[inline(never)]
    fn untrusted(
        &self,
        object: Object<'_>,
        verdict: Verdict,
        source: AnswerSource,
        cached: bool,
        snapshot: Option<std::sync::Arc<Snapshot>>,
    ) -> LookupAnswer {
        // What this detection counts is counted under the consent it was found under,
        // however long the host takes over the action.
        let snapshot = snapshot.unwrap_or_else(|| self.snapshot.load());
        let mut reason = None;
        let mut hex = [0; 32];
        let shown;
        let (md5, url, action, handle, path) = match object {
            Object::File(query, object) => {
                // Handle 0 is no object: the action is the checksum's, as for `check_file`.
                let named = object.filter(|o| o.handle != 0);
                shown = object
                    .filter(|o| !o.path.is_empty())
                    .map(|o| o.shown_path());
                let action = if snapshot.delete_untrusted {
                    match self.host.backup_and_delete(named, query) {
                        Ok(()) => ObjectAction::DELETED,
                        Err(e) => {
                            match named {
                                Some(o) => log::warn!(
                                    "could not delete untrusted object {} ({}, MD5 {}): {e}",
                                    o.handle,
                                    shown.as_deref().unwrap_or("no path"),
                                    query.md5_hex()
                                ),
                                None => log::warn!(
                                    "could not delete untrusted file {}: {e}",
                                    query.md5_hex()
                                ),
                            }
                            reason = Some(e);
                            ObjectAction::DELETE_FAILED
                        }
                    }
                } else {
                    ObjectAction::LOGGED
                };
                (
                    Some(hex_of(&query.md5, &mut hex)),
                    None,
                    action,
                    named.map(|o| o.handle),
                    shown.as_deref(),
                )
            }
            // A URL is not an object on the device: the detection is recorded.
            Object::Url(url) => (None, Some(url), ObjectAction::LOGGED, None, None),
        };
        self.egress.enqueue(&snapshot, DataCategory::STATISTICS);
        self.egress.enqueue(&snapshot, DataCategory::KMP);
        let detection = Detection {
            md5,
            url,
            verdict,
            source,
            action,
            object: handle,
            path,
            reason: reason.as_deref(),
        };
        self.record_one(
            super::importance::DETECTION,
            |out| detection.write_json(out),
            || detection.to_event(),
        );
        LookupAnswer {
            verdict,
            action,
            source,
            cached,
        }
    }
}

/// A URL as a lookup takes it: a scheme (`letter *(letter / digit / "+" / "-" / ".")`),
/// `://`, a host, and no control character or space anywhere.
fn check_url_form(url: &str) -> Result<(), TaskError> {
    let refuse = |why: &str| {
        Err(TaskError::new(
            plugin_api::ErrorKind::INVALID_ARGUMENT,
            format_args!("url: {why}"),
        ))
    };
    if url.is_empty() {
        return refuse("is empty");
    }
    if let Some(c) = url.chars().find(|c| c.is_control() || *c == ' ') {
        return refuse(&format!(
            "holds {} (U+{:04X}): a URL has no control characters or spaces",
            if c == '\0' {
                "a NUL"
            } else {
                "a control character or a space"
            },
            c as u32
        ));
    }
    let Some((scheme, rest)) = url.split_once("://") else {
        return refuse("is not a URL (scheme://host...)");
    };
    let mut letters = scheme.chars();
    let scheme_ok = letters.next().is_some_and(|c| c.is_ascii_alphabetic())
        && letters.all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c));
    if !scheme_ok {
        return refuse("has no valid scheme (scheme://host...)");
    }
    if rest.is_empty() || rest.starts_with('/') {
        return refuse("has no host (scheme://host...)");
    }
    Ok(())
}

fn answer(verdict: Verdict, source: AnswerSource, cached: bool) -> LookupAnswer {
    LookupAnswer {
        verdict,
        action: ObjectAction::NONE,
        source,
        cached,
    }
}

/// The `object_untrusted` event as it is written, borrowing what it names: the common
/// detection is recorded without building the owned `Event` (which the general path, when
/// records wait, still gets from `to_event`). `write_json` writes exactly what
/// `Event::ObjectUntrusted` serialises to (tested), escaping only the texts that need it.
pub(super) struct Detection<'a> {
    pub md5: Option<&'a str>,
    pub url: Option<&'a str>,
    pub verdict: Verdict,
    pub source: AnswerSource,
    pub action: ObjectAction,
    pub object: Option<u64>,
    pub path: Option<&'a str>,
    pub reason: Option<&'a str>,
}

impl Detection<'_> {
    /// The event as a JSON object, fields in `Event::ObjectUntrusted`'s order.
    pub fn write_json(&self, out: &mut Vec<u8>) {
        let text = |out: &mut Vec<u8>, key: &[u8], value: &str| {
            out.extend_from_slice(key);
            serde_json::to_writer(&mut *out, value).expect("strings serialise");
        };
        // Names and hexadecimal digits need no escaping.
        let name = |out: &mut Vec<u8>, key: &[u8], value: &str| {
            out.extend_from_slice(key);
            out.push(b'"');
            out.extend_from_slice(value.as_bytes());
            out.push(b'"');
        };
        out.extend_from_slice(br#"{"type":"object_untrusted""#);
        if let Some(md5) = self.md5 {
            name(out, br#","md5":"#, md5);
        }
        if let Some(url) = self.url {
            text(out, br#","url":"#, url);
        }
        name(out, br#","verdict":"#, self.verdict.as_str());
        name(out, br#","source":"#, self.source.as_str());
        name(out, br#","action":"#, self.action.as_str());
        if let Some(object) = self.object {
            out.extend_from_slice(br#","object":"#);
            serde_json::to_writer(&mut *out, &object).expect("numbers serialise");
        }
        if let Some(path) = self.path {
            text(out, br#","path":"#, path);
        }
        if let Some(reason) = self.reason {
            text(out, br#","reason":"#, reason);
        }
        out.push(b'}');
    }

    pub fn to_event(&self) -> Event {
        Event::ObjectUntrusted {
            md5: self.md5.map(str::to_string),
            url: self.url.map(str::to_string),
            verdict: self.verdict,
            source: self.source,
            action: self.action,
            object: self.object,
            path: self.path.map(str::to_string),
            reason: self.reason.map(str::to_string),
        }
    }
}

/// The checksum as 32 lowercase hexadecimal digits, in `out`.
fn hex_of<'a>(md5: &[u8; 16], out: &'a mut [u8; 32]) -> &'a str {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for (i, byte) in md5.iter().enumerate() {
        out[2 * i] = DIGITS[usize::from(byte >> 4)];
        out[2 * i + 1] = DIGITS[usize::from(byte & 15)];
    }
    std::str::from_utf8(out).expect("hexadecimal digits are ASCII")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_detection_is_written_as_its_event() {
        let query = FileQuery {
            md5: FileQuery::parse_md5("44d88612fea8a8f36de82e1278abb02f").unwrap(),
            size_bytes: 68,
        };
        let mut hex = [0; 32];
        assert_eq!(hex_of(&query.md5, &mut hex), query.md5_hex());
        let eicar = Some("44d88612fea8a8f36de82e1278abb02f");
        for (md5, url, object, path, reason) in [
            (
                eicar,
                None,
                Some(7),
                Some("C:\\a \"b\".exe"),
                Some("in use"),
            ),
            (eicar, None, None, None, None),
            (None, Some("https://example.com/\u{e9}"), None, None, None),
        ] {
            let detection = Detection {
                md5,
                url,
                verdict: Verdict::UNTRUSTED,
                source: AnswerSource::PRIVATE_DATABASE,
                action: ObjectAction::DELETE_FAILED,
                object,
                path,
                reason,
            };
            let mut written = Vec::new();
            detection.write_json(&mut written);
            assert_eq!(
                String::from_utf8(written).unwrap(),
                serde_json::to_string(&detection.to_event()).unwrap()
            );
        }
    }
}
