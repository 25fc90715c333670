//! `listen --record WORD --into DIR`: your own clips of a word from the microphone.
use crate::live::capture;
use crate::live::record::{self, RecordOptions};
use anyhow::Result;

pub fn run(opts: &RecordOptions, device: Option<&str>, json: bool) -> Result<i32> {
    // Names first: a bad word should not wait for the device.
    opts.check()?;
    let cap = capture::open(device, 5.0)?;
    let stop = super::stop_on_ctrl_c();
    let done = record::record(opts, cap, &stop)?;
    eprintln!(
        "{}saved {} clip(s) of '{}' in {} ({} take(s) refused){}",
        if done.interrupted {
            "\nStopped: "
        } else {
            "Done: "
        },
        done.saved.len(),
        opts.word,
        opts.into.join(&opts.word).display(),
        done.refused,
        if done.saved.is_empty() {
            String::new()
        } else {
            format!(
                ". Next: listen --train {} --from (fine-tunes the bundled model with your words)",
                opts.into.display()
            )
        }
    );
    if json {
        println!(
            "{}",
            serde_json::json!({
                "word": opts.word,
                "saved": done.saved.iter().map(|p| p.display().to_string()).collect::<Vec<_>>(),
                "room": done.room.map(|p| p.display().to_string()),
                "refused": done.refused,
                "interrupted": done.interrupted,
            })
        );
    }
    Ok(if done.interrupted {
        super::INTERRUPTED
    } else {
        0
    })
}
