//! The daemon: one engine, the registry of sessions, and the reaper that
//! closes idle sessions and those of clients that did not come back.

use crate::config::Config;
use crate::registry::Registry;
use goru_runtimes::Engine;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

/// A running daemon. Cheap to clone; every clone is the same daemon.
#[derive(Clone)]
pub struct Daemon {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) engine: Engine,
    pub(crate) config: Config,
    pub(crate) registry: Registry,
    next_connection: AtomicU64,
    reaper_started: AtomicBool,
}

impl Daemon {
    pub fn new(engine: Engine, config: Config) -> Daemon {
        let registry = Registry::new(config.max_sessions, config.max_sessions_per_client);
        Daemon {
            inner: Arc::new(Inner {
                engine,
                config,
                registry,
                next_connection: AtomicU64::new(1),
                reaper_started: AtomicBool::new(false),
            }),
        }
    }

    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    /// Live sessions (and sandboxes being created or running one-shot code).
    pub fn live_sessions(&self) -> usize {
        self.inner.registry.live()
    }

    pub(crate) fn next_connection(&self) -> u64 {
        self.inner.next_connection.fetch_add(1, Ordering::Relaxed)
    }

    /// Starts the reaper on the current tokio runtime, once.
    pub(crate) fn ensure_reaper(&self) {
        if self.inner.reaper_started.swap(true, Ordering::AcqRel) {
            return;
        }
        let weak: Weak<Inner> = Arc::downgrade(&self.inner);
        let config = &self.inner.config;
        let every = (config.idle_timeout.min(config.reconnect_grace) / 4)
            .clamp(Duration::from_millis(10), Duration::from_secs(1));
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let Some(inner) = weak.upgrade() else { return };
                inner
                    .registry
                    .reap(inner.config.idle_timeout, inner.config.reconnect_grace);
            }
        });
    }
}
