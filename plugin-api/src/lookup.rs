//! The typed, allocation-free values of the reputation hot path.

use abi_stable::{
    std_types::{ROption, RResult, RStr},
    StableAbi,
};

use crate::{
    error::TaskError,
    kinds::{
        AnswerSource, ErrorKind, LicenseState, ObjectAction, Operation, Service, TaskState, Verdict,
    },
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

    /// The checksum as 32 lowercase hexadecimal digits (one allocation).
    pub fn md5_hex(&self) -> String {
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        let mut hex = String::with_capacity(32);
        for byte in self.md5 {
            hex.push(DIGITS[usize::from(byte >> 4)] as char);
            hex.push(DIGITS[usize::from(byte & 0xf)] as char);
        }
        hex
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

    /// `unavailable` because the task is not running (1.4.0: says so in `source`).
    pub const NOT_RUNNING: Self = Self {
        source: AnswerSource::NOT_RUNNING,
        ..Self::UNAVAILABLE
    };
}

/// The host's reference to the object a file lookup is about: an opaque `handle` of the
/// host's choosing (a file id, an open handle; never interpreted by the plugin) and, for
/// the log, the object's path (may be empty). The task hands it back in its answer, in the
/// `object_untrusted` event, and to `backup_and_delete_object`, so the host acts on the
/// object it asked about, not on whatever shares its checksum. Added in 1.3.0.
#[repr(C)]
#[derive(StableAbi, Clone, Copy, Debug, PartialEq, Eq)]
pub struct ObjectRef<'a> {
    pub handle: u64,
    pub path: RStr<'a>,
}

impl<'a> ObjectRef<'a> {
    pub fn new(handle: u64, path: &'a str) -> Self {
        Self {
            handle,
            path: RStr::from_str(path),
        }
    }
}

/// The answer to a lookup about one object (`KsnTask::check_object`): the answer, and the
/// handle of the object it is about. Added in 1.3.0.
#[repr(C)]
#[derive(StableAbi, Clone, Copy, Debug, PartialEq, Eq)]
pub struct ObjectAnswer {
    pub answer: LookupAnswer,
    pub object: u64,
}

/// One control call (`KsnTask::control`): the operation and its argument, if it takes one.
/// Added in 1.3.0.
#[repr(C)]
#[derive(StableAbi, Clone, Copy, Debug)]
pub struct ControlCall<'a> {
    pub operation: Operation,
    /// The policy or local change (`push_policy`, `set_local`).
    pub document: RStr<'a>,
    /// Whether Private KSN is in use (`set_private_ksn`).
    pub enabled: bool,
    /// The licence (`set_license`).
    pub license: LicenseState,
}

impl<'a> ControlCall<'a> {
    fn of(operation: Operation) -> Self {
        Self {
            operation,
            document: RStr::from_str(""),
            enabled: false,
            license: LicenseState::UNKNOWN,
        }
    }
    pub fn push_policy(json: &'a str) -> Self {
        Self {
            document: RStr::from_str(json),
            ..Self::of(Operation::PUSH_POLICY)
        }
    }
    pub fn set_local(json: &'a str) -> Self {
        Self {
            document: RStr::from_str(json),
            ..Self::of(Operation::SET_LOCAL)
        }
    }
    pub fn set_private_ksn(enabled: bool) -> Self {
        Self {
            enabled,
            ..Self::of(Operation::SET_PRIVATE_KSN)
        }
    }
    pub fn set_license(license: LicenseState) -> Self {
        Self {
            license,
            ..Self::of(Operation::SET_LICENSE)
        }
    }
    pub fn application_started() -> Self {
        Self::of(Operation::APPLICATION_STARTED)
    }
    pub fn start() -> Self {
        Self::of(Operation::START)
    }
    pub fn stop() -> Self {
        Self::of(Operation::STOP)
    }
}

/// What a control call caused: its own result, and the task's status as the call ended
/// (before any other control call could change it), so a host learns a consequence (a
/// `license_violation`, a scheduled start refused) from the call that caused it. Added in
/// 1.3.0.
#[repr(C)]
#[derive(StableAbi, Clone, Debug, PartialEq)]
pub struct CallOutcome {
    pub result: RResult<(), TaskError>,
    pub status: TaskStatus,
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
