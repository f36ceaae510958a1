//! The typed, allocation-free values of the reputation hot path.

use abi_stable::{std_types::ROption, StableAbi};

use crate::kinds::{
    AnswerSource, ErrorKind, LicenseState, ObjectAction, Service, TaskState, Verdict,
};

/// A file reputation question: its MD5 checksum and its size.
#[repr(C)]
#[derive(StableAbi, Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FileQuery {
    pub md5: [u8; 16],
    pub size_bytes: u64,
}

impl FileQuery {
    /// Parses 32 hexadecimal digits.
    pub fn parse_md5(hex: &str) -> Result<[u8; 16], String> {
        let bytes = hex.as_bytes();
        if bytes.len() != 32 {
            return Err(format!(
                "an MD5 checksum is 32 hexadecimal digits, got {} characters",
                bytes.len()
            ));
        }
        let mut md5 = [0u8; 16];
        for (i, pair) in bytes.chunks_exact(2).enumerate() {
            let digit = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
            match (digit(pair[0]), digit(pair[1])) {
                (Some(hi), Some(lo)) => md5[i] = hi << 4 | lo,
                _ => return Err(format!("`{hex}` is not hexadecimal")),
            }
        }
        Ok(md5)
    }

    pub fn md5_hex(&self) -> String {
        self.md5.iter().map(|b| format!("{b:02x}")).collect()
    }
}

/// The task's answer to a reputation question.
#[repr(C)]
#[derive(StableAbi, Clone, Copy, Debug, PartialEq, Eq)]
pub struct LookupAnswer {
    pub verdict: Verdict,
    /// What the task did to the object (`none` unless it is untrusted).
    pub action: ObjectAction,
    /// Which layer of the merge decided.
    pub source: AnswerSource,
    /// Whether the answer came from the verdict cache, with no request sent.
    pub cached: bool,
}

impl LookupAnswer {
    pub const UNAVAILABLE: Self = Self {
        verdict: Verdict::UNAVAILABLE,
        action: ObjectAction::NONE,
        source: AnswerSource::NONE,
        cached: false,
    };
}

/// What a KSN service answered. The Private KSN service answers from its local
/// reputation database and from the KSN data it mirrors; the other services fill
/// only `ksn`.
#[repr(C)]
#[derive(StableAbi, Clone, Copy, Debug, PartialEq, Eq)]
pub struct KsnReply {
    pub ksn: Verdict,
    pub private_database: Verdict,
    /// How long the answer took, in simulated milliseconds.
    pub latency_ms: u32,
}

/// The task's state as the host sees it.
#[repr(C)]
#[derive(StableAbi, Clone, Copy, Debug, PartialEq, Eq)]
pub struct TaskStatus {
    pub state: TaskState,
    /// Set while `state` is `failed`.
    pub error: ROption<ErrorKind>,
    /// The service the running task uses; `none` when it is not running.
    pub network: Service,
    pub private_ksn: bool,
    pub license: LicenseState,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn md5_parses_and_prints() {
        let md5 = FileQuery::parse_md5("00112233445566778899AABBCCDDEEFF").unwrap();
        let q = FileQuery { md5, size_bytes: 1 };
        assert_eq!(q.md5_hex(), "00112233445566778899aabbccddeeff");
        assert!(FileQuery::parse_md5("0011")
            .unwrap_err()
            .contains("32 hexadecimal"));
        assert!(FileQuery::parse_md5(&"zz".repeat(16))
            .unwrap_err()
            .contains("not hexadecimal"));
    }
}
