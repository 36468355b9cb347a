//! What a run shows as it goes: a line per step event, and on a terminal a live line per rollout
//! being waited for (replica counts), cleared when the step ends; elsewhere a line per change.

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use meshplan::engine::Event;

/// Shows engine events on stderr.
pub struct Display {
    /// Live lines, only when stderr is a terminal.
    live: Option<MultiProgress>,
    bars: Mutex<BTreeMap<String, ProgressBar>>,
    /// Off a terminal, the last progress line printed per step, so only changes are printed.
    last: Mutex<BTreeMap<String, String>>,
}

impl Display {
    /// A display for stderr: live lines on a terminal, plain lines elsewhere (logs, CI).
    pub fn new() -> Self {
        Display {
            live: std::io::stderr().is_terminal().then(MultiProgress::new),
            bars: Mutex::default(),
            last: Mutex::default(),
        }
    }

    /// Shows one event.
    pub fn show(&self, event: Event) {
        let (id, line) = match event {
            Event::Progress(id, message) => {
                // On a terminal: one live line per running step, redrawn in place.
                if let Some(live) = &self.live {
                    let mut bars = self.bars.lock().expect("display lock");
                    let bar = bars.entry(id.clone()).or_insert_with(|| {
                        let bar = live.add(ProgressBar::new_spinner());
                        bar.set_style(
                            ProgressStyle::with_template("{spinner} {msg} ({elapsed})")
                                .expect("the template is valid"),
                        );
                        bar.enable_steady_tick(Duration::from_millis(120));
                        bar
                    });
                    bar.set_message(format!("{id}: {message}"));
                } else {
                    // In logs, a line when the progress changes (an add-on's status, a rollout's
                    // counts, what a rollback left in place), never a repeat of the last.
                    let mut last = self.last.lock().expect("display lock");
                    if last.get(&id) != Some(&message) {
                        eprintln!("  {id}: {message}");
                        last.insert(id, message);
                    }
                }
                return;
            }
            Event::Started(id) => (id.clone(), format!("▶ {id}")),
            Event::Skipped(id) => (id.clone(), format!("= {id} (already done)")),
            Event::Finished(id) => (id.clone(), format!("✓ {id}")),
            Event::Failed(id, error) => (id.clone(), format!("✗ {id}: {error}")),
            Event::Undone(id) => (id.clone(), format!("↺ {id}")),
        };
        match &self.live {
            Some(live) => {
                if let Some(bar) = self.bars.lock().expect("display lock").remove(&id) {
                    bar.finish_and_clear();
                    live.remove(&bar);
                }
                let _ = live.println(line);
            }
            None => eprintln!("{line}"),
        }
    }
}

/// Waits `wait`, saying so: on a terminal a live line counting the seconds down, elsewhere one
/// plain line (a countdown would print a line a second into logs).
pub async fn countdown(wait: Duration, what: &str) {
    if !std::io::stderr().is_terminal() {
        eprintln!("  {what} in {}s", wait.as_secs());
        tokio::time::sleep(wait).await;
        return;
    }
    let bar = ProgressBar::new_spinner();
    bar.set_style(ProgressStyle::with_template("{spinner} {msg}").expect("the template is valid"));
    let end = tokio::time::Instant::now() + wait;
    let mut second = tokio::time::interval(Duration::from_secs(1));
    loop {
        let left = end.saturating_duration_since(tokio::time::Instant::now());
        if left.is_zero() {
            break;
        }
        bar.set_message(format!("{what} in {}s", left.as_secs().max(1)));
        bar.tick();
        tokio::select! {
            _ = second.tick() => {}
            _ = tokio::time::sleep_until(end) => break,
        }
    }
    bar.finish_and_clear();
}
