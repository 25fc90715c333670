//! `listen --list-devices`: the audio inputs, the default marked.
use crate::live::capture;
use anyhow::{bail, Result};

pub fn run(json: bool) -> Result<i32> {
    let devices = capture::list_devices()?;
    if devices.is_empty() {
        bail!("no audio input devices found (is a microphone connected? --input FILE.wav runs on a recording)");
    }
    for d in devices {
        if json {
            println!("{}", serde_json::to_string(&d)?);
        } else {
            println!(
                "{}{:<12} {} ({} Hz, {} ch, {})",
                if d.is_default { "* " } else { "  " },
                d.id,
                d.name,
                d.default_rate,
                d.channels,
                d.format
            );
        }
    }
    Ok(0)
}
