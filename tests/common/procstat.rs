//! A process's CPU time and resident memory from /proc (Linux), for the live tests and
//! the live benchmark.

/// (utime + stime in clock ticks, VmRSS in kB) of a process; zeros once it is gone.
pub fn usage(pid: u32) -> (u64, u64) {
    let ticks =
        stat_ticks(&std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default());
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let rss = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    (ticks, rss)
}

/// CPU time per thread of a process: (thread id, thread name, utime + stime in ticks).
pub fn thread_ticks(pid: u32) -> Vec<(u32, String, u64)> {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for t in tasks.flatten() {
        let Some(tid) = t.file_name().to_str().and_then(|s| s.parse().ok()) else {
            continue;
        };
        let comm = std::fs::read_to_string(t.path().join("comm")).unwrap_or_default();
        let stat = std::fs::read_to_string(t.path().join("stat")).unwrap_or_default();
        out.push((tid, comm.trim().to_string(), stat_ticks(&stat)));
    }
    out.sort();
    out
}

/// utime + stime (clock ticks) from the text of a /proc `stat` file: the fields after
/// the ")" that closes the command name, 12th and 13th.
fn stat_ticks(stat: &str) -> u64 {
    let f: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap_or("")
        .split_whitespace()
        .collect();
    f.get(11).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0)
        + f.get(12).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0)
}
