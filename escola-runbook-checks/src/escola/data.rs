//! The team's data that generic checks are pointed at, kept beside the
//! team's runbook so the checks do not carry it.

/// The CDN paths the runbook purges ("Limpar caches HTTP/CDN relacionados a
/// `/v1/cidades` e `/v1/escolas`").
pub const CDN_PATHS: [&str; 2] = ["/v1/cidades", "/v1/escolas"];
