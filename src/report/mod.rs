//! Renders plans and translations for people (text, Markdown) and machines (JSON).

pub mod json;
pub mod markdown;
pub mod text;

/// Output formats of `plan`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// For people: one block per step, a diff per object.
    Text,
    /// The machine contract documented in the README.
    Json,
    /// A pull-request comment: tables and collapsible diffs.
    Markdown,
}

/// Renders an error with its source snippet, as the CLI prints it.
pub fn diagnostic(error: &dyn miette::Diagnostic, color: bool) -> String {
    let theme = if color {
        miette::GraphicalTheme::unicode()
    } else {
        miette::GraphicalTheme::unicode_nocolor()
    };
    let mut out = String::new();
    if far_label(error) {
        miette::NarratableReportHandler::new()
            .render_report(&mut out, error)
            .expect("writing to a String cannot fail");
        return out;
    }
    miette::GraphicalReportHandler::new_themed(theme)
        .with_width(100)
        .render_report(&mut out, error)
        .expect("writing to a String cannot fail");
    out
}

/// Labels further right than this are not drawn under their line: miette pads to the column
/// with a format width, which panics beyond 65,535 (tabs and wide characters count twice or more).
const MAX_DRAWN_COLUMN: usize = 10_000;

/// Whether the error, or one related to it, points past [`MAX_DRAWN_COLUMN`] on its line.
fn far_label(error: &dyn miette::Diagnostic) -> bool {
    let own = error
        .source_code()
        .zip(error.labels())
        .is_some_and(|(source, mut labels)| {
            labels.any(|label| {
                source
                    .read_span(label.inner(), 0, 0)
                    .is_ok_and(|span| span.column() > MAX_DRAWN_COLUMN)
            })
        });
    own || error
        .related()
        .is_some_and(|mut related| related.any(far_label))
}
