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
    miette::GraphicalReportHandler::new_themed(theme)
        .with_width(100)
        .render_report(&mut out, error)
        .expect("writing to a String cannot fail");
    out
}
