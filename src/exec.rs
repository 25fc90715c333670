//! `--exec CMD`: runs a shell command per detection, off the audio path. The worker only
//! hands the detection to a channel (never blocks: a full queue drops and counts); a
//! launcher thread starts `sh -c CMD` with LISTEN_LABEL, LISTEN_SCORE and LISTEN_TIME_MS
//! set, never waits on it, reaps finished commands and reports failures. Commands that
//! fail, hang or print a lot cannot delay detection; at most `MAX_RUNNING` run at once.
use crate::detect::Detection;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Commands still running beyond this many are not started again (a hung command per
/// detection would otherwise pile up processes).
pub const MAX_RUNNING: usize = 16;

/// Where the commands' output goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExecOutput {
    /// To listen's stderr (stdout stays clean JSON lines); failures are logged there.
    Stderr,
    /// Discarded (the terminal display owns the screen); failures are only counted.
    Discard,
}

/// Counters the display and the log read.
#[derive(Debug, Default)]
pub struct ExecStats {
    pub started: AtomicU64,
    pub failed: AtomicU64,
    pub running: AtomicU64,
    /// Not started: the queue was full or MAX_RUNNING were still running.
    pub skipped: AtomicU64,
}

impl ExecStats {
    pub fn summary(&self) -> String {
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        format!(
            "{} started, {} failed, {} running, {} skipped",
            get(&self.started),
            get(&self.failed),
            get(&self.running),
            get(&self.skipped)
        )
    }
}

pub struct Executor {
    tx: SyncSender<Detection>,
    launcher: std::thread::JoinHandle<()>,
    pub stats: Arc<ExecStats>,
}

impl Executor {
    pub fn new(command: String, output: ExecOutput) -> Executor {
        let (tx, rx) = sync_channel::<Detection>(32);
        let stats = Arc::new(ExecStats::default());
        let st = stats.clone();
        let launcher = std::thread::spawn(move || {
            let mut children: Vec<(Child, String)> = Vec::new();
            let mut last_report: Option<Instant> = None;
            let mut unreported = 0u64;
            loop {
                let next = rx.recv_timeout(Duration::from_millis(200));
                // Reap what finished; report failures (at most one line a second).
                children.retain_mut(|(c, label)| match c.try_wait() {
                    Ok(None) => true,
                    Ok(Some(status)) => {
                        if !status.success() {
                            st.failed.fetch_add(1, Ordering::Relaxed);
                            unreported += 1;
                            if output == ExecOutput::Stderr
                                && last_report.is_none_or(|t| t.elapsed().as_secs() >= 1)
                            {
                                let more = if unreported > 1 {
                                    format!(" ({} failures since the last report)", unreported)
                                } else {
                                    String::new()
                                };
                                eprintln!("listen: warning: --exec for '{label}' {status}{more}");
                                last_report = Some(Instant::now());
                                unreported = 0;
                            }
                        }
                        false
                    }
                    Err(_) => false,
                });
                st.running.store(children.len() as u64, Ordering::Relaxed);
                let d = match next {
                    Ok(d) => d,
                    Err(RecvTimeoutError::Timeout) => continue,
                    Err(RecvTimeoutError::Disconnected) => break,
                };
                if children.len() >= MAX_RUNNING {
                    st.skipped.fetch_add(1, Ordering::Relaxed);
                    if output == ExecOutput::Stderr {
                        eprintln!(
                            "listen: warning: --exec not run for '{}': {MAX_RUNNING} earlier commands are still running",
                            d.label
                        );
                    }
                    continue;
                }
                let mut cmd = Command::new("sh");
                cmd.arg("-c")
                    .arg(&command)
                    .env("LISTEN_LABEL", &d.label)
                    .env("LISTEN_SCORE", format!("{:.4}", d.score))
                    .env("LISTEN_TIME_MS", d.time_ms.to_string())
                    .stdin(Stdio::null());
                match output {
                    ExecOutput::Stderr => {
                        if let Some(fd) = dup_stderr() {
                            cmd.stdout(fd);
                        }
                    }
                    ExecOutput::Discard => {
                        cmd.stdout(Stdio::null()).stderr(Stdio::null());
                    }
                }
                match cmd.spawn() {
                    Ok(c) => {
                        st.started.fetch_add(1, Ordering::Relaxed);
                        children.push((c, d.label));
                    }
                    Err(e) => {
                        st.failed.fetch_add(1, Ordering::Relaxed);
                        if output == ExecOutput::Stderr {
                            eprintln!("listen: warning: --exec could not start `sh`: {e}");
                        }
                    }
                }
                st.running.store(children.len() as u64, Ordering::Relaxed);
            }
        });
        Executor {
            tx,
            launcher,
            stats,
        }
    }

    /// Hands a detection over; never blocks (live audio cannot wait).
    pub fn run(&self, d: &Detection) {
        if let Err(TrySendError::Full(_)) = self.tx.try_send(d.clone()) {
            self.stats.skipped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Hands a detection over, waiting for room in the queue (a file can wait).
    pub fn run_waiting(&self, d: &Detection) {
        let _ = self.tx.send(d.clone());
    }

    /// Starts every command still queued, then returns (without waiting for them).
    pub fn finish(self) {
        drop(self.tx);
        let _ = self.launcher.join();
    }
}

fn dup_stderr() -> Option<Stdio> {
    use std::os::fd::AsFd;
    std::io::stderr()
        .as_fd()
        .try_clone_to_owned()
        .ok()
        .map(Stdio::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn det(label: &str) -> Detection {
        Detection {
            label: label.into(),
            score: 0.9,
            time_ms: 1000,
        }
    }

    fn wait_for(what: &str, f: impl Fn() -> bool) {
        let end = Instant::now() + Duration::from_secs(10);
        while !f() {
            assert!(Instant::now() < end, "timed out waiting for {what}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    #[test]
    fn failures_are_counted_and_hung_commands_are_capped() {
        let e = Executor::new(
            "[ \"$LISTEN_LABEL\" = hang ] && exec sleep 10; exit 3".into(),
            ExecOutput::Discard,
        );
        let t = Instant::now();
        e.run(&det("left"));
        e.run(&det("right"));
        wait_for("2 failures", || e.stats.failed.load(Ordering::Relaxed) == 2);
        for _ in 0..MAX_RUNNING + 3 {
            e.run(&det("hang"));
        }
        assert!(
            t.elapsed() < Duration::from_secs(1),
            "run() must never wait"
        );
        wait_for("the cap", || {
            e.stats.skipped.load(Ordering::Relaxed) == 3
                && e.stats.running.load(Ordering::Relaxed) == MAX_RUNNING as u64
        });
        assert_eq!(
            e.stats.started.load(Ordering::Relaxed),
            2 + MAX_RUNNING as u64
        );
    }
}
