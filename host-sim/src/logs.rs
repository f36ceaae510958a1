//! The process's logger, which a scenario run can capture: while a scenario runs, what the
//! plugin and the host log belongs to that scenario's report (shown with `--verbose`,
//! `--steps`, or when it fails), not to the terminal, so a passing suite prints one line
//! per scenario. Everything else goes to the logger it wraps (env_logger's).

use std::{
    collections::VecDeque,
    sync::{
        atomic::{AtomicBool, Ordering},
        Mutex,
    },
};

/// A scenario's report keeps at most this many of its log lines (the last ones).
pub const KEPT_LINES: usize = 100;

/// What a scenario logged: its last lines and how many there were.
#[derive(Debug, Default, Clone, PartialEq, serde::Serialize)]
pub struct Captured {
    pub lines: Vec<String>,
    pub total: usize,
}

struct Capturing {
    inner: Box<dyn log::Log>,
    on: AtomicBool,
    lines: Mutex<(VecDeque<String>, usize)>,
}

static LOGGER: std::sync::OnceLock<Capturing> = std::sync::OnceLock::new();

impl log::Log for Capturing {
    fn enabled(&self, metadata: &log::Metadata) -> bool {
        self.inner.enabled(metadata)
    }

    fn log(&self, record: &log::Record) {
        if !self.inner.enabled(record.metadata()) {
            return;
        }
        if !self.on.load(Ordering::Relaxed) {
            return self.inner.log(record);
        }
        let line = format!("{} {}: {}", record.level(), record.target(), record.args());
        let mut kept = self.lines.lock().unwrap_or_else(|e| e.into_inner());
        if kept.0.len() == KEPT_LINES {
            kept.0.pop_front();
        }
        kept.0.push_back(line);
        kept.1 += 1;
    }

    fn flush(&self) {
        self.inner.flush();
    }
}

/// Installs `inner` (with its level filter) as the process's logger, able to capture.
pub fn install(inner: Box<dyn log::Log>, level: log::LevelFilter) {
    let logger = LOGGER.get_or_init(|| Capturing {
        inner,
        on: AtomicBool::new(false),
        lines: Mutex::default(),
    });
    if log::set_logger(logger).is_ok() {
        log::set_max_level(level);
    }
}

/// From now on, what is logged is kept for the scenario that runs (when this process
/// installed its logger; otherwise nothing is captured).
pub fn begin() {
    if let Some(logger) = LOGGER.get() {
        *logger.lines.lock().unwrap_or_else(|e| e.into_inner()) = Default::default();
        logger.on.store(true, Ordering::Relaxed);
    }
}

/// What was logged since `begin`; logging goes to the terminal again.
pub fn end() -> Captured {
    let Some(logger) = LOGGER.get() else {
        return Captured::default();
    };
    logger.on.store(false, Ordering::Relaxed);
    let (lines, total) =
        std::mem::take(&mut *logger.lines.lock().unwrap_or_else(|e| e.into_inner()));
    Captured {
        lines: lines.into(),
        total,
    }
}
