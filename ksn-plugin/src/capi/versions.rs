//! The first released size of every struct of the C ABI: a host's struct must hold at
//! least that much. Fields appended later are optional by construction (an older host's
//! struct reads them as zero, and an older plugin never writes them).

use std::mem::{offset_of, size_of};

use super::{
    sized::{FromHost, Versioned},
    types::{
        KsnCall, KsnError, KsnFileQuery, KsnHost, KsnLogSink, KsnLookupAnswer, KsnPluginInfo,
        KsnStatus, KsnString,
    },
};

macro_rules! first_version {
    ($($t:ty = $size:expr;)*) => {$(
        // SAFETY: each is #[repr(C)] and starts with `struct_size: u32`.
        unsafe impl Versioned for $t {
            const MIN_SIZE: usize = $size;
        }
    )*};
}

first_version! {
    KsnError = size_of::<KsnError>();
    KsnString = size_of::<KsnString>();
    KsnPluginInfo = size_of::<KsnPluginInfo>();
    // 1.3.0 appended the object's reference to both.
    KsnFileQuery = offset_of!(KsnFileQuery, object);
    KsnLookupAnswer = FIRST_LOOKUP_ANSWER;
    KsnStatus = size_of::<KsnStatus>();
    // The callbacks of the Rust contract's first version are required; the two it gained
    // in 1.2.0 are optional here too.
    KsnHost = offset_of!(KsnHost, storage_replace);
    KsnLogSink = size_of::<KsnLogSink>();
    KsnCall = size_of::<KsnCall>();
}

/// The first `KsnLookupAnswer`: four `u32`s and a `bool`, padded to 20 bytes.
const FIRST_LOOKUP_ANSWER: usize = 20;
const _: () =
    assert!(offset_of!(KsnLookupAnswer, cached) + size_of::<bool>() <= FIRST_LOOKUP_ANSWER);

// SAFETY: integers, raw pointers and nullable function pointers only.
unsafe impl FromHost for KsnFileQuery {}
unsafe impl FromHost for KsnHost {}
unsafe impl FromHost for KsnLogSink {}
// SAFETY: integers and a raw pointer only.
unsafe impl FromHost for KsnCall {}
