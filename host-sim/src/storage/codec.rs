//! How a record is kept in the host database: compressed with zstd against a dictionary
//! made of records seen before (a device's records look like every other device's), or
//! as given when that does not make it smaller.
//!
//! A dictionary is raw content: distinct records from a reservoir sample of every record
//! this process stored, taken when the count reaches 1,024 and again at each fourfold (so
//! a later phase of a fleet's life is sampled too). It is named by a hash of its bytes, so
//! two processes writing one database never give two dictionaries one name, and it is
//! stored (and committed) before the first record that uses it. A record names its codec:
//! 0 for as given, else its dictionary. Reading needs only the stored dictionaries.

use std::{
    cell::RefCell,
    collections::HashMap,
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc, Mutex, RwLock,
    },
};

use arc_swap::ArcSwapOption;
use zstd::zstd_safe::{self, CCtx, CDict, DCtx, DDict};

/// A record as stored: its codec and bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Encoded {
    pub codec: u32,
    pub bytes: Vec<u8>,
}

impl Encoded {
    pub fn raw(bytes: &[u8]) -> Self {
        Self {
            codec: 0,
            bytes: bytes.to_vec(),
        }
    }
}

const LEVEL: i32 = 1;
/// The first dictionary is made after this many records, the next after four times more.
const FIRST_TRAINING: u64 = 1024;
const SAMPLE: usize = 512;
const DICTIONARY_BYTES: usize = 48 * 1024;

struct Dictionary {
    id: u32,
    compress: CDict<'static>,
}

pub struct Codec {
    current: ArcSwapOption<Dictionary>,
    decoders: RwLock<HashMap<u32, Arc<DDict<'static>>>>,
    seen: AtomicU64,
    sample: Mutex<Vec<Vec<u8>>>,
    /// False for a store opened to read: it never makes a dictionary.
    learns: bool,
}

thread_local! {
    static CONTEXTS: RefCell<Option<(CCtx<'static>, DCtx<'static>)>> = const { RefCell::new(None) };
}

fn with_contexts<T>(f: impl FnOnce(&mut CCtx<'static>, &mut DCtx<'static>) -> T) -> T {
    CONTEXTS.with(|c| {
        let mut c = c.borrow_mut();
        let (cctx, dctx) = c.get_or_insert_with(|| (CCtx::create(), DCtx::create()));
        f(cctx, dctx)
    })
}

/// A dictionary's name: FNV-1a of its bytes, never 0 (0 is "as given").
pub fn dictionary_id(bytes: &[u8]) -> u32 {
    let mut h: u32 = 0x811c_9dc5;
    for &b in bytes {
        h = (h ^ u32::from(b)).wrapping_mul(0x0100_0193);
    }
    h.max(1)
}

/// splitmix64: which reservoir slot the n-th record may take.
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

impl Codec {
    pub fn new(learns: bool) -> Self {
        Self {
            current: ArcSwapOption::empty(),
            decoders: RwLock::new(HashMap::new()),
            seen: AtomicU64::new(0),
            sample: Mutex::new(Vec::with_capacity(SAMPLE)),
            learns,
        }
    }

    /// Makes a stored dictionary known for reading.
    pub fn know(&self, id: u32, bytes: &[u8]) {
        let ddict = Arc::new(DDict::create(bytes));
        self.decoders
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id, ddict);
    }

    pub fn knows(&self, id: u32) -> bool {
        id == 0
            || self
                .decoders
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .contains_key(&id)
    }

    /// Encodes `record`. When the count of records seen reaches a training point, returns
    /// also a new dictionary (id, bytes) that the caller must store before using it
    /// (`adopt`).
    pub fn encode(&self, record: &[u8]) -> (Encoded, Option<(u32, Vec<u8>)>) {
        let trained = if self.learns {
            self.observe(record)
        } else {
            None
        };
        let encoded = match self.current.load_full() {
            Some(dictionary) => {
                let mut out = Vec::with_capacity(zstd_safe::compress_bound(record.len()));
                let written = with_contexts(|cctx, _| {
                    cctx.compress_using_cdict(&mut out, record, &dictionary.compress)
                });
                match written {
                    Ok(_) if out.len() < record.len() => Encoded {
                        codec: dictionary.id,
                        bytes: out,
                    },
                    _ => Encoded::raw(record),
                }
            }
            None => Encoded::raw(record),
        };
        (encoded, trained)
    }

    /// Makes a stored dictionary the one new records are encoded with.
    pub fn adopt(&self, id: u32, bytes: &[u8]) {
        self.know(id, bytes);
        self.current.store(Some(Arc::new(Dictionary {
            id,
            compress: CDict::create(bytes, LEVEL),
        })));
    }

    fn observe(&self, record: &[u8]) -> Option<(u32, Vec<u8>)> {
        let n = self.seen.fetch_add(1, Ordering::Relaxed) + 1;
        let slot = if (n as usize) <= SAMPLE {
            Some(n as usize - 1)
        } else {
            let j = mix(n) % n;
            (j < SAMPLE as u64).then_some(j as usize)
        };
        // At 1,024 records, then at each fourfold.
        let training = n.is_multiple_of(FIRST_TRAINING) && {
            let m = n / FIRST_TRAINING;
            m.is_power_of_two() && m.trailing_zeros().is_multiple_of(2)
        };
        if slot.is_none() && !training {
            return None;
        }
        let mut sample = self.sample.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(slot) = slot {
            if slot < sample.len() {
                sample[slot] = record.to_vec();
            } else {
                sample.push(record.to_vec());
            }
        }
        if !training {
            return None;
        }
        // Distinct records, the most recently sampled last (zstd reaches the end of a
        // dictionary most cheaply), up to the dictionary's size.
        let mut seen = std::collections::HashSet::new();
        let mut chosen: Vec<&[u8]> = Vec::new();
        let mut size = 0;
        for record in sample.iter().rev() {
            if size + record.len() > DICTIONARY_BYTES {
                continue;
            }
            if seen.insert(record.as_slice()) {
                size += record.len();
                chosen.push(record);
            }
        }
        let bytes: Vec<u8> = chosen
            .iter()
            .rev()
            .flat_map(|r| r.iter().copied())
            .collect();
        Some((dictionary_id(&bytes), bytes))
    }

    /// The record as given. `Err` names what is missing or damaged.
    pub fn decode(&self, encoded: Encoded) -> Result<Vec<u8>, String> {
        if encoded.codec == 0 {
            return Ok(encoded.bytes);
        }
        let ddict = self
            .decoders
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&encoded.codec)
            .cloned()
            .ok_or_else(|| {
                format!(
                    "a record is encoded with dictionary {:08x}, which the database does not hold",
                    encoded.codec
                )
            })?;
        let size = match zstd_safe::get_frame_content_size(&encoded.bytes) {
            Ok(Some(size)) if size <= 64 << 20 => size as usize,
            _ => return Err("a stored record's compressed frame is damaged".into()),
        };
        let mut out = Vec::with_capacity(size);
        with_contexts(|_, dctx| dctx.decompress_using_ddict(&mut out, &encoded.bytes, &ddict))
            .map_err(|code| {
                format!(
                    "a stored record does not decompress: {}",
                    zstd_safe::get_error_name(code)
                )
            })?;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(i: u64) -> Vec<u8> {
        format!(
            r#"{{"next_seq":{i},"state":{{"private_ksn":{},"license":"valid","policy":[{{"path":"data_handling.ksn_statement_accepted","value":true,"locked":true}}]}}}}"#,
            i.is_multiple_of(2)
        )
        .into_bytes()
    }

    #[test]
    fn records_come_back_as_given_before_and_after_a_dictionary() {
        let codec = Codec::new(true);
        let mut stored = Vec::new();
        let mut dictionaries = 0;
        for i in 0..5000 {
            let (encoded, trained) = codec.encode(&record(i));
            if let Some((id, bytes)) = trained {
                assert_eq!(id, dictionary_id(&bytes));
                codec.adopt(id, &bytes);
                dictionaries += 1;
            }
            stored.push((i, encoded));
        }
        // Trained at 1,024 and 4,096 records.
        assert_eq!(dictionaries, 2);
        let compressed: Vec<_> = stored.iter().filter(|(_, e)| e.codec != 0).collect();
        assert!(compressed.len() > 3900);
        assert!(compressed
            .iter()
            .all(|(i, e)| e.bytes.len() * 3 < record(*i).len()));
        for (i, encoded) in stored {
            assert_eq!(codec.decode(encoded).unwrap(), record(i));
        }
    }

    #[test]
    fn a_reader_without_the_dictionary_says_so_and_a_damaged_frame_is_refused() {
        let writer = Codec::new(true);
        let mut last = None;
        for i in 0..1100 {
            let (encoded, trained) = writer.encode(&record(i));
            if let Some((id, bytes)) = trained {
                writer.adopt(id, &bytes);
            }
            last = Some(encoded);
        }
        let last = last.unwrap();
        assert_ne!(last.codec, 0);
        let reader = Codec::new(false);
        assert!(reader
            .decode(last.clone())
            .unwrap_err()
            .contains("does not hold"));
        let mut damaged = last;
        damaged.bytes.truncate(damaged.bytes.len() / 2);
        assert!(writer.decode(damaged).is_err());
    }
}
