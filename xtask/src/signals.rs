//! SIGINT (Ctrl-C) and SIGTERM for the commands that change things: instead of dying with the
//! deploy lock held and a host half-way, they finish or roll back the host in flight, write
//! nothing more, release the lock and exit 130. A second signal (a cancelled CI job sends SIGINT,
//! then SIGTERM) changes nothing of that: the host in flight is still restored first. A third
//! exits at once, ending the SSH connections' masters on its way out.

use std::sync::{Arc, Mutex};

use anyhow::{Context, Result};
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::Notify;

/// The exit code after an interrupt (128 + SIGINT), as shells report it.
pub const INTERRUPTED: u8 = 130;

/// What a third signal does on its way out: the deploy lock's Lease duration, for its message,
/// and the cleanup that must still run (the SSH connections' masters).
#[derive(Debug, Clone, Copy)]
pub struct Exiting {
    pub lease_seconds: i32,
    pub cleanup: fn(),
}

pub struct Interrupt {
    received: Arc<Mutex<Option<&'static str>>>,
    notify: Arc<Notify>,
    task: tokio::task::JoinHandle<()>,
}

impl Interrupt {
    /// From now on SIGINT and SIGTERM are noted instead of ending the process; a third one exits
    /// at once, `exiting` saying how. Needs a runtime.
    pub fn install(exiting: Exiting) -> Result<Interrupt> {
        let mut int = signal(SignalKind::interrupt()).context("listening for SIGINT")?;
        let mut term = signal(SignalKind::terminate()).context("listening for SIGTERM")?;
        let (received, notify) = (Arc::new(Mutex::new(None)), Arc::new(Notify::new()));
        let (r, n) = (received.clone(), notify.clone());
        let task = tokio::spawn(async move {
            let mut count = 0u32;
            loop {
                let name = tokio::select! {
                    _ = int.recv() => "SIGINT",
                    _ = term.recv() => "SIGTERM",
                };
                count += 1;
                note(&r, &n, name);
                match count {
                    1 => crate::output::warning(&format!(
                        "{name}: finishing (or rolling back) the host in flight, then releasing the deploy lock; \
                         a third signal exits at once"
                    )),
                    2 => crate::output::warning(&format!(
                        "{name}: still restoring the host in flight before exiting (a host is never left half \
                         restored); a third signal exits at once"
                    )),
                    _ => {
                        crate::output::warning(&format!(
                            "{name} a third time: exiting at once; the deploy lock expires by itself within {}s",
                            exiting.lease_seconds
                        ));
                        (exiting.cleanup)();
                        std::process::exit(i32::from(INTERRUPTED));
                    }
                }
            }
        });
        Ok(Interrupt {
            received,
            notify,
            task,
        })
    }

    /// An interrupt no signal reaches, raised through [`Interrupt::raiser`]: for driving a command
    /// in-process (the tests and benchmarks). Needs a runtime.
    pub fn detached() -> Interrupt {
        Interrupt {
            received: Arc::new(Mutex::new(None)),
            notify: Arc::new(Notify::new()),
            task: tokio::spawn(async {}),
        }
    }

    /// Notes `signal` as if it had been received.
    pub fn raise(&self, signal: &'static str) {
        note(&self.received, &self.notify, signal);
    }

    /// A handle that raises this interrupt from anywhere (another thread).
    pub fn raiser(&self) -> Raiser {
        Raiser {
            received: self.received.clone(),
            notify: self.notify.clone(),
        }
    }

    /// The signal received, if one was.
    pub fn received(&self) -> Option<&'static str> {
        *self.received.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Resolves once a signal has been received.
    pub async fn wait(&self) {
        loop {
            let notified = self.notify.notified();
            if self.received().is_some() {
                return;
            }
            notified.await;
        }
    }
}

/// Raises an [`Interrupt`] as a signal would.
#[derive(Clone)]
pub struct Raiser {
    received: Arc<Mutex<Option<&'static str>>>,
    notify: Arc<Notify>,
}

impl Raiser {
    pub fn raise(&self, signal: &'static str) {
        note(&self.received, &self.notify, signal);
    }
}

/// Notes the first signal and wakes the waiters; false when one was noted before.
fn note(received: &Mutex<Option<&'static str>>, notify: &Notify, name: &'static str) -> bool {
    let first = {
        let mut g = received.lock().unwrap_or_else(|e| e.into_inner());
        let first = g.is_none();
        g.get_or_insert(name);
        first
    };
    if first {
        notify.notify_waiters();
    }
    first
}

impl Drop for Interrupt {
    fn drop(&mut self) {
        self.task.abort();
    }
}
