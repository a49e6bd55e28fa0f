//! The team's data that generic checks are pointed at, kept beside the
//! team's runbook so the checks do not carry it: the API's smoke suite and
//! the paths its CDN caches.

use std::collections::BTreeMap;

use crate::smoke::suite::{Expect, IfMatchTest, Request, Suite};

/// The CDN paths the runbook purges ("Limpar caches HTTP/CDN relacionados a
/// `/v1/cidades` e `/v1/escolas`").
pub const CDN_PATHS: [&str; 2] = ["/v1/cidades", "/v1/escolas"];

/// The header asking the API for JSON.
const ACCEPT_JSON: (&str, &str) = ("Accept", "application/json");

/// The built-in Escola Connect suite: health, `/v1/cidades`,
/// `/v1/escolas`, an unknown escola (404 with a `Trace-Id`), and the
/// `If-Match` round trip on escola 1 with its refused writes (a stale
/// tag gets 412, none 428). Changes no data: the refused writes carry
/// escola 1 as just read.
pub fn smoke_suite() -> Suite {
    Suite {
        name: "escola-connect".into(),
        variables: BTreeMap::new(),
        allow_writes: false,
        trace_id_on_errors: true,
        trace_id_header: "Trace-Id".into(),
        requests: vec![
            Request::get("health", "/health")
                .expect(Expect::Status(200))
                .expect(Expect::JsonEquals {
                    pointer: "/status".into(),
                    value: "ok".into(),
                }),
            listing("cidades", "/v1/cidades"),
            listing("escolas", "/v1/escolas"),
            Request::get("unknown escola gives 404", "/v1/escolas/0")
                .header(ACCEPT_JSON.0, ACCEPT_JSON.1)
                .expect(Expect::Status(404)),
        ],
        if_match: Some(IfMatchTest {
            path: "/v1/escolas/1".into(),
            refused_writes: true,
            scratch_path: None,
        }),
    }
}

/// A listing endpoint of the API, asked for JSON: 200 within 2 s, a first
/// item with an id, and a `Trace-Id`.
fn listing(name: &str, path: &str) -> Request {
    Request::get(name, path)
        .header(ACCEPT_JSON.0, ACCEPT_JSON.1)
        .expect(Expect::Status(200))
        .expect(Expect::JsonExists("/data/0/id".into()))
        .expect(Expect::HeaderPresent("Trace-Id".into()))
        .expect(Expect::MaxLatencyMs(2000))
}
