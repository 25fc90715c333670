//! The measuring scripts behind BENCHMARKS.md: bad arguments are one-line errors, and
//! scripts/thread-cpu reports the thread that burns the CPU.
mod common;
use common::root;
use std::process::Command;

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
