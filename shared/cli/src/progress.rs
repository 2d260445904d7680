//! Progress on a terminal (nothing when the output is not one).

/// A bar over the boards on a terminal (nothing otherwise).
pub fn progress_bar() -> indicatif::ProgressBar {
    progress_bar_of("boards")
}

/// A bar over `unit` (boards, lines) on a terminal (nothing otherwise).
pub fn progress_bar_of(unit: &str) -> indicatif::ProgressBar {
    use std::io::IsTerminal;
    if !std::io::stderr().is_terminal() {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(0);
    if let Ok(style) = indicatif::ProgressStyle::with_template(&format!(
        "[{{elapsed_precise}}] {{bar:30}} {{pos}}/{{len}} {unit}"
    )) {
        bar.set_style(style);
    }
    bar
}

/// A spinner on a terminal (nothing otherwise) while a long call runs.
pub fn spinner(message: &'static str) -> indicatif::ProgressBar {
    use std::io::IsTerminal;
    if !std::io::stderr().is_terminal() {
        return indicatif::ProgressBar::hidden();
    }
    let spinner = indicatif::ProgressBar::new_spinner().with_message(message);
    spinner.enable_steady_tick(std::time::Duration::from_millis(120));
    spinner
}
