//! The console's pages, rendered on the server from what the run directory
//! holds: the run list, a run (the report's checklist and charts, with
//! where it stands above them), and an approval link's form. Every text
//! from a run is escaped; the one script is inline, allowed by a nonce, and
//! only refreshes the live part of a page.

use std::fmt::Write as _;
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::approval::ApprovalRequest;
use crate::event::Verdict;
use crate::outcome::{Series, format_duration, format_millis, format_timestamp};
use crate::record::RunRecord;
use crate::report::html::escape;
use crate::report::{REPORT_STYLE, ReportError, render_html_body, render_svg};
use crate::status::{History, RunState, RunStatus};

use super::link::{ApprovalLink, encode};

/// The longest comment a decision through a link takes, in bytes: with
/// the rest of the decision it fits one line of the decision file.
pub const MAX_COMMENT_BYTES: usize = 2048;

/// How often a live page fetches its live part again.
pub const REFRESH: Duration = Duration::from_secs(2);

const CONSOLE_STYLE: &str = "\
.banner{padding:.8em 1em;border-radius:6px;margin:1em 0;color:#fff;background:#57606a}
.banner .big{font-size:2em;font-weight:700;letter-spacing:.02em}
.ok{background:#1a7f37}.bad{background:#cf222e}.wait{background:#9a6700}.run{background:#0969da}
.firing{color:#cf222e;font-weight:700}.pending{color:#9a6700;font-weight:700}.inactive{color:#1a7f37}
#conn{font-size:.85em;color:#57606a}#conn.lost{color:#cf222e;font-weight:700}
form textarea{width:100%;min-height:4em}form button{font-size:1.1em;padding:.4em 1.2em;margin:.5em .5em 0 0}
nav{font-size:.9em}";

/// The script of a live page: fetches the live part every [`REFRESH`] and
/// says when the connection is lost, so a page left open overnight never
/// shows stale news as current.
fn script() -> String {
    format!(
        "(function(){{var live=document.getElementById('live');if(!live)return;\
var note=document.getElementById('conn');\
function tick(){{fetch(live.dataset.src,{{credentials:'same-origin',cache:'no-store'}})\
.then(function(r){{if(!r.ok)throw new Error('HTTP '+r.status);return r.text();}})\
.then(function(t){{live.innerHTML=t;var s=live.querySelector('[data-title]');\
if(s)document.title=s.dataset.title;note.textContent='live, updated '+new Date().toLocaleTimeString();note.className='';}})\
.catch(function(e){{note.textContent='connection to the console lost ('+e.message+'); retrying';note.className='lost';}})\
.finally(function(){{setTimeout(tick,{ms});}});}}\
setTimeout(tick,{ms});}})();",
        ms = REFRESH.as_millis()
    )
}

/// The Content-Security-Policy of a page whose script carries `nonce`.
pub fn csp(nonce: &str) -> String {
    format!(
        "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; \
         script-src 'nonce-{nonce}'; connect-src 'self'; form-action 'self'; \
         frame-ancestors 'none'; base-uri 'none'"
    )
}

/// A whole page: `title`, then `body`; with `live` (the URL of its live
/// part), `body` is that part and the script refreshes it.
pub fn document(title: &str, nonce: &str, live: Option<&str>, body: &str) -> String {
    let (open, close, script) = match live {
        Some(src) => (
            format!(
                "<p id=\"conn\">live, every {}</p>\n<main id=\"live\" data-src=\"{}\">\n",
                format_duration(REFRESH),
                escape(src)
            ),
            "</main>\n",
            format!("<script nonce=\"{nonce}\">{}</script>\n", script()),
        ),
        None => ("<main>\n".to_owned(), "</main>\n", String::new()),
    };
    format!(
        "<!doctype html>\n<html lang=\"pt-BR\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{}</title>\n<style>{REPORT_STYLE}\n{CONSOLE_STYLE}</style>\n</head>\n<body>\n\
         <nav><a href=\"/\">all runs</a></nav>\n{open}{body}{close}{script}</body>\n</html>\n",
        escape(title)
    )
}

/// The run list, newest first, then the journals that could not be read
/// (each named, so a damaged run is seen, not silently missing).
pub fn history(history: &History, now: DateTime<Utc>) -> String {
    let entries = &history.runs;
    let mut out = String::from(
        "<h1>Runs</h1>\n<table>\n<tr><th>run</th><th>runbook</th><th>environment</th>\
         <th>operator</th><th>started</th><th>duration</th><th>verdict</th><th>exit</th></tr>\n",
    );
    for e in entries.iter().rev() {
        let _ = writeln!(
            out,
            "<tr><td><a href=\"/runs/{}\">{}</a></td><td>{}</td><td>{}</td><td>{}</td>\
             <td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            encode(&e.run_id),
            escape(&e.run_id),
            escape(&e.runbook),
            escape(&e.environment),
            escape(&e.operator),
            format_timestamp(&e.started_at),
            format_millis(e.duration_ms),
            escape(&e.verdict_label()),
            e.exit_code.map_or_else(|| "-".into(), |c| c.to_string())
        );
    }
    out.push_str("</table>\n");
    if entries.is_empty() && history.unreadable.is_empty() {
        out.push_str("<p>No runs recorded yet.</p>\n");
    }
    if !history.unreadable.is_empty() {
        out.push_str("<h2>Journals that could not be read</h2>\n<ul>\n");
        for e in &history.unreadable {
            let _ = writeln!(out, "<li>{}</li>", escape(&e.to_string()));
        }
        out.push_str("</ul>\n");
    }
    let _ = writeln!(out, "<p>as of {}</p>", format_timestamp(&now));
    out
}

/// Where a run stands in one word and a colour.
fn state_of(status: &RunStatus) -> (String, &'static str) {
    match (status.state, status.verdict) {
        (_, Some(Verdict::Succeeded)) => ("succeeded".into(), "ok"),
        (_, Some(v)) => (v.label().to_owned(), "bad"),
        (RunState::AwaitingApproval, None) => ("awaiting approval".into(), "wait"),
        (RunState::Running, None) if !status.pending_approvals.is_empty() => {
            ("waiting for approval".into(), "wait")
        }
        (RunState::Running, None) => ("running".into(), "run"),
        (_, None) => ("not running".into(), "bad"),
    }
}

/// The live part of a run's page: where it stands, what waits for whom,
/// the watch rules, then the report's checklist and charts.
pub fn run(
    status: &RunStatus,
    record: &RunRecord,
    now: DateTime<Utc>,
) -> Result<String, ReportError> {
    let (state, class) = state_of(status);
    let mut out = String::new();
    let span = |from: DateTime<Utc>, to: DateTime<Utc>| {
        format_millis(u64::try_from((to - from).num_milliseconds().max(0)).unwrap_or(0))
    };
    let since = |at| span(at, now);
    let _ = writeln!(
        out,
        "<div class=\"banner {class}\" data-title=\"{} · {} {}\"><div class=\"big\">{}</div>\
         <div>run {} of {} in {}, by {} on {}, started {} ({} ago)</div>",
        escape(&state),
        escape(&status.runbook),
        escape(&status.run_id),
        escape(&state),
        escape(&status.run_id),
        escape(&status.runbook),
        escape(&status.environment),
        escape(&status.operator),
        escape(&status.host),
        format_timestamp(&status.started_at),
        since(status.started_at)
    );
    if let Some(c) = &status.current {
        // A step whose process is gone is where the run stopped, not
        // what it does now.
        let (at, time) = match c.status.as_str() {
            "interrupted" => ("stopped at", "interrupted".to_owned()),
            _ => ("now", format_millis(c.elapsed_ms)),
        };
        let _ = writeln!(
            out,
            "<div>{at}: {} / {} — {} ({time})</div>",
            escape(&c.phase),
            escape(&c.step),
            escape(&c.title),
        );
    }
    if let (Some(h), Some(why)) = (&status.lock_holder, &status.lock_stale) {
        let _ = writeln!(
            out,
            "<div>its deploy lock (pid {} on {}) is stale: {}</div>",
            h.pid,
            escape(&h.host),
            escape(&why.to_string())
        );
    }
    out.push_str("</div>\n");
    if !status.pending_approvals.is_empty() {
        out.push_str("<h2>Pending approvals</h2>\n<ul>\n");
        for p in &status.pending_approvals {
            let left = p
                .request
                .deadline
                .map(|d| {
                    if d > now {
                        format!(", {} left", span(now, d))
                    } else {
                        ", deadline passed".into()
                    }
                })
                .unwrap_or_default();
            let _ = writeln!(
                out,
                "<li><strong>{} / {}</strong> waits for {}{left}; waiting {}. An approver \
                 decides with <code>approve</code> / <code>reject</code> or through an approval link.</li>",
                escape(&p.phase),
                escape(&p.step),
                escape(&p.request.describe()),
                since(p.request.since)
            );
        }
        out.push_str("</ul>\n");
    }
    if !status.rules.is_empty() {
        out.push_str(
            "<h2>Watch rules</h2>\n<table>\n<tr><th>step</th><th>rule</th><th>state</th>\
             <th>last value</th><th>what it saw</th><th>since</th></tr>\n",
        );
        for r in &status.rules {
            let _ = writeln!(
                out,
                "<tr><td>{}</td><td>{}</td><td class=\"{}\">{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                escape(&r.step),
                escape(&r.rule),
                r.state.as_str(),
                r.state.as_str(),
                r.value.map_or_else(|| "-".into(), |v| format!("{v}")),
                escape(&r.detail),
                format_timestamp(&r.at)
            );
        }
        out.push_str("</table>\n");
        for (name, series) in watching(record) {
            let svg = render_svg(&series)?;
            let _ = writeln!(
                out,
                "<figure><figcaption>{} (values at each change of state, while the watch runs)</figcaption>{}</figure>",
                escape(&name),
                svg.split_once("?>")
                    .map_or(svg.as_str(), |(_, s)| s.trim_start())
            );
        }
    }
    out.push_str(&render_html_body(record)?);
    let _ = writeln!(out, "<p>as of {}</p>", format_timestamp(&now));
    Ok(out)
}

/// The values of each rule of a watch still running, as its transitions
/// recorded them (the whole series is the step's once it ends).
fn watching(record: &RunRecord) -> Vec<(String, Series)> {
    let mut charts: Vec<(String, Series)> = Vec::new();
    for t in &record.rule_transitions {
        let running = record
            .steps()
            .any(|(_, s)| s.outline.id == t.step && s.outcome.is_none());
        let Some(value) = t.transition.value.filter(|_| running) else {
            continue;
        };
        let name = format!("{} / {}", t.step, t.transition.rule);
        let point = [t.transition.offset_ms as f64 / 1000.0, value];
        match charts.iter_mut().find(|(n, _)| *n == name) {
            Some((_, s)) => s.points.push(point),
            None => charts.push((
                name.clone(),
                Series {
                    name: t.transition.rule.clone(),
                    unit: None,
                    limit: None,
                    points: vec![point],
                    marks: Vec::new(),
                },
            )),
        }
    }
    charts
}

/// What an approval link's form posts besides the decision.
pub struct Form<'a> {
    /// The link.
    pub link: &'a ApprovalLink,
    /// Its signature, posted back.
    pub signature: &'a str,
    /// The CSRF token for this browser.
    pub csrf: &'a str,
}

/// An approval link's page: the step, who asks, what the run saw so far,
/// and the Approve and Reject buttons.
pub fn approval(
    record: &RunRecord,
    request: &ApprovalRequest,
    form: &Form<'_>,
) -> Result<String, ReportError> {
    let link = form.link;
    let run = &record.run;
    let title = record
        .steps()
        .find(|(_, s)| s.outline.id == link.step)
        .map(|(p, s)| format!("{} — {}", p.title, s.outline.title))
        .unwrap_or_default();
    let mut out = format!(
        "<h1>Approval asked of {}</h1>\n<p><strong>{}</strong> (step <code>{}</code>) of run \
         <a href=\"/runs/{}\">{}</a> of {} in {}</p>\n<p>asked by {} on {} — waits for {}</p>\n",
        escape(&link.approver),
        escape(&title),
        escape(&link.step),
        encode(&run.run_id),
        escape(&run.run_id),
        escape(&record.runbook),
        escape(&run.environment.name),
        escape(&run.operator),
        escape(&run.host),
        escape(&request.describe()),
    );
    let _ = write!(
        out,
        "<form method=\"post\" action=\"/approve/{}/{}\">\n\
         <input type=\"hidden\" name=\"for\" value=\"{}\">\
         <input type=\"hidden\" name=\"exp\" value=\"{}\">\
         <input type=\"hidden\" name=\"n\" value=\"{}\">\
         <input type=\"hidden\" name=\"sig\" value=\"{}\">\
         <input type=\"hidden\" name=\"csrf\" value=\"{}\">\n\
         <label for=\"comment\">Comment (required to reject)</label>\n\
         <textarea id=\"comment\" name=\"comment\" maxlength=\"{MAX_COMMENT_BYTES}\"></textarea>\n\
         <button id=\"approve\" type=\"submit\" name=\"verdict\" value=\"approve\">Approve</button>\
         <button id=\"reject\" type=\"submit\" name=\"verdict\" value=\"reject\">Reject</button>\n\
         </form>\n<p>This link works once, until {}.</p>\n<h2>The run so far</h2>\n",
        encode(&link.run_id),
        encode(&link.step),
        escape(&link.approver),
        link.expires.timestamp(),
        escape(&link.nonce),
        escape(form.signature),
        escape(form.csrf),
        format_timestamp(&link.expires),
    );
    out.push_str(&render_html_body(record)?);
    Ok(out)
}

/// A page that only says something: a refusal, or a decision taken.
pub fn message(heading: &str, text: &str, run_id: Option<&str>) -> String {
    let back = run_id
        .map(|id| {
            format!(
                "<p><a id=\"run\" href=\"/runs/{}\">follow run {}</a></p>\n",
                encode(id),
                escape(id)
            )
        })
        .unwrap_or_default();
    format!(
        "<h1>{}</h1>\n<p id=\"message\">{}</p>\n{back}",
        escape(heading),
        escape(text)
    )
}

#[cfg(test)]
mod tests {
    use async_trait::async_trait;

    use super::*;
    use crate::alert::{AlertState, RuleTransition};
    use crate::event::Event;
    use crate::journal::read_journal;
    use crate::{Check, Ctx, Description, Executor, Outcome, Phase, Runbook, Step};

    /// A watch whose rule `p95` goes pending at 0.9 s, then fires at 2.5 s.
    struct Watching;

    #[async_trait]
    impl Check for Watching {
        fn describe(&self) -> Description {
            Description::read_only("watch", "P95 abaixo de 2s por 24h")
        }

        async fn run(&self, ctx: &Ctx) -> Outcome {
            for (offset_ms, value, from, to) in [
                (60_000, 0.9, AlertState::Inactive, AlertState::Pending),
                (120_000, 2.5, AlertState::Pending, AlertState::Firing),
            ] {
                let transition = RuleTransition {
                    rule: "p95".into(),
                    from,
                    to,
                    value: Some(value),
                    condition: "p95 > 2s".into(),
                    detail: format!("p95 {value}s"),
                    offset_ms,
                    at: ctx.now(),
                };
                if let Err(e) = ctx.record_rule_transition(transition) {
                    return Outcome::check_error(e.to_string());
                }
            }
            Outcome::passed("held")
        }
    }

    #[tokio::test]
    async fn a_watch_still_running_shows_each_rules_state_value_and_chart() {
        let dir = tempfile::tempdir().unwrap();
        let runbook = Runbook::builder("escola-connect")
            .phase(Phase::new("watch", "Observar").step(Step::check(
                "watch-24h",
                "Watch",
                Watching,
            )))
            .build()
            .unwrap();
        let record = Executor::new(runbook)
            .run_root(dir.path())
            .run()
            .await
            .unwrap();
        let journal = dir
            .path()
            .join(&record.run.run_id)
            .join(crate::journal::JOURNAL_FILE);
        // The journal as it stands while the watch runs: no finish yet.
        let events: Vec<Event> = read_journal(&journal)
            .unwrap()
            .events
            .into_iter()
            .filter(|e| {
                !matches!(
                    e,
                    Event::StepFinished { .. }
                        | Event::PhaseFinished { .. }
                        | Event::RunFinished { .. }
                )
            })
            .collect();
        let running = RunRecord::from_events(&events).unwrap();
        let now = Utc::now();
        let status = RunStatus::of(&running, None, None, now);
        let page = run(&status, &running, now).unwrap();
        assert!(page.contains("<h2>Watch rules</h2>"), "{page}");
        assert!(
            page.contains("<td class=\"firing\">firing</td><td>2.5</td><td>p95 2.5s</td>"),
            "{page}"
        );
        assert!(
            page.contains("watch-24h / p95 (values at each change of state"),
            "{page}"
        );
        assert_eq!(page.matches("<svg").count(), 1, "one live chart: {page}");
        // No lock says otherwise (a dry-run takes none): its step runs.
        assert!(page.contains("<div>now: "), "{page}");
        // Its process killed, the lock file left: stopped, not running.
        let holder = crate::deploy_lock::LockOwner {
            user: "ana".into(),
            host: "deploy-1".into(),
            pid: 4242,
            run_id: running.run.run_id.clone(),
            since: now,
            heartbeat: now,
        };
        let gone = RunStatus::of(
            &running,
            Some(holder),
            Some(crate::deploy_lock::Staleness::DeadProcess),
            now,
        );
        let page = run(&gone, &running, now).unwrap();
        assert!(
            page.contains("<div class=\"big\">not running</div>"),
            "{page}"
        );
        assert!(page.contains("(interrupted)</div>"), "{page}");
        assert!(
            page.contains(
                "(pid 4242 on deploy-1) is stale: that process is no longer running on this host"
            ),
            "{page}"
        );
        // Once the step ends, its own series are the report's charts; the
        // live chart is gone.
        let status = RunStatus::of(&record, None, None, now);
        let page = run(&status, &record, now).unwrap();
        assert!(!page.contains("values at each change of state"), "{page}");
        assert!(page.contains("class=\"banner ok\""), "{page}");
    }

    #[test]
    fn the_run_list_names_each_journal_it_could_not_read() {
        let history = crate::status::History {
            runs: Vec::new(),
            unreadable: vec![crate::status::HistoryError::Journal(
                crate::journal::JournalReadError::Empty("runs/<b>x</b>/journal.jsonl".into()),
            )],
        };
        let page = super::history(&history, chrono::Utc::now());
        assert!(page.contains("Journals that could not be read"), "{page}");
        assert!(
            page.contains("runs/&lt;b&gt;x&lt;/b&gt;/journal.jsonl is empty"),
            "{page}"
        );
        assert!(!page.contains("No runs recorded yet"), "{page}");
    }
}
