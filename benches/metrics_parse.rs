//! Our exposition parser against `prometheus-parse` 0.2.5 (the named peer)
//! on the same ~10 MB payload of an API's `/metrics` (5 000 histogram series
//! of 12 buckets, counters, gauges), in the same run; plus one full
//! scrape-parse-compute cycle over loopback.
//!
//! Allocations per parse are counted with a counting global allocator and
//! printed once before the timings (they are counts, not times).

use std::alloc::{GlobalAlloc, Layout, System};
use std::io::{Read, Write};
use std::sync::atomic::{AtomicUsize, Ordering};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use escola_runbook_checks::metrics::compute::StatusMatcher;
use escola_runbook_checks::metrics::parse::{Format, parse};
use escola_runbook_checks::metrics::{MetricsQuery, ScrapeSource, SummaryRequest, summarize};

struct Counting;

static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards to the system allocator, only counting calls.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

const BOUNDS: [&str; 12] = [
    "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5", "10", "+Inf",
];

/// A realistic exposition: HELP/TYPE lines, histograms by method, route,
/// status and instance, request counters, some escaped label values.
fn payload(histograms: usize) -> String {
    let methods = ["GET", "POST", "PUT", "DELETE", "PATCH"];
    let statuses = [
        "200", "201", "304", "400", "404", "409", "429", "500", "503", "504",
    ];
    let mut out = String::with_capacity(histograms * 2000);
    out.push_str("# HELP http_request_duration_seconds Request latency by route.\n");
    out.push_str("# TYPE http_request_duration_seconds histogram\n");
    for i in 0..histograms {
        let labels = format!(
            "method=\"{}\",route=\"/v1/escolas/{}/turmas\",status=\"{}\",instance=\"api-{}.escola.internal:9100\"",
            methods[i % methods.len()],
            i / 50,
            statuses[(i / 5) % statuses.len()],
            i % 7
        );
        let mut count = 0u64;
        for (b, le) in BOUNDS.iter().enumerate() {
            count += ((i * 31 + b * 17) % 97) as u64;
            out.push_str(&format!(
                "http_request_duration_seconds_bucket{{{labels},le=\"{le}\"}} {count}\n"
            ));
        }
        out.push_str(&format!(
            "http_request_duration_seconds_sum{{{labels}}} {}\n",
            count as f64 * 0.137
        ));
        out.push_str(&format!(
            "http_request_duration_seconds_count{{{labels}}} {count}\n"
        ));
    }
    out.push_str("# HELP http_requests_total Requests.\n# TYPE http_requests_total counter\n");
    for i in 0..histograms {
        out.push_str(&format!(
            "http_requests_total{{method=\"{}\",route=\"/v1/escolas/{}\",status=\"{}\"}} {}\n",
            methods[i % methods.len()],
            i / 50,
            statuses[i % statuses.len()],
            i * 13
        ));
    }
    out.push_str("# TYPE escola_sync_backlog gauge\n");
    for i in 0..500 {
        out.push_str(&format!(
            "escola_sync_backlog{{queue=\"q{i}\",note=\"line\\nwith \\\"quotes\\\"\"}} {}.5e-1\n",
            i
        ));
    }
    out
}

fn ours(text: &str) -> usize {
    parse(text, Format::Prometheus).map_or(0, |e| e.sample_count())
}

fn peer(text: &str) -> usize {
    prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_owned())))
        .map_or(0, |s| s.samples.len())
}

fn allocations(f: impl Fn() -> usize) -> (usize, usize) {
    let before = ALLOCATIONS.load(Ordering::Relaxed);
    let n = f();
    (ALLOCATIONS.load(Ordering::Relaxed) - before, n)
}

fn bench_parse(c: &mut Criterion) {
    let text = payload(5_000);
    let (ours_allocs, ours_samples) = allocations(|| ours(&text));
    let (peer_allocs, peer_samples) = allocations(|| peer(&text));
    eprintln!(
        "payload: {:.1} MB; ours: {ours_samples} samples, {ours_allocs} allocations; prometheus-parse: {peer_samples} samples, {peer_allocs} allocations",
        text.len() as f64 / 1e6
    );
    let mut group = c.benchmark_group("metrics_parse");
    group.throughput(Throughput::Bytes(text.len() as u64));
    group.sample_size(10);
    group.bench_with_input(BenchmarkId::new("escola-runbook", "10MB"), &text, |b, t| {
        b.iter(|| ours(t))
    });
    group.bench_with_input(
        BenchmarkId::new("prometheus-parse 0.2.5", "10MB"),
        &text,
        |b, t| b.iter(|| peer(t)),
    );
    group.finish();
}

/// Serves `body` on loopback for the scrape cycle.
fn serve(body: String) -> String {
    let listener =
        std::net::TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("bind: {e}"));
    let addr = listener
        .local_addr()
        .unwrap_or_else(|e| panic!("addr: {e}"));
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut s) = stream else { continue };
            let mut req = Vec::new();
            let mut buf = [0u8; 4096];
            while !req.windows(4).any(|w| w == b"\r\n\r\n") {
                match s.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => req.extend_from_slice(&buf[..n]),
                }
            }
            let _ = write!(
                s,
                "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = s.write_all(body.as_bytes());
        }
    });
    format!("http://{addr}/metrics")
}

fn bench_cycle(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("runtime: {e}"));
    let mut group = c.benchmark_group("metrics_cycle");
    group.sample_size(10);
    for (name, histograms) in [("app /metrics 300 series", 300), ("10MB", 5_000)] {
        let url = serve(payload(histograms));
        let source = ScrapeSource::new(url);
        let request = SummaryRequest {
            query: MetricsQuery {
                by: Some(vec!["route".into()]),
                ..MetricsQuery::default()
            },
            errors: StatusMatcher::five_xx(),
        };
        group.bench_function(
            BenchmarkId::new("scrape+parse+quantiles+ratio", name),
            |b| {
                b.to_async(&runtime).iter(|| async {
                    summarize(&source, &request)
                        .await
                        .map(|s| s.series.len())
                        .unwrap_or(0)
                })
            },
        );
    }
    group.finish();
}

/// The steps of the cycle without HTTP, to see where its time goes.
fn bench_steps(c: &mut Criterion) {
    use escola_runbook_checks::metrics::compute;
    let text = payload(300);
    let mut group = c.benchmark_group("metrics_steps_300_series");
    group.sample_size(20);
    group.bench_function("parse", |b| b.iter(|| ours(&text)));
    let e = parse(&text, Format::Prometheus).unwrap_or_else(|e| panic!("{e}"));
    group.bench_function("series", |b| {
        b.iter(|| compute::series(&e, "http_request_duration_seconds_bucket").len())
    });
    let buckets = compute::series(&e, "http_request_duration_seconds_bucket");
    group.bench_function("histograms by route + 3 quantiles", |b| {
        b.iter(|| {
            compute::histograms(&buckets, Some(&["route"]))
                .iter()
                .map(|h| h.quantile(0.5).value + h.quantile(0.95).value + h.quantile(0.99).value)
                .sum::<f64>()
        })
    });
    group.finish();
}

criterion_group!(benches, bench_parse, bench_cycle, bench_steps);
criterion_main!(benches);
