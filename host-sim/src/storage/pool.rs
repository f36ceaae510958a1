//! A small pool of reading connections: at most `most` open, made when first needed, a
//! caller waiting for one when all are taken.

use std::sync::{Condvar, Mutex};

pub struct Pool<C> {
    state: Mutex<(Vec<C>, usize)>,
    returned: Condvar,
    most: usize,
    open: Box<dyn Fn() -> Result<C, String> + Send + Sync>,
}

impl<C> Pool<C> {
    pub fn new(most: usize, open: impl Fn() -> Result<C, String> + Send + Sync + 'static) -> Self {
        Self {
            state: Mutex::new((Vec::new(), 0)),
            returned: Condvar::new(),
            most: most.max(1),
            open: Box::new(open),
        }
    }

    /// Runs `f` on a connection of the pool. A connection whose use failed is closed
    /// rather than returned (it may be broken).
    pub fn with<T>(&self, f: impl FnOnce(&mut C) -> Result<T, String>) -> Result<T, String> {
        let mut connection = {
            let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
            loop {
                if let Some(c) = state.0.pop() {
                    break c;
                }
                if state.1 < self.most {
                    state.1 += 1;
                    drop(state);
                    match (self.open)() {
                        Ok(c) => break c,
                        Err(e) => {
                            self.state.lock().unwrap_or_else(|e| e.into_inner()).1 -= 1;
                            self.returned.notify_one();
                            return Err(e);
                        }
                    }
                }
                state = self.returned.wait(state).unwrap_or_else(|e| e.into_inner());
            }
        };
        let result = f(&mut connection);
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if result.is_ok() {
            state.0.push(connection);
        } else {
            state.1 -= 1;
        }
        drop(state);
        self.returned.notify_one();
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{
        atomic::{AtomicUsize, Ordering},
        Arc,
    };

    #[test]
    fn never_more_than_the_most_and_a_failed_connection_is_not_reused() {
        let made = Arc::new(AtomicUsize::new(0));
        let counter = made.clone();
        let pool = Arc::new(Pool::new(2, move || {
            Ok(counter.fetch_add(1, Ordering::SeqCst))
        }));
        let busy = Arc::new(AtomicUsize::new(0));
        std::thread::scope(|s| {
            for _ in 0..8 {
                let (pool, busy) = (pool.clone(), busy.clone());
                s.spawn(move || {
                    pool.with(|_| {
                        let now = busy.fetch_add(1, Ordering::SeqCst) + 1;
                        assert!(now <= 2);
                        std::thread::sleep(std::time::Duration::from_millis(5));
                        busy.fetch_sub(1, Ordering::SeqCst);
                        Ok(())
                    })
                    .unwrap();
                });
            }
        });
        assert!((1..=2).contains(&made.load(Ordering::SeqCst)));
    }

    #[test]
    fn a_connection_whose_use_failed_is_replaced() {
        let made = Arc::new(AtomicUsize::new(0));
        let counter = made.clone();
        let pool = Pool::new(2, move || Ok(counter.fetch_add(1, Ordering::SeqCst)));
        assert_eq!(pool.with(|c| Ok(*c)).unwrap(), 0);
        assert_eq!(pool.with(|c| Ok(*c)).unwrap(), 0);
        let _ = pool.with(|_| Err::<(), _>("broken".to_string()));
        assert_eq!(pool.with(|c| Ok(*c)).unwrap(), 1);
    }
}
