//! The exposition parser on both text formats, its errors, and its
//! refusal to panic.

use std::borrow::Cow;

use escola_runbook_checks::metrics::parse::{
    Entry, Format, Lines, MetricType, ParseErrorKind, parse,
};

const PROMETHEUS: &str = r#"# HELP http_requests_total Total requests.\nSecond line with a \\ backslash.
# TYPE http_requests_total counter
http_requests_total{method="GET",route="/v1/escolas",status="200"} 1027 1395066363000
http_requests_total{method="POST",route="/v1/escolas",status="503"} 3 1395066363000

# A plain comment
  # another one, indented
# TYPE http_request_duration_seconds histogram
http_request_duration_seconds_bucket{le="0.05"} 24054
http_request_duration_seconds_bucket{le="0.1"} 33444
http_request_duration_seconds_bucket{le="+Inf"} 144320
http_request_duration_seconds_sum 53423
http_request_duration_seconds_count 144320
# TYPE rpc_duration_seconds summary
rpc_duration_seconds{quantile="0.5"} 4.773e3
rpc_duration_seconds{quantile="0.99"} 7.6e+05
rpc_duration_seconds_sum 1.7560473e+07
rpc_duration_seconds_count 2693
# TYPE temperature gauge
temperature{room="a"} -Inf
temperature{room="b"} NaN
temperature{room="c"} +Inf
temperature{room="d"} 1.5E-3
no_type_metric 12
escaped{path="C:\\dir\\",quote="say \"hi\"",nl="a\nb",trailing_comma="x",} 1
spaced { a = "1" , b="2" } 7
"#;

#[test]
fn parses_prometheus_text_with_every_feature() {
    let e = parse(PROMETHEUS, Format::Prometheus).unwrap();
    let names: Vec<(&str, MetricType)> = e.families.iter().map(|f| (f.name, f.kind)).collect();
    assert_eq!(
        names,
        [
            ("http_requests_total", MetricType::Counter),
            ("http_request_duration_seconds", MetricType::Histogram),
            ("rpc_duration_seconds", MetricType::Summary),
            ("temperature", MetricType::Gauge),
            ("no_type_metric", MetricType::Untyped),
            ("escaped", MetricType::Untyped),
            ("spaced", MetricType::Untyped),
        ]
    );
    let help = e.family("http_requests_total").unwrap().help.as_deref();
    assert_eq!(
        help,
        Some("Total requests.\nSecond line with a \\ backslash.")
    );
    let reqs = &e.family("http_requests_total").unwrap().samples;
    assert_eq!(reqs[0].timestamp_ms, Some(1_395_066_363_000));
    assert_eq!(reqs[1].label("status"), Some("503"));
    assert_eq!(reqs[1].value, 3.0);
    assert_eq!(reqs[1].line, 4);

    let hist = e.family("http_request_duration_seconds").unwrap();
    assert_eq!(
        hist.samples.len(),
        5,
        "buckets, sum and count join the family"
    );
    assert_eq!(hist.samples[2].label("le"), Some("+Inf"));

    let summary = e.family("rpc_duration_seconds").unwrap();
    assert_eq!(summary.samples[0].value, 4773.0);
    assert_eq!(summary.samples[1].value, 760_000.0);

    let t = &e.family("temperature").unwrap().samples;
    assert_eq!(t[0].value, f64::NEG_INFINITY);
    assert!(t[1].value.is_nan());
    assert_eq!(t[2].value, f64::INFINITY);
    assert_eq!(t[3].value, 0.0015);

    let esc = &e.family("escaped").unwrap().samples[0];
    assert_eq!(esc.label("path"), Some("C:\\dir\\"));
    assert_eq!(esc.label("quote"), Some("say \"hi\""));
    assert_eq!(esc.label("nl"), Some("a\nb"));
    // Only escaped values allocate.
    assert!(matches!(esc.labels[3].value, Cow::Borrowed("x")));
    assert!(matches!(esc.labels[0].value, Cow::Owned(_)));

    let spaced = &e.family("spaced").unwrap().samples[0];
    assert_eq!(spaced.label("a"), Some("1"));
    assert_eq!(spaced.value, 7.0);
}

const OPENMETRICS: &str = "# TYPE http_requests counter
# HELP http_requests Requests with a \\\"quoted\\\" help.
http_requests_total{status=\"200\"} 10 1520879607.789 # {trace_id=\"KOO5S4vxi0o\"} 0.67 1520879602.890
http_requests_created{status=\"200\"} 1520430000.123
# TYPE latency_seconds histogram
# UNIT latency_seconds seconds
latency_seconds_bucket{le=\"0.5\"} 1
latency_seconds_bucket{le=\"+Inf\"} 2 # {trace_id=\"a\"} 3.2
latency_seconds_count 2
latency_seconds_sum 3.5
# TYPE build info
build_info{version=\"1.2\"} 1
# EOF
";

#[test]
fn parses_openmetrics_with_exemplars_units_and_eof() {
    assert_eq!(Format::detect(None, OPENMETRICS), Format::OpenMetrics);
    assert_eq!(
        Format::detect(Some("text/plain; version=0.0.4"), "x 1\n"),
        Format::Prometheus
    );
    let e = parse(OPENMETRICS, Format::OpenMetrics).unwrap();
    let counter = e.family("http_requests").unwrap();
    assert_eq!(counter.kind, MetricType::Counter);
    assert_eq!(
        counter.help.as_deref(),
        Some("Requests with a \"quoted\" help.")
    );
    assert_eq!(
        counter.samples.len(),
        2,
        "_total and _created belong to the family"
    );
    let s = &counter.samples[0];
    assert_eq!(s.timestamp_ms, Some(1_520_879_607_789));
    let ex = s.exemplar.as_ref().unwrap();
    assert_eq!(ex.labels[0].value, "KOO5S4vxi0o");
    assert_eq!(ex.value, 0.67);
    assert_eq!(ex.timestamp, Some(1_520_879_602.89));
    let hist = e.family("latency_seconds").unwrap();
    assert_eq!(hist.unit, Some("seconds"));
    assert_eq!(hist.samples.len(), 4);
    assert_eq!(e.family("build").unwrap().samples[0].name, "build_info");
    assert_eq!(e.samples_named("latency_seconds_bucket").count(), 2);
    assert!(e.has_metric("latency_seconds"));
    assert!(e.has_metric("http_requests_total"));
    assert!(!e.has_metric("latency"));
    let untyped = parse("h_bucket{le=\"1\"} 1\n", Format::Prometheus).unwrap();
    assert!(untyped.has_metric("h"), "no TYPE line: found by its suffix");
}

#[test]
fn openmetrics_requires_eof_and_nothing_after_it() {
    let err = parse("a_total 1\n", Format::OpenMetrics).unwrap_err();
    assert_eq!(err.kind, ParseErrorKind::MissingEof);
    assert_eq!(err.line, 2);
    let err = parse("# EOF\na 1\n", Format::OpenMetrics).unwrap_err();
    assert_eq!(err.kind, ParseErrorKind::ContentAfterEof);
    assert_eq!(err.line, 2);
    assert_eq!(err.content, "a 1");
    // In 0.0.4, `# EOF` is an ordinary comment.
    let e = parse("# EOF\na 1\n", Format::Prometheus).unwrap();
    assert_eq!(e.sample_count(), 1);
}

#[test]
fn malformed_lines_name_their_number_content_and_fault() {
    let cases: &[(&str, ParseErrorKind)] = &[
        ("x{a=\"1\"} abc", ParseErrorKind::InvalidValue("abc".into())),
        ("x{a=\"1} 1", ParseErrorKind::UnterminatedLabelValue),
        ("x{a=\"\\t\"} 1", ParseErrorKind::InvalidEscape),
        (
            "x{a=\"1\",a=\"2\"} 1",
            ParseErrorKind::DuplicateLabel("a".into()),
        ),
        ("x{1a=\"1\"} 1", ParseErrorKind::InvalidLabelName),
        ("x", ParseErrorKind::MissingValue),
        ("x{}", ParseErrorKind::MissingValue),
        ("1x 2", ParseErrorKind::InvalidMetricName),
        ("x 1 2 3", ParseErrorKind::TrailingContent),
        ("x 1 1.5", ParseErrorKind::InvalidTimestamp("1.5".into())),
        (
            "x{a=1} 1",
            ParseErrorKind::Expected("`\"` opening the label value"),
        ),
        (
            "x{a=\"1\" b=\"2\"} 1",
            ParseErrorKind::Expected("`,` or `}` after a label"),
        ),
        (
            "# TYPE x bogus",
            ParseErrorKind::UnknownType("bogus".into()),
        ),
        ("# TYPE x", ParseErrorKind::MalformedMetadata),
        (
            "x{le=\"0.1\"} 1 # {a=\"b\"} 1",
            ParseErrorKind::TrailingContent,
        ),
    ];
    for (line, kind) in cases {
        let text = format!("ok_metric 1\n\n{line}\nafter 2\n");
        let err = parse(&text, Format::Prometheus).unwrap_err();
        assert_eq!(&err.kind, kind, "for {line:?}");
        assert_eq!(err.line, 3, "for {line:?}");
        assert_eq!(err.content, *line);
        assert!(err.to_string().starts_with("line 3: "), "{err}");
    }
}

#[test]
fn family_rules_follow_prometheus() {
    let err = parse(
        "# TYPE h histogram\nh_bucket{x=\"1\"} 1\n",
        Format::Prometheus,
    )
    .unwrap_err();
    assert_eq!(err.kind, ParseErrorKind::MissingBound("le"));
    assert_eq!((err.line, err.content.as_str()), (2, "h_bucket{x=\"1\"} 1"));
    let err = parse(
        "# TYPE s summary\ns{quantile=\"x\"} 1\n",
        Format::Prometheus,
    )
    .unwrap_err();
    assert_eq!(err.kind, ParseErrorKind::MissingBound("quantile"));
    let err = parse("# TYPE a gauge\n# TYPE a counter\n", Format::Prometheus).unwrap_err();
    assert_eq!(err.kind, ParseErrorKind::DuplicateMetadata("TYPE"));
    assert_eq!(err.line, 2);
    let err = parse("a 1\n# TYPE a gauge\n", Format::Prometheus).unwrap_err();
    assert_eq!(err.kind, ParseErrorKind::TypeAfterSamples);
    // Samples of one family split by another family still join it.
    let e = parse(
        "# TYPE a counter\na 1\n# TYPE b gauge\nb 2\na{x=\"y\"} 3\n",
        Format::Prometheus,
    )
    .unwrap();
    assert_eq!(e.family("a").unwrap().samples.len(), 2);
}

#[test]
fn windows_line_endings_and_names_with_colons() {
    let e = parse(
        "job:request_rate:5m{job=\"api\"} 3.5\r\nother 1\r\n",
        Format::Prometheus,
    )
    .unwrap();
    assert_eq!(e.families[0].name, "job:request_rate:5m");
    assert_eq!(e.families[1].samples[0].value, 1.0);
}

#[test]
fn lines_stream_without_building_families() {
    let mut lines = Lines::new("# TYPE a counter\na 1\nbad line here\n", Format::Prometheus);
    assert!(matches!(
        lines.next(),
        Some(Ok(Entry::Type { name: "a", .. }))
    ));
    assert!(matches!(lines.next(), Some(Ok(Entry::Sample(_)))));
    assert!(matches!(lines.next(), Some(Err(e)) if e.line == 3));
    assert!(lines.next().is_none(), "the iterator stops after an error");
}

#[test]
fn hostile_input_never_panics() {
    // Deterministic pseudo-random bytes around the grammar's special
    // characters, cut at every position (the fuzz target does this at scale).
    let alphabet: Vec<char> = "ab_:{}=\",\\n# \t\r\n0.1e+-InfNaNé€\u{0}".chars().collect();
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    for _ in 0..3000 {
        let mut s = String::new();
        for _ in 0..(seed % 40) {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            s.push(alphabet[(seed % alphabet.len() as u64) as usize]);
        }
        for format in [Format::Prometheus, Format::OpenMetrics] {
            let _ = parse(&s, format);
            let _ = Lines::new(&s, format).count();
        }
    }
    for cut in 0..=PROMETHEUS.len() {
        if PROMETHEUS.is_char_boundary(cut) {
            let _ = parse(&PROMETHEUS[..cut], Format::Prometheus);
        }
    }
}

#[test]
fn long_lines_are_cut_in_errors() {
    let long = format!("x{{a=\"{}", "é".repeat(500));
    let err = parse(&long, Format::Prometheus).unwrap_err();
    assert_eq!(err.kind, ParseErrorKind::UnterminatedLabelValue);
    assert!(err.content.chars().count() <= 201);
    assert!(err.content.ends_with('…'));
}
