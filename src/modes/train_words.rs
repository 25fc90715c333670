//! `listen --train-words lights,music --model my-words`: a model of new words from
//! synthetic voices ([`crate::learn::train_words`]), with its report on held-out voices.
use crate::learn::train_words::{train_words, TrainWordsOptions};
use anyhow::Result;

pub fn run(opts: &TrainWordsOptions, json: bool) -> Result<i32> {
    let stop = super::train::keep_best_on_ctrl_c();
    let out = train_words(opts, &stop)?;
    let d = &out.choice.detector;
    if json {
        println!(
            "{}",
            serde_json::json!({
                "model": opts.out.display().to_string(),
                "interrupted": out.interrupted,
                "seconds": out.seconds,
                "detector": d,
                "held_out_voices": out.choice.voices,
                "test": out.report.json(),
            })
        );
    } else {
        println!(
            "\nTest split (synthetic voices never heard in training):\n\n{}\n{}\nDetector: threshold {:.2}; on held-out voices it heard {:.1}% of the words, with {} false alarm(s) in {:.0} min of held-out talk.\nTrained on synthetic voices{}: judge it by listening (listen --model {}).",
            out.report.text(),
            out.report.confusion_text(),
            d.threshold,
            out.choice.voices.recall * 100.0,
            out.choice.talk_false_alarms,
            out.choice.talk_hours * 60.0,
            if opts.takes.is_some() { " and your takes" } else { " only" },
            opts.out.display()
        );
    }
    Ok(if out.interrupted {
        super::INTERRUPTED
    } else {
        0
    })
}
