//! The statements the administrator reads and accepts, each with a version. An acceptance
//! is of one version: when an update of the plugin brings a new version of a statement,
//! the acceptance of the old one no longer counts (`Control::restarted`).

use super::consent::Statement;

/// One statement as the administrator reads it in the Data handling window.
pub struct Text {
    pub statement: Statement,
    pub version: u32,
    pub title: &'static str,
    pub text: &'static str,
}

/// The KSN statement's version. The `ksn_update` cfg builds the test fixture
/// `tests/fixtures/updated-plugin`: this plugin as an update that brings a new version.
#[cfg(not(ksn_update))]
const KSN_VERSION: u32 = 1;
#[cfg(ksn_update)]
const KSN_VERSION: u32 = 2;

/// Every statement this plugin ships, in `Statement` order.
pub const TEXTS: [Text; 3] = [
    Text {
        statement: Statement::Ksn,
        version: KSN_VERSION,
        title: "Kaspersky Security Network Statement",
        text: "By accepting this statement you agree that this server takes part in Kaspersky \
Security Network (KSN), the cloud reputation service, through the Administration Server's KSN \
proxy or directly.\n\n\
Data sent, each category only while its box under Data handling is selected:\n\
- scanned files: a file reputation request carries the file's MD5 checksum and size \
(send_scanned_files_data);\n\
- scanned URLs: a URL reputation request carries the URL (send_scanned_urls_data);\n\
- statistics: counts of lookups and detections, sent in batches at most once a minute \
(send_statistics).\n\n\
Received: only the reputation of files and URLs (trusted, untrusted or unknown).\n\n\
Participation is voluntary. Clearing the acceptance (or one category's box) withdraws it at \
once: the task stops (or stops sending that category) and queued data is discarded.",
    },
    Text {
        statement: Statement::PrivateKsn,
        version: 1,
        title: "Kaspersky Private Security Network Statement",
        text: "By accepting this statement you agree that this server sends every category of \
data named in the KSN Statement (file reputation requests with MD5 checksums and sizes, URL \
reputation requests with URLs, and statistics) to your organisation's Private KSN services, \
and to no other service.\n\n\
While Private KSN is in use the boxes that adjust Global KSN use are not available. If \
Private KSN is switched off while the task runs, the task stops with a licence violation and \
this acceptance does not carry over: the KSN Statement must be accepted before the task can \
run again.\n\n\
Clearing the acceptance withdraws it at once: the task stops and queued data is discarded.",
    },
    Text {
        statement: Statement::Kmp,
        version: 1,
        title: "Kaspersky Managed Protection Statement",
        text: "By accepting this statement you agree that, in addition to the data of the KSN \
Statement, this server sends one record per detection (the object's checksum or URL, the \
verdict and the action taken) to Kaspersky Managed Protection, in batches at most once a \
minute, so that its analysts can watch over the server.\n\n\
Managed Protection needs the KSN Statement: withdrawing that ends this acceptance too. An \
acceptance takes effect at the next start of the task; a withdrawal takes effect at once.",
    },
];

/// The texts this plugin ships, by statement.
pub trait Shipped {
    /// The statement's text as this plugin ships it.
    fn text(self) -> &'static Text;

    /// The version an acceptance must be of to count.
    fn current_version(self) -> u32;
}

impl Shipped for Statement {
    fn text(self) -> &'static Text {
        &TEXTS[self as usize]
    }

    fn current_version(self) -> u32 {
        self.text().version
    }
}

/// The texts as the contract describes them.
pub fn described() -> Vec<plugin_api::documents::StatementText> {
    TEXTS
        .iter()
        .map(|t| plugin_api::documents::StatementText {
            statement: t.statement,
            version: t.version,
            title: t.title.to_string(),
            text: t.text.to_string(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_statement_has_its_text_in_order() {
        for (i, statement) in [Statement::Ksn, Statement::PrivateKsn, Statement::Kmp]
            .into_iter()
            .enumerate()
        {
            assert_eq!(TEXTS[i].statement, statement);
            assert!(statement.current_version() >= 1);
            assert!(!statement.text().text.is_empty());
        }
    }
}
