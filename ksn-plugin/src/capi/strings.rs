//! Texts the plugin hands the host, and the functions that free them: every text is a
//! boxed byte slice of its length plus a 0 byte, so a host may also use it as a C string.

use std::{
    ffi::c_char,
    panic::{catch_unwind, AssertUnwindSafe},
    ptr,
};

use super::{
    sized::{Out, Versioned},
    types::{KsnError, KsnErrorKind, KsnString, KSN_ERROR_INVALID_STATE, KSN_OK},
};
use plugin_api::TaskError;

/// A copy of `text` the host owns: pointer and length (the 0 byte after it not counted).
pub fn owned(text: &str) -> (*mut c_char, usize) {
    let mut buffer = Vec::with_capacity(text.len() + 1);
    buffer.extend_from_slice(text.as_bytes());
    buffer.push(0);
    let len = text.len();
    (
        Box::into_raw(buffer.into_boxed_slice()).cast::<c_char>(),
        len,
    )
}

/// Frees what [`owned`] gave.
///
/// # Safety
///
/// `ptr` and `len` are what `owned` answered, not freed before.
unsafe fn free_owned(ptr: *mut c_char, len: usize) {
    if !ptr.is_null() {
        drop(Box::from_raw(ptr::slice_from_raw_parts_mut(
            ptr.cast::<u8>(),
            len + 1,
        )));
    }
}

/// A document for the host.
pub fn string(text: &str) -> KsnString {
    let (ptr, len) = owned(text);
    KsnString {
        struct_size: std::mem::size_of::<KsnString>() as u32,
        ptr,
        len,
    }
}

/// Reports `error` to the host's `KsnError` (when it passed a usable one) and answers its
/// kind.
///
/// # Safety
///
/// `out`, when not null, points to a writable `KsnError` of its `struct_size`.
#[cold]
#[inline(never)]
pub unsafe fn report(out: *mut KsnError, error: &TaskError) -> KsnErrorKind {
    let kind = match KsnErrorKind::from(error.kind.0) {
        KSN_OK => KSN_ERROR_INVALID_STATE,
        kind => kind,
    };
    if let Ok(slot) = Out::new(out, "error") {
        let (message, message_len) = owned(error.message.as_str());
        slot.write(KsnError {
            struct_size: 0,
            kind,
            message,
            message_len,
        });
    }
    kind
}

/// Whether the host's `error` is one the plugin could not write: not NULL, and misaligned
/// or with a `struct_size` below the first version's. The call is then refused
/// (`KSN_ERROR_INVALID_ARGUMENT`) before anything is done, as for any struct too small.
///
/// # Safety
///
/// `error`, when not null and aligned, points to at least a `u32`.
#[inline(always)]
pub unsafe fn unusable_error(error: *const KsnError) -> bool {
    !error.is_null() && !filled(error)
}

/// Whether `value` can hold what the plugin writes (else the plugin never wrote to it).
///
/// # Safety
///
/// `value`, when not null and aligned, points to at least a `u32`.
unsafe fn filled<T: Versioned>(value: *const T) -> bool {
    !value.is_null() && value.is_aligned() && ptr::read(value.cast::<u32>()) as usize >= T::MIN_SIZE
}

/// Frees a text the plugin gave (a document) and empties `string`; NULL, or a string
/// already freed, is nothing to do.
///
/// # Safety
///
/// `string`, when not null, is a `KsnString` the plugin filled (or one whose `ptr` is
/// NULL), with `ptr` and `len` as the plugin wrote them.
#[no_mangle]
pub unsafe extern "C" fn ksn_string_free(string: *mut KsnString) {
    let _ = catch_unwind(AssertUnwindSafe(|| {
        if !filled(string) {
            return;
        }
        let string = &mut *string;
        free_owned(string.ptr, string.len);
        string.ptr = ptr::null_mut();
        string.len = 0;
    }));
}

/// Frees an error's message and empties it; NULL, or an error without a message, is
/// nothing to do. `kind` is left as it was.
///
/// # Safety
///
/// `error`, when not null, is a `KsnError` the plugin filled (or one whose `message` is
/// NULL), with `message` and `message_len` as the plugin wrote them.
#[no_mangle]
pub unsafe extern "C" fn ksn_error_free(error: *mut KsnError) {
    let _ = catch_unwind(AssertUnwindSafe(|| {
        if !filled(error) {
            return;
        }
        let error = &mut *error;
        free_owned(error.message, error.message_len);
        error.message = ptr::null_mut();
        error.message_len = 0;
    }));
}
