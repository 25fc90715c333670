//! Small shared helpers: a deterministic random generator (so splits, augmentation
//! and generated streams are reproducible from a seed on every machine), stable
//! hashing, and atomic file/folder writes (nothing the user made is ever half-written).
use anyhow::{Context, Result};
use std::path::{Path, PathBuf};

/// SplitMix64-seeded xoshiro256** generator: fast, deterministic across versions and platforms.
#[derive(Clone, Debug)]
pub struct Rng {
    s: [u64; 4],
}

impl Rng {
    pub fn new(seed: u64) -> Self {
        let mut x = seed;
        let mut next = || {
            x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = x;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        };
        Rng {
            s: [next(), next(), next(), next()],
        }
    }

    pub fn next_u64(&mut self) -> u64 {
        let result = self.s[1].wrapping_mul(5).rotate_left(7).wrapping_mul(9);
        let t = self.s[1] << 17;
        self.s[2] ^= self.s[0];
        self.s[3] ^= self.s[1];
        self.s[1] ^= self.s[2];
        self.s[0] ^= self.s[3];
        self.s[2] ^= t;
        self.s[3] = self.s[3].rotate_left(45);
        result
    }

    /// Uniform in [0, 1).
    pub fn f32(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 / (1u64 << 24) as f32
    }

    /// Uniform in [lo, hi).
    pub fn range(&mut self, lo: f32, hi: f32) -> f32 {
        lo + (hi - lo) * self.f32()
    }

    /// Uniform integer in [0, n); n must be > 0.
    pub fn below(&mut self, n: usize) -> usize {
        ((self.next_u64() >> 11) as f64 / (1u64 << 53) as f64 * n as f64) as usize % n.max(1)
    }

    /// Standard normal (Box-Muller).
    pub fn normal(&mut self) -> f32 {
        let u1 = self.f32().max(1e-7);
        let u2 = self.f32();
        (-2.0 * u1.ln()).sqrt() * (2.0 * std::f32::consts::PI * u2).cos()
    }

    pub fn shuffle<T>(&mut self, v: &mut [T]) {
        for i in (1..v.len()).rev() {
            let j = self.below(i + 1);
            v.swap(i, j);
        }
    }
}

/// FNV-1a 64-bit: a stable hash (unlike std's, which may change between Rust versions).
pub fn stable_hash(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= b as u64;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    // final avalanche so that similar names spread over the whole range
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h
}

/// A sibling path of `path` with a suffix, e.g. `model` -> `model.tmp-1234`.
pub fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_default();
    name.push(suffix);
    path.with_file_name(name)
}

/// The first of `path-2`, `path-3`, ... that does not exist.
pub fn free_name(path: &Path) -> PathBuf {
    (2..)
        .map(|n| sibling(path, &format!("-{n}")))
        .find(|p| std::fs::symlink_metadata(p).is_err())
        .expect("some number is free")
}

/// Writes a file atomically: to a temporary sibling first, then renamed over `path`.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = sibling(path, &format!(".tmp-{}", std::process::id()));
    std::fs::write(&tmp, bytes).with_context(|| format!("cannot write {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("cannot replace {}", path.display()))
}

/// Removes `<dest>.tmp-<pid>` / `<dest>.old-<pid>` siblings left behind by a process
/// that was killed (SIGKILL, power loss) before it could clean up. Siblings of live
/// processes are left alone: another `listen` may be writing them right now.
pub fn remove_stale_siblings(dest: &Path) {
    let (Some(name), Some(parent)) = (dest.file_name(), dest.parent()) else {
        return;
    };
    let parent = if parent.as_os_str().is_empty() {
        Path::new(".")
    } else {
        parent
    };
    let name = name.to_string_lossy();
    let Ok(entries) = std::fs::read_dir(parent) else {
        return;
    };
    for e in entries.flatten() {
        let file = e.file_name();
        let file = file.to_string_lossy();
        let Some(rest) = file.strip_prefix(name.as_ref()) else {
            continue;
        };
        let pid = rest
            .strip_prefix(".tmp-")
            .or_else(|| rest.strip_prefix(".old-"))
            .and_then(|p| p.parse::<i32>().ok());
        if pid.is_some_and(|p| p > 0 && !process_alive(p)) {
            let path = e.path();
            let _ = if path.is_dir() {
                std::fs::remove_dir_all(&path)
            } else {
                std::fs::remove_file(&path)
            };
        }
    }
}

fn process_alive(pid: i32) -> bool {
    if pid == std::process::id() as i32 {
        return true;
    }
    // SAFETY: signal 0 only checks that the process exists; nothing is sent.
    let rc = unsafe { libc::kill(pid, 0) };
    rc == 0 || std::io::Error::last_os_error().raw_os_error() != Some(libc::ESRCH)
}

/// Flushes every file in `dir`, and the folder itself, to disk, so that a power loss
/// after the rename cannot leave a model folder of empty files.
pub fn sync_dir(dir: &Path) -> Result<()> {
    for e in std::fs::read_dir(dir).with_context(|| format!("cannot read {}", dir.display()))? {
        let path = e?.path();
        if path.is_file() {
            std::fs::File::open(&path)
                .and_then(|f| f.sync_all())
                .with_context(|| format!("cannot flush {}", path.display()))?;
        }
    }
    std::fs::File::open(dir)
        .and_then(|f| f.sync_all())
        .with_context(|| format!("cannot flush {}", dir.display()))
}

/// Replaces the folder `dest` with the finished folder `staged` in one atomic step
/// (Linux renameat2 RENAME_EXCHANGE), so that `dest` is always either the old complete
/// folder or the new complete one, whatever happens in between.
pub fn replace_dir_atomic(staged: &Path, dest: &Path) -> Result<()> {
    if !dest.exists() {
        return std::fs::rename(staged, dest)
            .with_context(|| format!("cannot move {} to {}", staged.display(), dest.display()));
    }
    #[cfg(target_os = "linux")]
    {
        use std::ffi::CString;
        use std::os::unix::ffi::OsStrExt;
        let a = CString::new(staged.as_os_str().as_bytes())?;
        let b = CString::new(dest.as_os_str().as_bytes())?;
        // SAFETY: both are valid NUL-terminated paths; AT_FDCWD resolves them relative to cwd.
        let rc = unsafe {
            libc::renameat2(
                libc::AT_FDCWD,
                a.as_ptr(),
                libc::AT_FDCWD,
                b.as_ptr(),
                libc::RENAME_EXCHANGE,
            )
        };
        if rc == 0 {
            // `staged` now holds the old folder.
            let _ = std::fs::remove_dir_all(staged);
            return Ok(());
        }
    }
    // Fallback: move the old one aside, move the new one in, drop the old one.
    let old = sibling(dest, &format!(".old-{}", std::process::id()));
    std::fs::rename(dest, &old).with_context(|| format!("cannot move aside {}", dest.display()))?;
    std::fs::rename(staged, dest)
        .with_context(|| format!("cannot move {} to {}", staged.display(), dest.display()))?;
    let _ = std::fs::remove_dir_all(&old);
    Ok(())
}

/// Median of a slice (0 for an empty one).
pub fn median(v: &[f64]) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    let mut s = v.to_vec();
    s.sort_by(|a, b| a.total_cmp(b));
    let n = s.len();
    if n % 2 == 1 {
        s[n / 2]
    } else {
        (s[n / 2 - 1] + s[n / 2]) / 2.0
    }
}

/// Silences the process's stderr (fd 2) while alive. Sound libraries (ALSA's plugins,
/// libjack) print diagnostics straight to fd 2 while devices are enumerated and opened;
/// `listen` reports device problems itself, in one line. Only use it around such calls,
/// before other threads print.
pub struct QuietStderr {
    saved: Option<std::os::fd::OwnedFd>,
}

impl QuietStderr {
    pub fn new() -> QuietStderr {
        use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
        // SAFETY: plain fd syscalls; `dup` gives us a fresh fd we own.
        let saved = unsafe {
            let fd = libc::dup(2);
            (fd >= 0).then(|| OwnedFd::from_raw_fd(fd))
        };
        if saved.is_some() {
            if let Ok(null) = std::fs::OpenOptions::new().write(true).open("/dev/null") {
                // SAFETY: both fds are valid and open.
                unsafe { libc::dup2(null.as_raw_fd(), 2) };
            }
        }
        QuietStderr { saved }
    }
}

impl Default for QuietStderr {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for QuietStderr {
    fn drop(&mut self) {
        use std::os::fd::AsRawFd;
        if let Some(fd) = &self.saved {
            // SAFETY: `fd` is our duplicate of the original stderr.
            unsafe { libc::dup2(fd.as_raw_fd(), 2) };
        }
    }
}

/// Replaces the text between `<!-- NAME:begin -->` and `<!-- NAME:end -->` in a document
/// (appending the section if the markers are missing), atomically. Benchmarks use it to
/// rewrite their own part of BENCHMARKS.md.
pub fn replace_section(path: &Path, name: &str, body: &str) -> Result<()> {
    let (b, e) = (
        format!("<!-- {name}:begin -->"),
        format!("<!-- {name}:end -->"),
    );
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let new = match (text.find(&b), text.find(&e)) {
        (Some(i), Some(j)) if i < j => format!("{}{b}\n{body}{}", &text[..i], &text[j..]),
        _ => format!("{text}\n{b}\n{body}{e}\n"),
    };
    write_atomic(path, new.as_bytes())
}

/// The machine in words (CPU, cores, memory), for benchmark reports.
pub fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split(':').nth(1))
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    let mem_gb = std::fs::read_to_string("/proc/meminfo")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("MemTotal"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse::<f64>().ok())
        .map(|kb| kb / 1024.0 / 1024.0)
        .unwrap_or(0.0);
    format!("{cpu}, {cores} cores, {mem_gb:.0} GiB, no GPU")
}

/// The error for a path that should be a folder and is not: a file, or nothing.
/// `expected` says what the folder should hold.
pub fn not_a_folder(path: &std::path::Path, expected: &str) -> anyhow::Error {
    if path.exists() {
        anyhow::anyhow!("{} is a file, not a folder ({expected})", path.display())
    } else {
        anyhow::anyhow!("{}: no such folder ({expected})", path.display())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rng_is_deterministic_and_uniform() {
        let mut a = Rng::new(7);
        let mut b = Rng::new(7);
        let xs: Vec<f32> = (0..10_000).map(|_| a.f32()).collect();
        let ys: Vec<f32> = (0..10_000).map(|_| b.f32()).collect();
        assert_eq!(xs, ys);
        let mean = xs.iter().sum::<f32>() / xs.len() as f32;
        assert!((mean - 0.5).abs() < 0.02, "mean {mean}");
        assert!(xs.iter().all(|&x| (0.0..1.0).contains(&x)));
        let mut c = Rng::new(8);
        assert_ne!(xs[0], c.f32());
    }

    #[test]
    fn below_stays_in_range() {
        let mut r = Rng::new(1);
        let mut seen = [0usize; 5];
        for _ in 0..5000 {
            seen[r.below(5)] += 1;
        }
        assert!(seen.iter().all(|&n| n > 800), "{seen:?}");
    }

    #[test]
    fn stable_hash_is_fixed() {
        // Pinned values: a change here would silently reshuffle every user's split.
        assert_eq!(stable_hash(b"0a7c2a8d"), 0x7c75_6216_c96a_70b5);
        assert_eq!(stable_hash(b""), 0xecba_3df2_c338_3c52);
        assert_ne!(stable_hash(b"0a7c2a8d"), stable_hash(b"0a7c2a8e"));
    }

    #[test]
    fn stale_siblings_of_dead_processes_are_removed() {
        let tmp = tempfile::tempdir().unwrap();
        let dest = tmp.path().join("model");
        let me = std::process::id();
        // A pid far above pid_max is never alive.
        for n in [
            "model.tmp-999999999".to_string(),
            "model.old-999999999".into(),
            format!("model.tmp-{me}"),
            "model.tmp-abc".into(),
            "other.tmp-999999999".into(),
        ] {
            std::fs::create_dir(tmp.path().join(&n)).unwrap();
        }
        remove_stale_siblings(&dest);
        let mut left: Vec<String> = std::fs::read_dir(tmp.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        let mut want = [
            "model.tmp-abc".to_string(),
            format!("model.tmp-{me}"),
            "other.tmp-999999999".into(),
        ];
        want.sort();
        assert_eq!(left, want);
    }

    #[test]
    fn replace_dir_swaps_whole_folders() {
        let tmp = tempfile::tempdir().unwrap();
        let dest = tmp.path().join("model");
        let staged = tmp.path().join("model.new");
        std::fs::create_dir(&dest).unwrap();
        std::fs::write(dest.join("a"), "old").unwrap();
        std::fs::create_dir(&staged).unwrap();
        std::fs::write(staged.join("a"), "new").unwrap();
        replace_dir_atomic(&staged, &dest).unwrap();
        assert_eq!(std::fs::read_to_string(dest.join("a")).unwrap(), "new");
        assert!(!staged.exists());
    }
}
