//! Where a model folder may be written: the destination check that keeps training
//! from replacing anything the user made, and the staging folder beside it.
use super::{CARD_FILE, WEIGHTS_FILE};
use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};

/// Every file `--train` writes into a model folder; a folder holding anything else is
/// not a model folder, and training never replaces it.
pub const FOLDER_FILES: [&str; 7] = [
    WEIGHTS_FILE,
    CARD_FILE,
    "history.csv",
    "history.png",
    "confusion.png",
    "report.txt",
    "example.png",
];

/// Refuses, before any work, a `--model` destination whose replacement could lose
/// something the user made. Allowed: a path that does not exist yet (its parent may be
/// made), an empty folder, or a model folder (a card and only the files training
/// writes). Refused: `.`, `..` and `/`; a file or a symbolic link; a folder with other
/// contents; the training folder or a folder that holds it.
pub fn check_destination(out: &Path, data: &Path) -> Result<()> {
    let shown = out.display();
    let named = out.file_name().is_some_and(|n| n != "." && n != "..");
    if !named {
        bail!("--model {shown}: give a new folder name for the model, e.g. --model my-model");
    }
    let abs = absolute(out);
    if let Ok(data) = std::fs::canonicalize(data) {
        if data.starts_with(&abs) {
            bail!("--model {shown}: that would replace the training folder {}; give a new folder name, e.g. --model my-model", data.display());
        }
    }
    let Ok(meta) = std::fs::symlink_metadata(out) else {
        return Ok(());
    };
    if meta.file_type().is_symlink() {
        bail!("--model {shown} is a symbolic link; give the folder itself or a new name");
    }
    if !meta.is_dir() {
        bail!("--model {shown} is a file, not a model folder; give a new folder name, e.g. --model my-model");
    }
    let mut entries = Vec::new();
    for e in std::fs::read_dir(out).with_context(|| format!("--model {shown}: cannot read it"))? {
        entries.push(
            e.with_context(|| format!("--model {shown}: cannot read it"))?
                .file_name(),
        );
    }
    if entries.is_empty() {
        return Ok(());
    }
    let foreign = entries
        .iter()
        .filter(|n| !FOLDER_FILES.iter().any(|f| n.as_os_str() == *f))
        .min();
    if let Some(f) = foreign {
        bail!(
            "--model {shown} holds {}, which is not part of a model; training replaces only model folders, so give a new folder name",
            f.to_string_lossy()
        );
    }
    if !entries.iter().any(|n| n.as_os_str() == CARD_FILE) {
        bail!("--model {shown} has no {CARD_FILE}, so it is not a model folder; give a new folder name");
    }
    Ok(())
}

/// `path` made absolute, with the existing part of it resolved (links, `..`).
fn absolute(path: &Path) -> PathBuf {
    if let Ok(p) = std::fs::canonicalize(path) {
        return p;
    }
    match (path.parent(), path.file_name()) {
        (Some(parent), Some(name)) => {
            let parent = if parent.as_os_str().is_empty() {
                Path::new(".")
            } else {
                parent
            };
            absolute(parent).join(name)
        }
        _ => std::env::current_dir().unwrap_or_default().join(path),
    }
}

/// Staging folder for writing a model next to its final place.
pub fn staging_dir(dest: &Path) -> PathBuf {
    crate::util::sibling(dest, &format!(".tmp-{}", std::process::id()))
}
