//! Size-prefixed structs across the C ABI, both ways: what the host hands in is read up to
//! the smaller of its size and ours (a newer host's extra fields are ignored, an older
//! host's missing ones read as zero), and what the plugin hands out is written up to the
//! smaller of the two, with `struct_size` then saying how much was written. Pointers and
//! sizes are checked wherever a check is possible.

use std::{mem::size_of, ptr};

use plugin_api::{ErrorKind, TaskError};

/// A `#[repr(C)]` struct whose first field is `struct_size: u32`.
///
/// # Safety
///
/// The implementor is `#[repr(C)]`, starts with a `u32`, and `MIN_SIZE` (the size of its
/// first released version) is at most its size.
pub unsafe trait Versioned: Sized {
    const MIN_SIZE: usize;
}

/// A versioned struct the host writes: any bytes are a valid value of it (no `bool`, no
/// enum, no reference), zeros included.
///
/// # Safety
///
/// As said: every bit pattern of every field is valid.
pub unsafe trait FromHost: Versioned {}

/// An argument the plugin cannot use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArgError {
    pub kind: ErrorKind,
    pub what: &'static str,
    pub problem: &'static str,
}

impl ArgError {
    pub const fn new(what: &'static str, problem: &'static str) -> Self {
        Self {
            kind: ErrorKind::INVALID_ARGUMENT,
            what,
            problem,
        }
    }
}

impl From<ArgError> for TaskError {
    #[cold]
    fn from(e: ArgError) -> Self {
        TaskError::new(e.kind, format_args!("{} {}", e.what, e.problem))
    }
}

/// What is wrong with a struct pointer, as a byte (so a check's result stays in registers;
/// the error naming the argument is made only on the cold path).
#[derive(Clone, Copy)]
enum Unusable {
    Null,
    Misaligned,
    TooSmall,
}

impl Unusable {
    #[cold]
    #[inline(never)]
    fn error(self, what: &'static str) -> ArgError {
        ArgError::new(
            what,
            match self {
                Unusable::Null => "is a null pointer",
                Unusable::Misaligned => "is not aligned",
                Unusable::TooSmall => "has a struct_size below the size of its first version",
            },
        )
    }
}

/// The host's `struct_size` of the struct at `ptr`, checked to hold the first version.
///
/// # Safety
///
/// `ptr`, when not null and aligned, points to at least a `u32` the host initialised.
#[inline(always)]
unsafe fn host_size<T: Versioned>(ptr: *const T, what: &'static str) -> Result<usize, ArgError> {
    size_of_host(ptr).map_err(|problem| problem.error(what))
}

#[inline(always)]
unsafe fn size_of_host<T: Versioned>(ptr: *const T) -> Result<usize, Unusable> {
    if ptr.is_null() {
        return Err(Unusable::Null);
    }
    if !ptr.is_aligned() {
        return Err(Unusable::Misaligned);
    }
    let size = ptr::read(ptr.cast::<u32>()) as usize;
    if size < T::MIN_SIZE {
        return Err(Unusable::TooSmall);
    }
    Ok(size)
}

/// Checks a struct the host passed in holds at least its first version, whose fields may
/// then be read in place (a hot path's way: no copy of the whole struct).
///
/// # Safety
///
/// As for [`read_in`].
#[inline]
pub unsafe fn check_in<T: FromHost>(ptr: *const T, what: &'static str) -> Result<usize, ArgError> {
    host_size(ptr, what)
}

/// Reads a struct the host passed in.
///
/// # Safety
///
/// `ptr`, when not null, points to a struct of at least its `struct_size` bytes.
#[inline]
pub unsafe fn read_in<T: FromHost>(ptr: *const T, what: &'static str) -> Result<T, ArgError> {
    let size = host_size(ptr, what)?;
    if size >= size_of::<T>() {
        return Ok(ptr::read(ptr));
    }
    // An older host: the fields it does not know stay zero.
    let mut value = std::mem::MaybeUninit::<T>::zeroed();
    ptr::copy_nonoverlapping(ptr.cast::<u8>(), value.as_mut_ptr().cast::<u8>(), size);
    Ok(value.assume_init())
}

/// Where the plugin writes a struct for the host, checked before anything is computed, so
/// that a bad pointer changes nothing.
pub struct Out<T> {
    ptr: *mut T,
    size: usize,
}

impl<T: Versioned> Out<T> {
    /// # Safety
    ///
    /// `ptr`, when not null, points to a writable struct of at least its `struct_size`
    /// bytes.
    #[inline]
    pub unsafe fn new(ptr: *mut T, what: &'static str) -> Result<Self, ArgError> {
        let size = host_size(ptr, what)?;
        Ok(Self { ptr, size })
    }

    /// Writes `value` (its first `struct_size` bytes, if the host's struct is shorter) and
    /// sets `struct_size` to the bytes written.
    #[inline]
    pub fn write(self, value: T) {
        self.write_with(|| value);
    }

    /// As [`Out::write`], with the value made where it is stored: a hot path's answer goes
    /// straight into the host's struct, not through a copy on the stack.
    #[inline]
    pub fn write_with(self, make: impl FnOnce() -> T) {
        // SAFETY: `new` checked the pointer, and the host promised `size` bytes.
        unsafe {
            if self.size >= size_of::<T>() {
                // A fixed-size store, kept apart from an older host's shorter copy so that
                // a hot path's answer is not a call to memcpy.
                ptr::write(self.ptr, make());
                ptr::write(self.ptr.cast::<u32>(), size_of::<T>() as u32);
            } else {
                write_prefix(self.ptr, make(), self.size);
            }
        }
    }
}

/// An older host's shorter struct: the first `size` bytes of `value`, `struct_size` saying
/// so.
///
/// # Safety
///
/// `ptr` points to `size` writable bytes, `size` below `size_of::<T>()` and at least 4.
#[cold]
#[inline(never)]
unsafe fn write_prefix<T>(ptr: *mut T, value: T, size: usize) {
    let value = std::mem::ManuallyDrop::new(value);
    let from: *const T = &*value;
    ptr::copy_nonoverlapping(from.cast::<u8>(), ptr.cast::<u8>(), size);
    ptr::write(ptr.cast::<u32>(), size as u32);
}

/// The `len` bytes at `data`, which may be null when `len` is 0.
///
/// # Safety
///
/// `data`, when not null, points to `len` readable bytes that outlive `'a`.
#[inline]
pub unsafe fn bytes<'a>(
    data: *const u8,
    len: usize,
    what: &'static str,
) -> Result<&'a [u8], ArgError> {
    if len == 0 {
        return Ok(&[]);
    }
    if data.is_null() {
        return Err(ArgError::new(what, "is a null pointer"));
    }
    if len > isize::MAX as usize {
        return Err(ArgError::new(what, "is longer than memory can hold"));
    }
    Ok(std::slice::from_raw_parts(data, len))
}

/// The UTF-8 text of `len` bytes at `data`; text that is not UTF-8 is an error of `kind`.
///
/// # Safety
///
/// As for [`bytes`].
#[inline]
pub unsafe fn text<'a>(
    data: *const std::ffi::c_char,
    len: usize,
    what: &'static str,
    kind: ErrorKind,
) -> Result<&'a str, ArgError> {
    if len == 0 {
        // No call out for the empty text a hot path passes (a lookup without a path).
        return Ok("");
    }
    let raw = bytes(data.cast::<u8>(), len, what)?;
    std::str::from_utf8(raw).map_err(|_| ArgError {
        kind,
        what,
        problem: "is not UTF-8",
    })
}

/// A vocabulary value from the host, in the contract's byte: a value above 255 becomes
/// 255, which no vocabulary uses, so it reads as unknown instead of as another value.
#[inline]
pub fn narrow(value: u32) -> u8 {
    u8::try_from(value).unwrap_or(u8::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[repr(C)]
    #[derive(Debug, PartialEq)]
    struct Two {
        struct_size: u32,
        a: u32,
        b: u64,
    }
    unsafe impl Versioned for Two {
        const MIN_SIZE: usize = 8;
    }
    unsafe impl FromHost for Two {}

    #[test]
    fn an_older_host_s_struct_reads_with_zeros_and_is_written_in_part() {
        let older = [8u32, 7, 0xdead, 0xbeef];
        let read = unsafe { read_in(older.as_ptr().cast::<Two>(), "two") }.unwrap();
        assert_eq!((read.a, read.b), (7, 0));

        let mut target = [8u32, 0, 0xdead, 0xbeef];
        let out = unsafe { Out::new(target.as_mut_ptr().cast::<Two>(), "two") }.unwrap();
        out.write(Two {
            struct_size: 0,
            a: 5,
            b: 9,
        });
        assert_eq!(target, [8, 5, 0xdead, 0xbeef], "only the host's 8 bytes");
    }

    #[test]
    fn a_newer_host_s_struct_keeps_its_tail() {
        let mut target = [40u64, 0, 0, 77, 88];
        let out = unsafe { Out::new(target.as_mut_ptr().cast::<Two>(), "two") }.unwrap();
        out.write(Two {
            struct_size: 0,
            a: 5,
            b: 9,
        });
        let written = unsafe { ptr::read(target.as_ptr().cast::<Two>()) };
        assert_eq!(
            written,
            Two {
                struct_size: 16,
                a: 5,
                b: 9
            }
        );
        assert_eq!(&target[2..], &[0, 77, 88]);
    }

    #[test]
    fn bad_pointers_and_sizes_are_refused() {
        let null = unsafe { read_in::<Two>(ptr::null(), "two") }.unwrap_err();
        assert_eq!(null.problem, "is a null pointer");
        let short = [4u32, 1, 2, 3];
        let e = unsafe { read_in(short.as_ptr().cast::<Two>(), "two") }.unwrap_err();
        assert!(e.problem.contains("struct_size"), "{e:?}");
        let words = [0u64; 4];
        let odd = unsafe { words.as_ptr().cast::<u8>().add(1) }.cast::<Two>();
        assert_eq!(
            unsafe { read_in(odd, "two") }.unwrap_err().problem,
            "is not aligned"
        );
        let bad = [0xffu8, 0xfe];
        let e = unsafe { text(bad.as_ptr().cast(), 2, "url", ErrorKind::INVALID_STATE) };
        assert_eq!(e.unwrap_err().problem, "is not UTF-8");
        assert_eq!(unsafe { bytes(ptr::null(), 0, "x") }.unwrap(), &[] as &[u8]);
        assert!(unsafe { bytes(ptr::null(), 1, "x") }.is_err());
    }

    #[test]
    fn unknown_values_stay_unknown() {
        assert_eq!(narrow(2), 2);
        assert_eq!(narrow(257), u8::MAX, "not 1");
    }
}
