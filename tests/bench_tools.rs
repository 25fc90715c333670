//! The measuring scripts behind BENCHMARKS.md: bad arguments are one-line errors;
//! scripts/thread-cpu reports the thread that burns the CPU; scripts/fewer-speakers keeps
//! every held-out clip and a nested share of the training speakers.
mod common;
use common::{root, scratch};
use listen::learn::dataset::{split_of, Split};
use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Command, Output};

fn thread_cpu(args: &[&str]) -> std::process::Output {
    Command::new(root().join("scripts/thread-cpu"))
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn thread_cpu_refuses_bad_arguments_in_one_line() {
    for (args, needle) in [
        (vec!["4194399"], "no running process with pid '4194399'"),
        (vec!["abc"], "no running process with pid 'abc'"),
        (vec!["1", "0"], "INTERVAL '0'"),
        (vec!["1", "x"], "INTERVAL 'x'"),
    ] {
        let o = thread_cpu(&args);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
        assert!(err.contains(needle), "{args:?}: {err}");
    }
}

#[test]
fn thread_cpu_shows_a_spinning_process_using_the_cpu() {
    // A shell loop that spins for 3.5 s, sampled every second.
    let mut busy = Command::new("bash")
        .args([
            "-c",
            "end=$((SECONDS+4)); while ((SECONDS < end)); do :; done",
        ])
        .spawn()
        .unwrap();
    let o = thread_cpu(&[&busy.id().to_string(), "1"]);
    busy.wait().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let out = String::from_utf8_lossy(&o.stdout);
    let shares: Vec<f64> = out
        .lines()
        .filter_map(|l| l.split_whitespace().nth(2))
        .filter_map(|v| v.trim_end_matches('%').parse().ok())
        .collect();
    assert!(shares.len() >= 2, "{out}");
    // On a loaded 2-core machine a spinning thread still gets well over a third of one.
    assert!(shares.iter().any(|&s| s > 40.0), "{out}");
}

fn script(name: &str, args: &[&str]) -> Output {
    Command::new(root().join("scripts").join(name))
        .args(args)
        .output()
        .unwrap()
}

fn assert_one_line(o: &Output, needle: &str) {
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains(needle), "'{needle}' missing from: {err}");
}

/// A clip folder of empty files: `yes` from 60 speakers (2 clips each) and 3 synthetic
/// ones, `other` from 10 speakers, and `few` from 6 speakers.
fn clip_folder(dir: &Path) {
    for (word, speakers) in [("yes", 60), ("other", 10), ("few", 6)] {
        std::fs::create_dir_all(dir.join(word)).unwrap();
        for s in 0..speakers {
            for n in 0..2 {
                let f = dir.join(word).join(format!("{s:08x}_nohash_{n}.wav"));
                std::fs::write(f, b"").unwrap();
            }
        }
    }
    for n in 0..3 {
        std::fs::write(dir.join(format!("yes/synth-v{n}_nohash_0.wav")), b"").unwrap();
    }
}

fn files(dir: &Path, word: &str) -> BTreeSet<String> {
    std::fs::read_dir(dir.join(word))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect()
}

#[test]
fn fewer_speakers_keeps_every_held_out_clip_and_a_nested_share_of_training_speakers() {
    let d = scratch("fewer-speakers");
    let src = d.join("src");
    clip_folder(&src);
    let (half, quarter) = (d.join("half"), d.join("quarter"));
    for (dest, share) in [(&half, "0.5"), (&quarter, "0.25")] {
        let o = script(
            "fewer-speakers",
            &[src.to_str().unwrap(), dest.to_str().unwrap(), share, "yes"],
        );
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
    let all = files(&src, "yes");
    let training = |f: &String| !f.starts_with("synth") && split_of(f, 1) == Split::Train;
    for dest in [&half, &quarter] {
        let kept = files(dest, "yes");
        // listen's own split: no validation or test clip, no synthetic clip is dropped.
        for f in all.iter().filter(|f| !training(f)) {
            assert!(kept.contains(f), "{f} left out of {}", dest.display());
        }
        assert!(kept.is_subset(&all));
        // Other folders are whole.
        assert_eq!(files(dest, "other"), files(&src, "other"));
    }
    let share = |dest: &Path| {
        let kept = files(dest, "yes");
        all.iter()
            .filter(|f| training(f) && kept.contains(*f))
            .count() as f64
            / all.iter().filter(|f| training(f)).count() as f64
    };
    assert!((0.3..=0.7).contains(&share(&half)), "{}", share(&half));
    assert!(share(&quarter) < share(&half), "{}", share(&quarter));
    assert!(files(&quarter, "yes").is_subset(&files(&half, "yes")));
}

#[test]
fn fewer_speakers_refuses_bad_arguments_in_one_line_and_writes_nothing() {
    let d = scratch("fewer-speakers-bad");
    let src = d.join("src");
    clip_folder(&src);
    let (s, dest) = (src.to_str().unwrap(), d.join("out"));
    let t = dest.to_str().unwrap();
    for (args, needle) in [
        (vec![s, t, "0.5"], "usage: scripts/fewer-speakers"),
        (
            vec![s, t, "half", "yes"],
            "SHARE must be a number in (0, 1], not half",
        ),
        (vec![s, t, "0", "yes"], "not 0"),
        (vec![s, t, "1.5", "yes"], "not 1.5"),
        (vec![s, t, "0.5", "nope"], "has no folder nope"),
        // `few` has 6 speakers: a small share would leave it split by clip.
        (vec![s, t, "0.01", "few"], "few would keep"),
        (vec![s, s, "0.5", "yes"], "exists; remove it"),
    ] {
        assert_one_line(&script("fewer-speakers", &args), needle);
        assert!(!dest.exists() && !d.join("out.part").exists(), "{args:?}");
    }
}

#[test]
fn det_points_refuses_a_folder_without_a_model_in_one_line() {
    let d = scratch("det-points-bad");
    assert_one_line(
        &script("det-points", &[d.to_str().unwrap()]),
        "has no model.json",
    );
}
