//! A scenario's step reports, in memory that does not grow with the scenario: the last
//! `RECENT_STEPS` (what a failing report shows: the failure in its context), and, when a
//! report asks for every step (`--steps`, `--json`, `--junit`), all of them as JSON lines
//! in a temporary file that is removed as soon as it is open.

use std::{
    collections::VecDeque,
    fs::File,
    io::{BufRead, BufReader, Read, Write},
    os::unix::fs::FileExt,
};

use serde::{Deserialize, Serialize, Serializer};

/// How many of the last steps a report shows when it does not show every step.
pub const RECENT_STEPS: usize = 100;

/// Spooled lines are written in blocks of about this size.
const BLOCK: usize = 64 << 10;

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct StepReport {
    pub index: usize,
    pub step: String,
    /// Every device's outcome in a line (`ok (3 devices)`, `ok on devices 0, 2;
    /// storage_error: … on device 1`).
    pub result: String,
    /// The devices' outcomes, grouped (a `do` step on several devices).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub outcomes: Vec<super::devices::Group>,
    /// Events the devices emitted during the step, summarised, each naming its devices
    /// unless every device emitted it.
    pub events: Vec<String>,
}

#[derive(Debug)]
pub struct Timeline {
    recent: VecDeque<StepReport>,
    total: usize,
    spool: Option<Spool>,
}

/// Every step as a JSON line: what the file holds, then what is not written yet.
#[derive(Debug)]
struct Spool {
    file: File,
    written: u64,
    pending: Vec<u8>,
}

impl Timeline {
    /// Keeps the last `RECENT_STEPS` steps.
    pub fn recent() -> Self {
        Self {
            recent: VecDeque::new(),
            total: 0,
            spool: None,
        }
    }

    /// Keeps every step, in a temporary file under `std::env::temp_dir()`.
    pub fn whole() -> Result<Self, String> {
        let dir = std::env::temp_dir();
        let path = dir.join(format!(
            "host-sim-timeline-{}-{}",
            std::process::id(),
            SPOOLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        ));
        let file = File::options()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(|e| format!("the timeline cannot be kept in {}: {e}", dir.display()))?;
        // Open, it needs no name: nothing is left behind however the run ends.
        let _ = std::fs::remove_file(&path);
        Ok(Self {
            recent: VecDeque::new(),
            total: 0,
            spool: Some(Spool {
                file,
                written: 0,
                pending: Vec::with_capacity(BLOCK),
            }),
        })
    }

    pub fn push(&mut self, step: StepReport) -> Result<(), String> {
        self.total += 1;
        if let Some(spool) = &mut self.spool {
            serde_json::to_writer(&mut spool.pending, &step).expect("step reports serialise");
            spool.pending.push(b'\n');
            if spool.pending.len() >= BLOCK {
                spool.flush()?;
            }
            // The spool holds them all; the recent ones are only for a report without it.
            return Ok(());
        }
        if self.recent.len() == RECENT_STEPS {
            self.recent.pop_front();
        }
        self.recent.push_back(step);
        Ok(())
    }

    /// How many steps ran (and were reported), kept or not.
    pub fn len(&self) -> usize {
        self.total
    }

    pub fn is_empty(&self) -> bool {
        self.total == 0
    }

    /// How many steps ran before the first one `iter` yields.
    pub fn not_kept(&self) -> usize {
        self.total - self.kept()
    }

    fn kept(&self) -> usize {
        match self.spool {
            Some(_) => self.total,
            None => self.recent.len(),
        }
    }

    /// The kept steps, in order.
    pub fn iter(&self) -> Box<dyn Iterator<Item = StepReport> + '_> {
        match &self.spool {
            None => Box::new(self.recent.iter().cloned()),
            Some(spool) => Box::new(
                BufReader::new(
                    At {
                        file: &spool.file,
                        at: 0,
                        end: spool.written,
                    }
                    .chain(spool.pending.as_slice()),
                )
                .lines()
                .map(|line| {
                    // Written by `push` a moment ago; a file that reads otherwise is a
                    // broken machine, and the report says where.
                    line.ok()
                        .and_then(|l| serde_json::from_str(&l).ok())
                        .unwrap_or_else(|| StepReport {
                            index: usize::MAX,
                            step: "(the temporary file of the timeline could not be read)".into(),
                            result: "unknown".into(),
                            outcomes: Vec::new(),
                            events: Vec::new(),
                        })
                }),
            ),
        }
    }
}

static SPOOLS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

impl Spool {
    fn flush(&mut self) -> Result<(), String> {
        self.file
            .write_all(&self.pending)
            .map_err(|e| format!("the timeline could not be written to its temporary file: {e}"))?;
        self.written += self.pending.len() as u64;
        self.pending.clear();
        Ok(())
    }
}

/// Reads a file by position, leaving the writer's offset alone.
struct At<'a> {
    file: &'a File,
    at: u64,
    end: u64,
}

impl Read for At<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let most = buf.len().min((self.end - self.at) as usize);
        if most == 0 {
            return Ok(0);
        }
        let n = self.file.read_at(&mut buf[..most], self.at)?;
        self.at += n as u64;
        Ok(n)
    }
}

impl Serialize for Timeline {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.iter())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(index: usize) -> StepReport {
        StepReport {
            index,
            step: format!("check_file {index}"),
            result: "ok".into(),
            outcomes: Vec::new(),
            events: vec![format!("object_untrusted {index}")],
        }
    }

    #[test]
    fn a_recent_timeline_keeps_the_last_steps_and_counts_all() {
        let mut t = Timeline::recent();
        for i in 0..RECENT_STEPS + 30 {
            t.push(step(i)).unwrap();
        }
        assert_eq!(t.len(), RECENT_STEPS + 30);
        assert_eq!(t.not_kept(), 30);
        let kept: Vec<usize> = t.iter().map(|s| s.index).collect();
        assert_eq!(kept, (30..RECENT_STEPS + 30).collect::<Vec<_>>());
    }

    #[test]
    fn a_whole_timeline_gives_back_every_step_written_or_pending() {
        let mut t = Timeline::whole().unwrap();
        // Enough for several blocks in the file and some still pending.
        let n = 3 * BLOCK / 60 + 17;
        for i in 0..n {
            t.push(step(i)).unwrap();
        }
        let spool = t.spool.as_ref().unwrap();
        assert!(spool.written > 0 && !spool.pending.is_empty());
        assert_eq!(t.not_kept(), 0);
        let back: Vec<StepReport> = t.iter().collect();
        assert_eq!(back, (0..n).map(step).collect::<Vec<_>>());
        // Read twice, the same.
        assert_eq!(t.iter().count(), n);
        let json = serde_json::to_value(&t).unwrap();
        assert_eq!(json.as_array().unwrap().len(), n);
        assert_eq!(json[n - 1]["index"], n - 1);
    }
}
