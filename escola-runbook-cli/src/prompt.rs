//! Interactive confirmation of manual steps at the terminal.

use std::io::BufRead;
use std::sync::Arc;

use escola_runbook_core::{
    ConfirmError, ConfirmRequest, Confirmation, Confirmer, Decision, Via, async_trait,
    format_duration,
};
use tokio::sync::{Mutex, mpsc};

use crate::ui::TerminalView;

/// Asks at the terminal. Lines come from one stdin reader thread, so a prompt
/// abandoned at its deadline does not swallow the next answer.
pub struct PromptConfirmer {
    operator: String,
    view: Arc<TerminalView>,
    lines: Mutex<mpsc::UnboundedReceiver<String>>,
}

impl PromptConfirmer {
    pub fn new(operator: String, view: Arc<TerminalView>) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        std::thread::spawn(move || {
            let stdin = std::io::stdin();
            for line in stdin.lock().lines() {
                match line {
                    Ok(line) => {
                        if tx.send(line).is_err() {
                            break;
                        }
                    }
                    Err(_) => break,
                }
            }
        });
        PromptConfirmer {
            operator,
            view,
            lines: Mutex::new(rx),
        }
    }
}

/// Parses an answer: a decision word, then an optional comment.
fn parse(line: &str) -> Option<(Decision, Option<String>)> {
    let line = line.trim();
    let (word, rest) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
    let decision = match word.to_lowercase().as_str() {
        "y" | "yes" | "done" => Decision::Confirmed,
        "n" | "no" => Decision::Declined,
        "skip" => Decision::Skipped,
        "abort" => Decision::Abort,
        _ => return None,
    };
    let comment = rest.trim();
    Some((decision, (!comment.is_empty()).then(|| comment.to_owned())))
}

#[async_trait]
impl Confirmer for PromptConfirmer {
    async fn confirm(&self, request: &ConfirmRequest) -> Result<Confirmation, ConfirmError> {
        let mut lines = self.lines.lock().await;
        while lines.try_recv().is_ok() {}
        let deadline = request
            .deadline
            .map(|d| {
                format!(
                    "\n  no answer within {} means {:?}",
                    format_duration(d),
                    request.default
                )
                .to_lowercase()
            })
            .unwrap_or_default();
        let instructions = request
            .instructions
            .as_ref()
            .map(|i| format!("\n  {i}"))
            .unwrap_or_default();
        let text = format!(
            "\n? [{}/{}] {}{instructions}{deadline}\n  y = done · n = not done · skip · abort (stop the run); a comment may follow, e.g. `y checked with the DBA`",
            request.phase, request.step, request.title
        );
        loop {
            self.view.suspend(|| eprint!("{text}\n> "));
            let Some(line) = lines.recv().await else {
                return Err(ConfirmError::Unavailable {
                    step: request.step.clone(),
                    reason: "standard input is closed; pass --yes to confirm manual steps non-interactively".into(),
                });
            };
            if let Some((decision, comment)) = parse(&line) {
                return Ok(Confirmation {
                    decision,
                    who: self.operator.clone(),
                    at: chrono::Utc::now(),
                    via: Via::Prompt,
                    comment,
                });
            }
            self.view.println(&format!(
                "  `{}` is not an answer: type y, n, skip or abort",
                line.trim()
            ));
        }
    }
}

/// Asks `question` and reads one line from stdin (`None` at end of input);
/// for questions asked before any run starts.
pub async fn ask_line(question: &str) -> Option<String> {
    eprint!("{question}\n> ");
    tokio::task::spawn_blocking(|| {
        let mut line = String::new();
        match std::io::stdin().read_line(&mut line) {
            Ok(0) | Err(_) => None,
            Ok(_) => Some(line),
        }
    })
    .await
    .ok()
    .flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_and_comments() {
        assert_eq!(parse("y"), Some((Decision::Confirmed, None)));
        assert_eq!(
            parse("  Yes  checked with DBA "),
            Some((Decision::Confirmed, Some("checked with DBA".into())))
        );
        assert_eq!(
            parse("n backup missing"),
            Some((Decision::Declined, Some("backup missing".into())))
        );
        assert_eq!(parse("skip"), Some((Decision::Skipped, None)));
        assert_eq!(parse("abort"), Some((Decision::Abort, None)));
        assert_eq!(parse(""), None);
        assert_eq!(parse("maybe"), None);
    }
}
