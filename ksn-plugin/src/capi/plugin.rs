//! The library's own functions: who it is, its description, and the names of error kinds.

use std::{ffi::c_char, mem::size_of};

use plugin_api::{CONTRACT_MINOR, CONTRACT_VERSION};

use super::{
    call::contained,
    sized::{text, Out},
    strings::string,
    types::{KsnError, KsnErrorKind, KsnPluginInfo, KsnString},
};
use crate::{PLUGIN_NAME, PLUGIN_VERSION};

/// Who the plugin is: its name and version, and the contract version it implements.
///
/// # Safety
///
/// `info` is a `KsnPluginInfo` of its `struct_size`; `error` is NULL or a `KsnError`.
#[no_mangle]
pub unsafe extern "C" fn ksn_plugin_info(
    info: *mut KsnPluginInfo,
    error: *mut KsnError,
) -> KsnErrorKind {
    contained(error, "ksn_plugin_info", || {
        Out::new(info, "info")?.write(KsnPluginInfo {
            struct_size: size_of::<KsnPluginInfo>() as u32,
            contract_minor: CONTRACT_MINOR,
            name: PLUGIN_NAME.as_ptr().cast(),
            name_len: PLUGIN_NAME.len(),
            version: PLUGIN_VERSION.as_ptr().cast(),
            version_len: PLUGIN_VERSION.len(),
            contract_version: CONTRACT_VERSION.as_ptr().cast(),
            contract_version_len: CONTRACT_VERSION.len(),
        });
        Ok(())
    })
}

/// The plugin's description of itself (JSON): its settings, the JSON Schemas of its
/// policy and local-change documents, and its statements' texts and versions.
///
/// # Safety
///
/// `out` is a `KsnString` of its `struct_size` (free it with `ksn_string_free`); `error` is
/// NULL or a `KsnError`.
#[no_mangle]
pub unsafe extern "C" fn ksn_describe(out: *mut KsnString, error: *mut KsnError) -> KsnErrorKind {
    contained(error, "ksn_describe", || {
        let slot = Out::new(out, "out")?;
        let json = plugin_api::export::describe(crate::core::schema::description).into_result()?;
        slot.write(string(json.as_str()));
        Ok(())
    })
}

/// The JSON Schema of the document `name` (`name_len` bytes of UTF-8): `policy`,
/// `local_change` (this plugin's own), `settings`, `event` (one entry of the log, every
/// `type`), `log`, `log_page`, `ledger`, `ledger_page`, `counters`, `description`. An
/// unknown name is refused with `KSN_ERROR_INVALID_ARGUMENT`, listing the names.
///
/// # Safety
///
/// `name` points to `name_len` bytes; `out` is a `KsnString` of its `struct_size` (free it
/// with `ksn_string_free`); `error` is NULL or a `KsnError`.
#[no_mangle]
pub unsafe extern "C" fn ksn_document_schema(
    name: *const c_char,
    name_len: usize,
    out: *mut KsnString,
    error: *mut KsnError,
) -> KsnErrorKind {
    contained(error, "ksn_document_schema", || {
        let name = text(
            name,
            name_len,
            "name",
            plugin_api::ErrorKind::INVALID_ARGUMENT,
        )?;
        let slot = Out::new(out, "out")?;
        let json = plugin_api::export::document_schema(
            name.into(),
            Some(crate::core::schema::description),
        )
        .into_result()?;
        slot.write(string(json.as_str()));
        Ok(())
    })
}

/// The stable snake_case name of an error kind (`license_violation`), `ok` for `KSN_OK`,
/// `unrecognised` for a kind this plugin does not know: a static 0-terminated string.
#[no_mangle]
pub extern "C" fn ksn_error_kind_name(kind: KsnErrorKind) -> *const c_char {
    let name = match kind {
        0 => c"ok",
        1 => c"statement_not_accepted",
        2 => c"license_violation",
        3 => c"locked_by_policy",
        4 => c"unavailable_in_private_ksn",
        5 => c"invalid_settings",
        6 => c"invalid_state",
        7 => c"plugin_panic",
        8 => c"ksn_unavailable",
        9 => c"storage_error",
        10 => c"not_implemented",
        11 => c"invalid_argument",
        _ => c"unrecognised",
    };
    name.as_ptr()
}

#[cfg(test)]
mod tests {
    use std::ffi::CStr;

    use plugin_api::ErrorKind;

    use super::*;

    #[test]
    fn error_kind_names_are_the_contract_s() {
        for kind in ErrorKind::ALL {
            let name = unsafe { CStr::from_ptr(ksn_error_kind_name(kind.0.into())) };
            assert_eq!(name.to_str().unwrap(), kind.as_str());
        }
        let unknown = unsafe { CStr::from_ptr(ksn_error_kind_name(200)) };
        assert_eq!(unknown.to_str().unwrap(), "unrecognised");
    }
}
