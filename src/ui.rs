//! The live terminal display (crossterm): device and rate, an input level meter, a bar
//! per keyword with its smoothed score and the threshold marked, the last detections,
//! overruns, --exec counts. `q`, Esc or Ctrl-C quits; the terminal is restored on every exit path.
use crate::listen::LiveStatus;
use anyhow::Result;
use crossterm::event::{self, Event, KeyCode, KeyEventKind, KeyModifiers};
use crossterm::{cursor, execute, queue, style, terminal};
use std::io::Write;
use std::sync::atomic::Ordering;
use std::time::Duration;

/// Puts the terminal in raw mode on an alternate screen; restores it when dropped
/// (also on errors and panics unwinding through it).
pub struct TerminalGuard;

impl TerminalGuard {
    pub fn enter() -> Result<TerminalGuard> {
        terminal::enable_raw_mode()?;
        let g = TerminalGuard;
        execute!(
            std::io::stdout(),
            terminal::EnterAlternateScreen,
            cursor::Hide
        )?;
        Ok(g)
    }
}

impl Drop for TerminalGuard {
    fn drop(&mut self) {
        let _ = execute!(
            std::io::stdout(),
            cursor::Show,
            terminal::LeaveAlternateScreen
        );
        let _ = terminal::disable_raw_mode();
    }
}

/// True when the user asked to quit (q, Esc, Ctrl-C). Never blocks.
pub fn quit_requested() -> Result<bool> {
    while event::poll(Duration::ZERO)? {
        if let Event::Key(k) = event::read()? {
            if k.kind == KeyEventKind::Release {
                continue;
            }
            match k.code {
                KeyCode::Char('q') | KeyCode::Esc => return Ok(true),
                KeyCode::Char('c') if k.modifiers.contains(KeyModifiers::CONTROL) => {
                    return Ok(true)
                }
                _ => {}
            }
        }
    }
    Ok(false)
}

fn bar(value: f32, width: usize, mark: Option<f32>) -> String {
    let filled = ((value.clamp(0.0, 1.0)) * width as f32).round() as usize;
    let m = mark.map(|t| ((t.clamp(0.0, 1.0)) * width as f32).round() as usize);
    (0..width)
        .map(|i| {
            if Some(i) == m {
                '|'
            } else if i < filled {
                '#'
            } else {
                '.'
            }
        })
        .collect()
}

/// Draws one frame of the display.
pub fn draw(s: &LiveStatus, exec: Option<&crate::exec::ExecStats>) -> Result<()> {
    let mut out = std::io::stdout();
    let card = &s.engine.model().card;
    let det = s.engine.detector();
    let threshold = det.config().threshold;
    let mut lines: Vec<String> = Vec::new();
    lines.push(format!(
        "listen - {} labels - q, Esc or Ctrl-C quits",
        card.labels.len()
    ));
    lines.push(format!(
        "device: {} - {} ({} Hz, {} ch, {})",
        s.capture.id, s.capture.name, s.capture.rate, s.capture.channels, s.capture.format
    ));
    let level = s.engine.level();
    let db = 20.0 * level.max(1e-5).log10();
    lines.push(format!(
        "level   [{}] {:>6.1} dBFS",
        bar((db + 60.0) / 60.0, 40, None),
        db
    ));
    let over = s.capture.stats.overruns.load(Ordering::Relaxed);
    lines.push(if over == 0 {
        "overruns: 0".to_string()
    } else {
        format!(
            "overruns: {over} ({:.2} s of audio dropped: the machine is too slow)",
            crate::listen::dropped_secs(s.capture)
        )
    });
    if let Some(e) = exec {
        lines.push(format!("--exec: {}", e.summary()));
    }
    lines.push(String::new());
    let sm = det.smoothed();
    for (i, l) in card.labels.iter().enumerate() {
        if card.is_command(i) {
            lines.push(format!(
                "{l:>10} [{}] {:.2}",
                bar(sm.get(i).copied().unwrap_or(0.0), 40, Some(threshold)),
                sm.get(i).copied().unwrap_or(0.0)
            ));
        }
    }
    lines.push(format!("{:>10}  threshold {threshold:.2} marked |", ""));
    lines.push(String::new());
    lines.push("last detections:".to_string());
    for d in s.recent.iter().rev() {
        lines.push(format!("  {}", crate::listen::text_line(d)));
    }
    queue!(
        out,
        cursor::MoveTo(0, 0),
        terminal::Clear(terminal::ClearType::All)
    )?;
    for (row, l) in lines.iter().enumerate() {
        queue!(out, cursor::MoveTo(0, row as u16), style::Print(l))?;
    }
    out.flush()?;
    Ok(())
}
