//! The run's decision file: approvals written by other processes (the
//! `approve` command, later a web console) beside the run's journal, never
//! into it. Each decision is one line under `PIPE_BUF` appended with one
//! `write` on a file opened `O_APPEND`, so concurrent writers never tear or
//! overwrite each other's lines; the waiting run polls the file and copies
//! the decision it accepts into its own journal.
//!
//! Who may decide is one rule ([`eligible`]), asked by whoever writes a
//! decision and asked again by the run when it reads one.

use std::fs::OpenOptions;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::approval::{ApprovalDecision, ApprovalRequest};
use crate::event::Verdict;
use crate::model::Metadata;
use crate::record::RunRecord;

/// The decision file's name inside a run directory.
pub const DECISIONS_FILE: &str = "decisions.jsonl";

/// How often a waiting run reads the decision file: a decision reaches it
/// well within 2 s.
pub const DECISION_POLL: Duration = Duration::from_millis(500);

/// The longest decision line: POSIX `PIPE_BUF`, the size below which an
/// append is one indivisible write.
pub const MAX_DECISION_LINE: usize = 4096;

/// Why a decision could not be written or read.
#[derive(Debug, thiserror::Error)]
pub enum DecisionError {
    /// The decision file could not be opened, written or read.
    #[error("cannot {action} the decision file {}: {source}", path.display())]
    Io {
        /// What was being done ("append to", "read").
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// The decision is too long to append in one indivisible write.
    #[error(
        "the decision is {len} bytes written out, more than the {MAX_DECISION_LINE} one line may hold; shorten the comment"
    )]
    TooLong {
        /// Its length as a line.
        len: usize,
    },
}

/// Appends `decision` to the decision file of the run in `run_dir`, as one
/// line in one write, and waits until it is on disk.
pub fn append_decision(run_dir: &Path, decision: &ApprovalDecision) -> Result<(), DecisionError> {
    let path = run_dir.join(DECISIONS_FILE);
    let io = |source| DecisionError::Io {
        action: "append to",
        path: path.clone(),
        source,
    };
    let mut line = serde_json::to_vec(decision).map_err(|e| io(std::io::Error::other(e)))?;
    line.push(b'\n');
    if line.len() > MAX_DECISION_LINE {
        return Err(DecisionError::TooLong { len: line.len() });
    }
    let mut options = OpenOptions::new();
    options.append(true).create(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(&path).map_err(io)?;
    // One write: a second one could interleave with another writer's line.
    let written = file.write(&line).map_err(io)?;
    if written != line.len() {
        return Err(io(std::io::Error::new(
            std::io::ErrorKind::WriteZero,
            format!("only {written} of {} bytes were written", line.len()),
        )));
    }
    file.sync_data().map_err(io)
}

/// The decisions recorded for the run in `run_dir`, oldest first (none
/// when the file does not exist). A line that is not a decision (edited by
/// hand, or cut by a full disk) is left out: it could not be accepted.
pub fn read_decisions(run_dir: &Path) -> Result<Vec<ApprovalDecision>, DecisionError> {
    let path = run_dir.join(DECISIONS_FILE);
    let io = |source| DecisionError::Io {
        action: "read",
        path: path.clone(),
        source,
    };
    let file = match std::fs::File::open(&path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io(e)),
    };
    let mut decisions = Vec::new();
    for line in BufReader::new(file).split(b'\n') {
        if let Ok(decision) = serde_json::from_slice(&line.map_err(io)?) {
            decisions.push(decision);
        }
    }
    Ok(decisions)
}

/// Why a decision is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// The name is not one of the runbook's approvers.
    #[error(
        "`{name}` is not an approver of this runbook; its approvers are: {}",
        list(known)
    )]
    UnknownApprover {
        /// The name given.
        name: String,
        /// The approvers' names.
        known: Vec<String>,
    },
    /// The approver does not hold the role the step requires.
    #[error(
        "`{name}` does not hold role `{role}`, which step `{step}` requires; it may be approved by: {}",
        list(holders)
    )]
    LacksRole {
        /// The approver.
        name: String,
        /// The step.
        step: String,
        /// The role required.
        role: String,
        /// Who holds it (the operator left out).
        holders: Vec<String>,
    },
    /// The approver is the run's operator: nobody approves their own run.
    #[error(
        "`{name}` is the operator of this run and cannot approve its steps; it may be approved by: {}",
        list(holders)
    )]
    Operator {
        /// The approver (and operator).
        name: String,
        /// Who else holds the role.
        holders: Vec<String>,
    },
    /// The run has no such step.
    #[error("run {run_id} has no step `{step}`")]
    UnknownStep {
        /// The run.
        run_id: String,
        /// The step asked.
        step: String,
    },
    /// The step is not waiting for an approval.
    #[error("step `{step}` of run {run_id} is not waiting for an approval{}", waiting.as_ref().map(|w| format!(" (step `{w}` is)")).unwrap_or_default())]
    NotWaiting {
        /// The run.
        run_id: String,
        /// The step asked.
        step: String,
        /// The step that waits, if one does.
        waiting: Option<String>,
    },
    /// The run has ended.
    #[error("run {run_id} has finished ({}); a decision can no longer change it", verdict.label())]
    Finished {
        /// The run.
        run_id: String,
        /// How it ended.
        verdict: Verdict,
    },
}

fn list(names: &[String]) -> String {
    if names.is_empty() {
        "nobody".into()
    } else {
        names.join(", ")
    }
}

/// Whether `approver` may decide a step requiring `role` in a run by
/// `operator`: one of the runbook's approvers, holding the role, and not
/// the operator.
pub fn eligible(
    metadata: &Metadata,
    operator: &str,
    step: &str,
    role: &str,
    approver: &str,
) -> Result<(), Refusal> {
    let holders = || metadata.may_approve(role, operator);
    let Some(found) = metadata.approvers.iter().find(|a| a.name == approver) else {
        return Err(Refusal::UnknownApprover {
            name: approver.to_owned(),
            known: metadata.approvers.iter().map(|a| a.name.clone()).collect(),
        });
    };
    if found.name == operator {
        return Err(Refusal::Operator {
            name: approver.to_owned(),
            holders: holders(),
        });
    }
    if !found.holds(role) {
        return Err(Refusal::LacksRole {
            name: approver.to_owned(),
            step: step.to_owned(),
            role: role.to_owned(),
            holders: holders(),
        });
    }
    Ok(())
}

/// The approval `step` of the run in `record` waits for, if `approver` may
/// decide it now; else why not.
pub fn check_decision<'r>(
    record: &'r RunRecord,
    step: &str,
    approver: &str,
) -> Result<&'r ApprovalRequest, Refusal> {
    let run_id = &record.run.run_id;
    if let Some(verdict) = record.verdict {
        return Err(Refusal::Finished {
            run_id: run_id.clone(),
            verdict,
        });
    }
    let Some((_, found)) = record.steps().find(|(_, s)| s.outline.id == step) else {
        return Err(Refusal::UnknownStep {
            run_id: run_id.clone(),
            step: step.to_owned(),
        });
    };
    let Some(request) = pending(found) else {
        return Err(Refusal::NotWaiting {
            run_id: run_id.clone(),
            step: step.to_owned(),
            waiting: record
                .steps()
                .find(|(_, s)| pending(s).is_some())
                .map(|(_, s)| s.outline.id.clone()),
        });
    };
    eligible(
        &record.metadata,
        &record.run.operator,
        step,
        &request.role,
        approver,
    )?;
    Ok(request)
}

/// Why a decision was not recorded.
#[derive(Debug, thiserror::Error)]
pub enum DecideError {
    /// The rule refused it: nothing was written.
    #[error(transparent)]
    Refused(#[from] Refusal),
    /// It could not be written.
    #[error(transparent)]
    Write(#[from] DecisionError),
}

/// Records `decision` for the run in `record`, kept in `run_dir`, once
/// [`check_decision`] allows it: the one path every decider takes (the
/// `approve` and `reject` commands, the console's approval links).
pub fn decide(
    record: &RunRecord,
    run_dir: &Path,
    decision: &ApprovalDecision,
) -> Result<(), DecideError> {
    check_decision(record, &decision.step, &decision.approver)?;
    append_decision(run_dir, decision)?;
    Ok(())
}

/// The request a step waits on: asked, not answered, not finished.
pub fn pending(step: &crate::record::StepRecord) -> Option<&ApprovalRequest> {
    step.approval
        .as_ref()
        .filter(|a| a.result.is_none() && step.outcome.is_none())
        .map(|a| &a.request)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::approval::{ApprovalVerdict, Approver};

    fn decision(approver: &str, n: usize) -> ApprovalDecision {
        ApprovalDecision {
            step: format!("step-{n}"),
            verdict: ApprovalVerdict::Approved,
            approver: approver.into(),
            account: "carla".into(),
            host: "db-host".into(),
            at: "2026-01-01T00:00:00Z".parse().unwrap(),
            comment: Some("x".repeat(n % 300)),
        }
    }

    #[test]
    fn concurrent_writers_never_tear_or_lose_a_decision() {
        let dir = tempfile::tempdir().unwrap();
        let (writers, each) = (16, 50);
        std::thread::scope(|scope| {
            for w in 0..writers {
                let dir = dir.path();
                scope.spawn(move || {
                    for n in 0..each {
                        append_decision(dir, &decision(&format!("w{w}"), n)).unwrap();
                    }
                });
            }
            // A reader polling meanwhile, as the waiting run does, never
            // sees a torn line.
            let dir = dir.path();
            scope.spawn(move || {
                for _ in 0..50 {
                    let text =
                        std::fs::read_to_string(dir.join(DECISIONS_FILE)).unwrap_or_default();
                    for line in text.lines() {
                        serde_json::from_str::<ApprovalDecision>(line).unwrap();
                    }
                }
            });
        });
        let text = std::fs::read_to_string(dir.path().join(DECISIONS_FILE)).unwrap();
        assert_eq!(text.lines().count(), writers * each);
        let read = read_decisions(dir.path()).unwrap();
        assert_eq!(read.len(), writers * each, "every line is a whole decision");
        for w in 0..writers {
            let mine: Vec<_> = read
                .iter()
                .filter(|d| d.approver == format!("w{w}"))
                .collect();
            assert_eq!(mine.len(), each);
            // Each writer's lines keep their order.
            for (n, d) in mine.iter().enumerate() {
                assert_eq!(d.step, format!("step-{n}"));
            }
        }
    }

    #[test]
    fn a_decision_too_long_for_one_write_is_refused_and_nothing_written() {
        let dir = tempfile::tempdir().unwrap();
        let mut d = decision("carla", 0);
        d.comment = Some("y".repeat(MAX_DECISION_LINE));
        assert!(matches!(
            append_decision(dir.path(), &d),
            Err(DecisionError::TooLong { .. })
        ));
        assert!(!dir.path().join(DECISIONS_FILE).exists());
    }

    #[test]
    fn only_a_listed_approver_with_the_role_who_is_not_the_operator_may_decide() {
        let metadata = Metadata {
            approvers: vec![
                Approver {
                    name: "ana".into(),
                    roles: vec!["dba".into()],
                },
                Approver {
                    name: "bob".into(),
                    roles: vec!["infra".into()],
                },
                Approver {
                    name: "carla".into(),
                    roles: vec!["dba".into()],
                },
            ],
            ..Metadata::default()
        };
        let check = |who| eligible(&metadata, "ana", "restore-snapshot", "dba", who);
        assert_eq!(check("carla"), Ok(()));
        let err = check("ana").unwrap_err();
        assert_eq!(
            err.to_string(),
            "`ana` is the operator of this run and cannot approve its steps; it may be approved by: carla"
        );
        let err = check("bob").unwrap_err();
        assert_eq!(
            err.to_string(),
            "`bob` does not hold role `dba`, which step `restore-snapshot` requires; it may be approved by: carla"
        );
        let err = check("dave").unwrap_err();
        assert_eq!(
            err.to_string(),
            "`dave` is not an approver of this runbook; its approvers are: ana, bob, carla"
        );
    }
}
