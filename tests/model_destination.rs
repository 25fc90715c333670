//! `--train --model PATH` never replaces what the user made: a folder with other
//! contents, a file, the training folder, `.`, a link. Each is refused with one line,
//! before any work, and left exactly as it was.
mod common;
use common::*;
use std::path::Path;

/// A small training folder (the refusals come before any clip is read).
fn data_in(dir: &Path) -> std::path::PathBuf {
    let data = dir.join("data");
    for w in ["left", "right"] {
        std::fs::create_dir_all(data.join(w)).unwrap();
        std::fs::write(data.join(w).join("a_nohash_0.wav"), format!("clip of {w}")).unwrap();
    }
    data
}

/// Every file under `dir` with its bytes, to show nothing changed.
fn snapshot(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p.clone());
                out.push((p.display().to_string(), Vec::new()));
            } else {
                out.push((p.display().to_string(), std::fs::read(&p).unwrap()));
            }
        }
    }
    out.sort();
    out
}

fn train_into(cwd: &Path, data: &Path, model: &str) -> std::process::Output {
    std::process::Command::new(bin())
        .current_dir(cwd)
        .args([
            "--train",
            data.to_str().unwrap(),
            "--model",
            model,
            "--quiet",
        ])
        .output()
        .unwrap()
}

#[test]
fn a_folder_with_other_contents_is_refused_and_kept() {
    let d = scratch("dest-other");
    let data = data_in(&d);
    let mine = d.join("mine");
    std::fs::create_dir_all(mine.join("sub")).unwrap();
    std::fs::write(mine.join("notes.txt"), "my notes").unwrap();
    std::fs::write(mine.join("sub/more.txt"), "more").unwrap();
    // Even beside a card, a foreign file makes it not a model folder.
    std::fs::write(mine.join("model.json"), "{}").unwrap();
    let before = snapshot(&d);
    let o = train_into(&d, &data, "mine");
    assert_clean_error(&o, &["--model mine", "not part of a model"]);
    assert_eq!(
        snapshot(&d),
        before,
        "something under {} changed",
        d.display()
    );
}

#[test]
fn a_file_is_refused_and_kept() {
    let d = scratch("dest-file");
    let data = data_in(&d);
    std::fs::write(d.join("take.wav"), "RIFF my recording").unwrap();
    let before = snapshot(&d);
    let o = train_into(&d, &data, "take.wav");
    assert_clean_error(&o, &["--model take.wav", "is a file"]);
    assert_eq!(snapshot(&d), before);
}

#[test]
fn the_training_folder_and_its_parents_are_refused() {
    let d = scratch("dest-data");
    let data = data_in(&d);
    let before = snapshot(&d);
    for (model, needle) in [
        (data.to_str().unwrap(), "replace the training folder"),
        ("data", "replace the training folder"),
        (d.to_str().unwrap(), "replace the training folder"),
        (".", "give a new folder name"),
        ("data/..", "give a new folder name"),
    ] {
        let o = train_into(&d, &data, model);
        assert_clean_error(&o, &[&format!("--model {model}"), needle]);
        assert_eq!(snapshot(&d), before, "--model {model} changed something");
    }
    // Nothing was staged beside them either.
    let left: Vec<_> = std::fs::read_dir(d.parent().unwrap())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().contains(".tmp-"))
        .collect();
    assert!(left.is_empty(), "staging folders left: {left:?}");
}

#[test]
fn a_half_model_folder_and_a_link_are_refused() {
    let d = scratch("dest-half");
    let data = data_in(&d);
    // Files training writes, but no card: not a model folder.
    std::fs::create_dir_all(d.join("half")).unwrap();
    std::fs::write(d.join("half/history.csv"), "epoch\n").unwrap();
    std::os::unix::fs::symlink(d.join("half"), d.join("link")).unwrap();
    let before = snapshot(&d);
    let o = train_into(&d, &data, "half");
    assert_clean_error(&o, &["--model half", "no model.json"]);
    let o = train_into(&d, &data, "link");
    assert_clean_error(&o, &["--model link", "symbolic link"]);
    assert_eq!(snapshot(&d), before);
}
