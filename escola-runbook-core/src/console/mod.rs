//! The live web console (feature `console`): a run root's runs as pages a
//! person leaves open through a 24-hour watch, and approval links that let
//! one approver decide one step of one run from a browser.
//!
//! `link` signs and checks links (HMAC-SHA256 under the run root's key);
//! `page` renders the pages from the journals, reusing the HTML report;
//! `server` is the axum application and its refusals; `notify` puts links
//! into the run's approval notifications. Decisions taken
//! through a link go through [`crate::decisions::decide`], the path the
//! `approve` and `reject` commands take.

pub mod link;
mod notify;
mod page;
mod server;

pub use link::{ApprovalLink, LinkError, LinkKey};
pub use notify::{LINK_SECRET, LinkNotifier};
pub use page::REFRESH;
pub use server::{
    Console, ConsoleError, ConsoleOptions, DEFAULT_LISTEN, RefusedRequest, VIEWER_COOKIE,
    VIEWER_PARAM,
};
