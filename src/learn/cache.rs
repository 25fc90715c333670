//! Frozen work kept on disk between training runs: a speech bank (the training speech
//! through the frozen front end) is the same for the same front end, settings and
//! audio, so it is stored under a key made of all three and read back in seconds.
//! A file is trusted only whole: its magic, key, lengths and checksum must all agree,
//! or it is rebuilt. Written beside itself and renamed, so a crash or a full disk
//! leaves nothing half-written to be read later.
use crate::util::stable_hash;
use std::io::Write;
use std::path::{Path, PathBuf};

const MAGIC: &[u8; 8] = b"LSNBANK1";

/// Where caches live: `LISTEN_CACHE_DIR`, else `$XDG_CACHE_HOME/listen`, else
/// `~/.cache/listen`; None when none of these is set.
pub fn dir() -> Option<PathBuf> {
    let var = |k: &str| {
        std::env::var_os(k)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    var("LISTEN_CACHE_DIR")
        .or_else(|| var("XDG_CACHE_HOME").map(|d| d.join("listen")))
        .or_else(|| var("HOME").map(|d| d.join(".cache/listen")))
}

/// A key over everything that made a piece of work: each part hashed in turn.
pub struct Key(u64);

impl Key {
    pub fn new() -> Key {
        Key(0x6c69_7374_656e)
    }

    pub fn add(&mut self, bytes: &[u8]) -> &mut Key {
        let mut b = self.0.to_le_bytes().to_vec();
        b.extend_from_slice(&(bytes.len() as u64).to_le_bytes());
        b.extend_from_slice(bytes);
        self.0 = stable_hash(&b);
        self
    }

    /// A file as the key sees it: its path, size and modification time.
    pub fn add_file(&mut self, path: &Path) -> &mut Key {
        let meta = std::fs::metadata(path).ok();
        let size = meta.as_ref().map_or(0, |m| m.len());
        let mtime = meta
            .and_then(|m| m.modified().ok())
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_nanos());
        self.add(path.to_string_lossy().as_bytes());
        self.add(&size.to_le_bytes());
        self.add(&mtime.to_le_bytes())
    }

    pub fn value(&self) -> u64 {
        self.0
    }
}

impl Default for Key {
    fn default() -> Self {
        Key::new()
    }
}

/// Sections of numbers stored under one key.
pub struct Stored {
    pub header: Vec<f64>,
    pub ints: Vec<u32>,
    pub floats: Vec<f32>,
}

/// Reads `path` if it holds exactly what `key` made; None otherwise (absent, stale,
/// truncated, damaged).
pub fn read(path: &Path, key: u64) -> Option<Stored> {
    let bytes = std::fs::read(path).ok()?;
    if bytes.len() < 48 || &bytes[..8] != MAGIC {
        return None;
    }
    let (body, sum) = bytes.split_at(bytes.len() - 8);
    if stable_hash(body).to_le_bytes() != sum {
        return None;
    }
    let u64_at = |o: usize| u64::from_le_bytes(bytes[o..o + 8].try_into().expect("8 bytes"));
    if u64_at(8) != key {
        return None;
    }
    let (nh, ni, nf) = (
        u64_at(16) as usize,
        u64_at(24) as usize,
        u64_at(32) as usize,
    );
    let want = 40usize
        .checked_add(nh.checked_mul(8)?)?
        .checked_add(ni.checked_mul(4)?)?
        .checked_add(nf.checked_mul(4)?)?;
    if body.len() != want {
        return None;
    }
    let mut at = 40;
    let mut take = |n: usize| {
        let s = &body[at..at + n];
        at += n;
        s
    };
    let header = take(nh * 8)
        .chunks_exact(8)
        .map(|c| f64::from_le_bytes(c.try_into().expect("8 bytes")))
        .collect();
    let ints = take(ni * 4)
        .chunks_exact(4)
        .map(|c| u32::from_le_bytes(c.try_into().expect("4 bytes")))
        .collect();
    let floats = take(nf * 4)
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes(c.try_into().expect("4 bytes")))
        .collect();
    Some(Stored {
        header,
        ints,
        floats,
    })
}

/// Writes `stored` under `key` to `path`, whole or not at all.
pub fn write(path: &Path, key: u64, stored: &Stored) -> std::io::Result<()> {
    let mut b = Vec::with_capacity(48 + stored.floats.len() * 4 + stored.ints.len() * 4);
    b.extend_from_slice(MAGIC);
    for v in [
        key,
        stored.header.len() as u64,
        stored.ints.len() as u64,
        stored.floats.len() as u64,
    ] {
        b.extend_from_slice(&v.to_le_bytes());
    }
    stored
        .header
        .iter()
        .for_each(|v| b.extend_from_slice(&v.to_le_bytes()));
    stored
        .ints
        .iter()
        .for_each(|v| b.extend_from_slice(&v.to_le_bytes()));
    stored
        .floats
        .iter()
        .for_each(|v| b.extend_from_slice(&v.to_le_bytes()));
    let sum = stable_hash(&b);
    b.extend_from_slice(&sum.to_le_bytes());
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let tmp = crate::util::sibling(path, &format!(".tmp-{}", std::process::id()));
    let written = std::fs::File::create(&tmp).and_then(|mut f| {
        f.write_all(&b)?;
        f.sync_all()
    });
    match written.and_then(|_| std::fs::rename(&tmp, path)) {
        Ok(()) => Ok(()),
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            Err(e)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Stored {
        Stored {
            header: vec![1.5, 2.0],
            ints: vec![3, 4, 5],
            floats: vec![0.25; 10],
        }
    }

    #[test]
    fn what_is_written_is_read_back_only_under_its_key_and_only_whole() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("sub/bank.bin");
        write(&p, 7, &sample()).unwrap();
        let s = read(&p, 7).unwrap();
        assert_eq!(
            (s.header, s.ints, s.floats),
            (sample().header, sample().ints, sample().floats)
        );
        assert!(
            read(&p, 8).is_none(),
            "another key is another piece of work"
        );
        let bytes = std::fs::read(&p).unwrap();
        // Truncated anywhere, or one byte changed: never read as valid.
        for cut in [0, 7, 47, bytes.len() - 1] {
            std::fs::write(&p, &bytes[..cut]).unwrap();
            assert!(read(&p, 7).is_none(), "cut at {cut}");
        }
        for at in [9, 20, 60, bytes.len() - 3] {
            let mut b = bytes.clone();
            b[at] ^= 1;
            std::fs::write(&p, &b).unwrap();
            assert!(read(&p, 7).is_none(), "byte {at} flipped");
        }
        // No temporary file is left beside it.
        let left: Vec<_> = std::fs::read_dir(p.parent().unwrap()).unwrap().collect();
        assert_eq!(left.len(), 1);
    }

    #[test]
    fn a_failed_write_leaves_nothing_behind() {
        let d = tempfile::tempdir().unwrap();
        // The destination is a folder: the rename fails after the data was written.
        let p = d.path().join("bank.bin");
        std::fs::create_dir(&p).unwrap();
        std::fs::write(p.join("x"), "x").unwrap();
        assert!(write(&p, 1, &sample()).is_err());
        let names: Vec<String> = std::fs::read_dir(d.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["bank.bin"]);
    }

    #[test]
    fn keys_depend_on_every_part_and_its_order() {
        let k = |parts: &[&[u8]]| {
            let mut k = Key::new();
            parts.iter().for_each(|p| {
                k.add(p);
            });
            k.value()
        };
        assert_ne!(k(&[b"a", b"b"]), k(&[b"b", b"a"]));
        assert_ne!(k(&[b"ab"]), k(&[b"a", b"b"]));
        assert_eq!(k(&[b"a", b"b"]), k(&[b"a", b"b"]));
    }
}
