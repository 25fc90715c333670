//! `--exec CMD`: runs a shell command per detection, off the audio path. The worker only
//! hands the detection to a channel (never blocks: a full queue drops and counts); a
//! launcher thread starts `sh -c CMD` with LISTEN_LABEL, LISTEN_SCORE and LISTEN_TIME_MS
//! set, never waits on it, reaps finished commands and reports failures. Commands that
//! fail, hang or print a lot cannot delay detection; at most `MAX_RUNNING` run at once.
//! When listen ends, it waits a little for the commands in flight and ends the rest:
//! none outlives it.
use crate::live::detect::Detection;
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
    /// Still running when listen finished, past the grace: ended.
    pub ended: AtomicU64,
}

impl ExecStats {
    pub fn summary(&self) -> String {
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        format!(
            "{} started, {} failed, {} running, {} skipped, {} ended at exit",
            get(&self.started),
            get(&self.failed),
            get(&self.running),
            get(&self.skipped),
            get(&self.ended)
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
            let mut running = Running {
                children: Vec::new(),
                stats: st,
                output,
                last_report: None,
                unreported: 0,
            };
            loop {
                let next = rx.recv_timeout(Duration::from_millis(200));
                running.reap();
                let d = match next {
                    Ok(d) => d,
                    Err(RecvTimeoutError::Timeout) => continue,
                    Err(RecvTimeoutError::Disconnected) => break,
                };
                running.start(&command, d);
            }
            running.end(FINISH_GRACE);
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

    /// Starts every command still queued, waits up to [`FINISH_GRACE`] for the running
    /// ones and ends those still running then (each with its children), so that no
    /// command outlives `listen`. Returns the counts for a closing summary.
    pub fn finish(self) -> String {
        drop(self.tx);
        let _ = self.launcher.join();
        self.stats.summary()
    }
}

/// How long `finish` waits for commands still running before ending them.
pub const FINISH_GRACE: Duration = Duration::from_secs(3);

/// The launcher's commands in flight.
struct Running {
    children: Vec<(Child, String)>,
    stats: Arc<ExecStats>,
    output: ExecOutput,
    last_report: Option<Instant>,
    unreported: u64,
}

impl Running {
    /// Reaps what finished and reports failures (at most one line a second).
    fn reap(&mut self) {
        let mut failed = Vec::new();
        self.children.retain_mut(|(c, label)| match c.try_wait() {
            Ok(None) => true,
            Ok(Some(status)) => {
                if !status.success() {
                    failed.push(format!("--exec for '{label}' {status}"));
                }
                false
            }
            Err(_) => false,
        });
        for f in failed {
            self.stats.failed.fetch_add(1, Ordering::Relaxed);
            self.unreported += 1;
            if self.output == ExecOutput::Stderr
                && self.last_report.is_none_or(|t| t.elapsed().as_secs() >= 1)
            {
                let more = if self.unreported > 1 {
                    format!(" ({} failures since the last report)", self.unreported)
                } else {
                    String::new()
                };
                eprintln!("listen: warning: {f}{more}");
                self.last_report = Some(Instant::now());
                self.unreported = 0;
            }
        }
        self.stats
            .running
            .store(self.children.len() as u64, Ordering::Relaxed);
    }

    fn start(&mut self, command: &str, d: Detection) {
        use std::os::unix::process::CommandExt;
        if self.children.len() >= MAX_RUNNING {
            self.stats.skipped.fetch_add(1, Ordering::Relaxed);
            if self.output == ExecOutput::Stderr {
                eprintln!(
                    "listen: warning: --exec not run for '{}': {MAX_RUNNING} earlier commands are still running",
                    d.label
                );
            }
            return;
        }
        let mut cmd = Command::new("sh");
        cmd.arg("-c")
            .arg(command)
            .env("LISTEN_LABEL", &d.label)
            .env("LISTEN_SCORE", format!("{:.4}", d.score))
            .env("LISTEN_TIME_MS", d.time_ms.to_string())
            .stdin(Stdio::null())
            // Its own process group: ending it ends what it started too.
            .process_group(0);
        match self.output {
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
                self.stats.started.fetch_add(1, Ordering::Relaxed);
                self.children.push((c, d.label));
            }
            Err(e) => {
                self.stats.failed.fetch_add(1, Ordering::Relaxed);
                if self.output == ExecOutput::Stderr {
                    eprintln!("listen: warning: --exec could not start `sh`: {e}");
                }
            }
        }
        self.stats
            .running
            .store(self.children.len() as u64, Ordering::Relaxed);
    }

    /// Waits up to `grace` for the commands in flight, then ends the rest: SIGTERM to
    /// each one's process group, SIGKILL 200 ms later; all are reaped.
    fn end(&mut self, grace: Duration) {
        let deadline = Instant::now() + grace;
        self.reap();
        while !self.children.is_empty() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
            self.reap();
        }
        if self.children.is_empty() {
            return;
        }
        for sig in [libc::SIGTERM, libc::SIGKILL] {
            for (c, _) in &self.children {
                // SAFETY: signals the process group this child leads (process_group(0)).
                unsafe { libc::killpg(c.id() as libc::pid_t, sig) };
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        let ended = self.children.len() as u64;
        for (c, _) in &mut self.children {
            let _ = c.wait();
        }
        self.children.clear();
        self.stats.ended.fetch_add(ended, Ordering::Relaxed);
        self.stats.running.store(0, Ordering::Relaxed);
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

    /// Live (not zombie) processes of a process group, from /proc.
    fn live_in_group(pgid: i32) -> usize {
        std::fs::read_dir("/proc")
            .unwrap()
            .filter_map(|e| std::fs::read_to_string(e.ok()?.path().join("stat")).ok())
            .filter(|stat| {
                // pid (comm) state ppid pgrp ...: fields after the last ')'.
                let rest: Vec<&str> = stat
                    .rsplit_once(')')
                    .map_or("", |r| r.1)
                    .split_whitespace()
                    .collect();
                rest.len() > 2 && rest[2] == pgid.to_string() && rest[0] != "Z"
            })
            .count()
    }

    #[test]
    fn finish_ends_commands_still_running_and_what_they_started() {
        let dir = tempfile::tempdir().unwrap();
        let pids = dir.path().join("pids");
        let e = Executor::new(
            format!("echo $$ >> {}; sleep 30 & sleep 30", pids.display()),
            ExecOutput::Discard,
        );
        e.run(&det("left"));
        let read = || std::fs::read_to_string(&pids).unwrap_or_default();
        wait_for("the command to start", || !read().trim().is_empty());
        let pgid: i32 = read().trim().parse().unwrap();
        wait_for("both sleeps", || live_in_group(pgid) == 3);
        let stats = e.stats.clone();
        let t = Instant::now();
        let summary = e.finish();
        assert!(
            t.elapsed() < FINISH_GRACE + Duration::from_secs(1),
            "{:?}",
            t.elapsed()
        );
        assert_eq!(stats.ended.load(Ordering::Relaxed), 1, "{summary}");
        wait_for("the group to be gone", || live_in_group(pgid) == 0);
    }

    #[test]
    fn finish_waits_for_a_quick_command() {
        let dir = tempfile::tempdir().unwrap();
        let done = dir.path().join("done");
        let e = Executor::new(
            format!("sleep 0.3; touch {}", done.display()),
            ExecOutput::Discard,
        );
        e.run(&det("left"));
        std::thread::sleep(Duration::from_millis(50));
        let stats = e.stats.clone();
        e.finish();
        assert!(done.exists(), "the command was not waited for");
        assert_eq!(stats.ended.load(Ordering::Relaxed), 0);
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
