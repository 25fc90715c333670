//! Builds the negatives bank built into listen (`assets/negatives/speech-bank.bin`,
//! see `listen::learn::shipped_negatives`) from a speech folder as `scripts/negatives`
//! makes it. Not a benchmark: a build step that needs the shared speech, run by
//! `scripts/negatives-bank`.
//!
//!     cargo bench --bench negatives_bank -- SPEECH_DIR [OUT]
use listen::learn::shipped_negatives;
use std::path::PathBuf;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    let dir = PathBuf::from(args.first().map_or("data/negatives", |s| s.as_str()));
    let out = PathBuf::from(
        args.get(1)
            .map_or("assets/negatives/speech-bank.bin", |s| s.as_str()),
    );
    let pb = indicatif::ProgressBar::new(0);
    let s = shipped_negatives::build(&dir, &out, &pb)?;
    pb.finish_and_clear();
    eprintln!(
        "negatives bank: {:.2} h ({}) -> {} ({:.1} MB)",
        s.hours(),
        s.kinds
            .iter()
            .map(|(k, v)| format!("{k} {:.0} min", v / 60.0))
            .collect::<Vec<_>>()
            .join(", "),
        out.display(),
        std::fs::metadata(&out)?.len() as f64 / 1e6
    );
    Ok(())
}
