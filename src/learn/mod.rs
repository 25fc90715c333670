//! Learning: labelled clips to a model folder. [`dataset`] scans folders and splits
//! by speaker; [`speech`] and [`negatives`] bring running speech that is not a command
//! ([`speech_bank`]: embedded once, for models on the speech embedding;
//! [`shipped_negatives`]: such a bank built into listen, for users without speech);
//! [`voices`] say words nobody recorded (synthetic speakers for `--train-words`);
//! [`augment`] varies every draw; [`train`] fits the network in named steps and hands
//! the model folder on, with its [`report`] (confusion, per-label scores) and [`plots`].
pub mod augment;
pub mod cache;
pub mod dataset;
pub mod negatives;
pub mod plots;
pub mod report;
pub mod shipped_negatives;
pub mod speech;
pub mod speech_bank;
pub mod train;
pub mod train_words;
pub mod voices;
