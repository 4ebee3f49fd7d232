//! Generated hostile multipart bodies (proptest) through the real router
//! (`orfeas_server::app`, driven with `tower::ServiceExt::oneshot`): random boundaries, parts
//! with missing, duplicate and unknown names, file names with path traversal, control
//! characters, quotes and 1000 characters, wrong content types on the request and on parts,
//! random settings values, bodies truncated anywhere and streamed in random chunks, lying
//! `Content-Length` headers.
//!
//! Property, for every request: the answer is 202 with `success: true` and job ids, or a 4xx
//! (503 where the server lacks a model the request asks for) whose body is a JSON error with a
//! code; never a panic or a 500; nothing is left in the uploads staging directory; no file is
//! written outside the data directory.
//!
//! `ORFEAS_FUZZ_CASES=N` (or `PROPTEST_CASES`) runs N requests instead of the default, as
//! `scripts/fuzz.sh` does; `PROPTEST_RNG_SEED` replays a run.
#![allow(clippy::unwrap_used)]

use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::time::Duration;

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use orfeas_core::{BatchConfig, Device, Method};
use orfeas_server::{AppState, ServerConfig};
use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::Config;
use serde_json::Value;
use tower::ServiceExt;

/// Put in traversal file names: no file whose name holds it may appear outside the data
/// directory.
const MARKER: &str = "orfeas-escape-probe";

const MAX_FILE_BYTES: u64 = 64 * 1024;

fn config(default_cases: u32) -> Config {
    let from_env = |name: &str| std::env::var(name).ok().and_then(|v| v.parse::<u32>().ok());
    Config {
        cases: from_env("ORFEAS_FUZZ_CASES")
            .or_else(|| from_env("PROPTEST_CASES"))
            .unwrap_or(default_cases),
        failure_persistence: None,
        ..Config::default()
    }
}

fn png(size: u32, seed: u8) -> Vec<u8> {
    let img = image::RgbaImage::from_fn(size, size, |x, y| {
        let inside = (x + y) % 5 != 0;
        image::Rgba([
            seed,
            (x * 9) as u8,
            (y * 7) as u8,
            if inside { 255 } else { 0 },
        ])
    });
    let mut out = Cursor::new(Vec::new());
    image::DynamicImage::ImageRgba8(img)
        .write_to(&mut out, image::ImageFormat::Png)
        .unwrap();
    out.into_inner()
}

/// What a file part carries.
#[derive(Clone, Debug)]
enum Content {
    Png(u32, u8),
    /// A valid PNG cut short.
    TruncatedPng(Index),
    /// A PNG whose header claims this size (its CRC left stale).
    HugePng(u32),
    Junk(Vec<u8>),
    Empty,
    /// Over the per-file limit.
    Oversize,
    Text(String),
}

impl Content {
    fn bytes(&self) -> Vec<u8> {
        match self {
            Content::Png(size, seed) => png(*size, *seed),
            Content::TruncatedPng(i) => {
                let mut b = png(12, 3);
                b.truncate(i.index(b.len()));
                b
            }
            Content::HugePng(side) => {
                let mut b = png(8, 1);
                b[16..20].copy_from_slice(&side.to_be_bytes());
                b[20..24].copy_from_slice(&side.to_be_bytes());
                b
            }
            Content::Junk(b) => b.clone(),
            Content::Empty => Vec::new(),
            Content::Oversize => vec![0x89; MAX_FILE_BYTES as usize + 1000],
            Content::Text(t) => t.clone().into_bytes(),
        }
    }
}

#[derive(Clone, Debug)]
struct Part {
    /// `None`: a Content-Disposition without a name.
    name: Option<String>,
    filename: Option<String>,
    content_type: Option<String>,
    /// An extra header line, possibly malformed.
    extra_header: Option<String>,
    content: Content,
}

/// How the request declares its body.
#[derive(Clone, Debug)]
enum Declared {
    Proper,
    /// The boundary in quotes.
    Quoted,
    WrongBoundary,
    NoBoundary,
    Other(&'static str),
    Missing,
}

#[derive(Clone, Debug)]
enum Ending {
    Proper,
    /// No closing delimiter.
    Open,
    /// Cut at a random byte.
    Truncated(Index),
    /// Junk after the closing delimiter.
    Epilogue(Vec<u8>),
}

#[derive(Clone, Debug)]
struct Upload {
    boundary: String,
    preamble: Vec<u8>,
    parts: Vec<Part>,
    ending: Ending,
    declared: Declared,
    /// `None`: no Content-Length; else the true length plus this (a lie when not zero).
    content_length: Option<i64>,
    /// Split points of the streamed body.
    chunks: Vec<Index>,
}

impl Upload {
    fn body(&self) -> Vec<u8> {
        let b = &self.boundary;
        let mut out = self.preamble.clone();
        for p in &self.parts {
            out.extend_from_slice(format!("\r\n--{b}\r\n").as_bytes());
            let mut disposition = "Content-Disposition: form-data".to_owned();
            if let Some(name) = &p.name {
                disposition.push_str(&format!("; name=\"{name}\""));
            }
            if let Some(f) = &p.filename {
                disposition.push_str(&format!("; filename=\"{f}\""));
            }
            out.extend_from_slice(disposition.as_bytes());
            out.extend_from_slice(b"\r\n");
            if let Some(ct) = &p.content_type {
                out.extend_from_slice(format!("Content-Type: {ct}\r\n").as_bytes());
            }
            if let Some(h) = &p.extra_header {
                out.extend_from_slice(h.as_bytes());
                out.extend_from_slice(b"\r\n");
            }
            out.extend_from_slice(b"\r\n");
            out.extend_from_slice(&p.content.bytes());
        }
        match &self.ending {
            Ending::Proper => out.extend_from_slice(format!("\r\n--{b}--\r\n").as_bytes()),
            Ending::Open => {}
            Ending::Truncated(i) => {
                out.extend_from_slice(format!("\r\n--{b}--\r\n").as_bytes());
                out.truncate(i.index(out.len()));
            }
            Ending::Epilogue(junk) => {
                out.extend_from_slice(format!("\r\n--{b}--\r\n").as_bytes());
                out.extend_from_slice(junk);
            }
        }
        out
    }

    fn content_type(&self) -> Option<String> {
        let b = &self.boundary;
        match &self.declared {
            Declared::Proper => Some(format!("multipart/form-data; boundary={b}")),
            Declared::Quoted => Some(format!("multipart/form-data; boundary=\"{b}\"")),
            Declared::WrongBoundary => Some(format!("multipart/form-data; boundary=x{b}")),
            Declared::NoBoundary => Some("multipart/form-data".to_owned()),
            Declared::Other(ct) => Some(format!("{ct}; boundary={b}")),
            Declared::Missing => None,
        }
    }

    fn request(&self) -> Request<Body> {
        let body = self.body();
        let mut request = Request::builder().method("POST").uri("/api/batch-generate");
        if let Some(ct) = self.content_type() {
            request = request.header(header::CONTENT_TYPE, ct);
        }
        if let Some(delta) = self.content_length {
            let declared = (body.len() as i64 + delta).max(0);
            request = request.header(header::CONTENT_LENGTH, declared.to_string());
        }
        let mut cuts: Vec<usize> = self
            .chunks
            .iter()
            .map(|i| i.index(body.len() + 1))
            .collect();
        cuts.push(0);
        cuts.push(body.len());
        cuts.sort_unstable();
        cuts.dedup();
        let chunks: Vec<Result<Vec<u8>, std::io::Error>> = cuts
            .windows(2)
            .map(|w| Ok(body[w[0]..w[1]].to_vec()))
            .collect();
        request
            .body(Body::from_stream(futures_util::stream::iter(chunks)))
            .unwrap()
    }
}

fn boundary() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => "[A-Za-z0-9]{1,40}",
        2 => "[A-Za-z0-9'()+_,./:=? -]{1,70}",
        1 => Just(String::new()),
        1 => "[A-Za-z0-9]{200}",
        // Appears inside PNG-ish and text bodies.
        1 => Just("PNG".to_owned()),
        1 => Just("a".to_owned()),
    ]
}

fn filename() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => "[a-z]{1,12}\\.(png|jpg|webp|gif|tiff|bmp|txt)",
        1 => Just(format!("../../../{MARKER}.png")),
        1 => Just(format!("..\\..\\..\\{MARKER}.png")),
        1 => Just(format!("/tmp/{MARKER}.png")),
        1 => Just(format!("{MARKER}/../../{MARKER}-2.png")),
        1 => Just(format!("C:\\Windows\\{MARKER}.png")),
        1 => Just(".".to_owned()),
        1 => Just("..".to_owned()),
        1 => Just(String::new()),
        1 => Just(".hidden.png".to_owned()),
        1 => Just("a\u{0}b.png".to_owned()),
        1 => Just("new\r\nline.png".to_owned()),
        1 => Just("quote\".png".to_owned()),
        1 => Just("semi;colon=x.png".to_owned()),
        1 => Just("CON.png".to_owned()),
        1 => Just(format!("{}.png", "x".repeat(1000))),
        1 => Just("ünïcødé 画像.png".to_owned()),
        1 => Just("\u{202e}gnp.exe".to_owned()),
        1 => any::<String>(),
    ]
}

/// Settings fields with values valid and not.
fn setting() -> impl Strategy<Value = (String, String)> {
    let valid = prop::sample::select(vec![
        ("quality", "low"),
        ("quality", "medium"),
        ("format_type", "stl"),
        ("format_type", "obj,glb"),
        ("format_type", "ply,3mf,stl-ascii"),
        ("format_type", "mask.png,depth16"),
        ("solid", "false"),
        ("solid", "true"),
        ("width_mm", "30"),
        ("max_triangles", "500"),
        ("background", "alpha"),
        ("background", "none"),
        ("background", "border"),
        ("batch_size", "1"),
        ("depth", "inflate"),
        ("method", "relief"),
    ])
    .prop_map(|(k, v)| (k.to_owned(), v.to_owned()));
    prop_oneof![1 => valid, 1 => hostile_setting()]
}

fn hostile_setting() -> impl Strategy<Value = (String, String)> {
    let name = prop::sample::select(vec![
        "format_type",
        "format",
        "formats",
        "quality",
        "method",
        "depth",
        "width_mm",
        "depth_mm",
        "base_mm",
        "solid",
        "max_error",
        "max_triangles",
        "resolution",
        "keep_largest",
        "background",
        "batch_size",
    ]);
    let value = prop_oneof![
        prop::sample::select(vec![
            "stl",
            "obj,glb",
            "stl,ply,3mf",
            "depth16",
            "mask.png",
            "field.npy",
            "docx",
            "",
            "low",
            "medium",
            "high",
            "ultra",
            "relief",
            "inflate",
            "auto",
            "triposr",
            "depth-anything",
            "none",
            "alpha",
            "border",
            "birefnet",
            "true",
            "false",
            "maybe",
            "1",
            "0",
            "-1",
            "2",
            "64",
            "4",
            "NaN",
            "inf",
            "-inf",
            "1e39",
            "1e-45",
            "-0",
            "18446744073709551616",
            "0x10",
            " 5 ",
            "5mm",
        ])
        .prop_map(str::to_owned),
        "[ -~]{0,40}",
        Just("x".repeat(5000)),
        any::<String>(),
    ];
    (name.prop_map(str::to_owned), value)
}

fn content() -> impl Strategy<Value = Content> {
    prop_oneof![
        4 => (4u32..=24, any::<u8>()).prop_map(|(s, seed)| Content::Png(s, seed)),
        2 => any::<Index>().prop_map(Content::TruncatedPng),
        1 => prop_oneof![Just(0u32), Just(70_000), Just(u32::MAX)].prop_map(Content::HugePng),
        2 => prop::collection::vec(any::<u8>(), 0..256).prop_map(Content::Junk),
        1 => Just(Content::Empty),
        1 => Just(Content::Oversize),
        1 => "[ -~]{0,64}".prop_map(Content::Text),
    ]
}

fn part() -> impl Strategy<Value = Part> {
    let file_name = prop_oneof![
        6 => Just(Some("files".to_owned())),
        1 => Just(Some("files[]".to_owned())),
        1 => Just(Some("file".to_owned())),
        1 => Just(Some("FILES".to_owned())),
        1 => Just(None),
        1 => "[a-z_\\[\\]]{0,10}".prop_map(Some),
    ];
    let file = (
        file_name,
        prop::option::weighted(0.9, filename()),
        prop::option::of(prop::sample::select(vec![
            "image/png".to_owned(),
            "application/octet-stream".to_owned(),
            "text/plain".to_owned(),
            "image/png; charset=\"x".to_owned(),
            String::new(),
        ])),
        content(),
    )
        .prop_map(|(name, filename, content_type, content)| Part {
            name,
            filename,
            content_type,
            extra_header: None,
            content,
        });
    let text = (setting(), prop::option::of(Just("text/plain".to_owned()))).prop_map(
        |((name, value), content_type)| Part {
            name: Some(name),
            filename: None,
            content_type,
            extra_header: None,
            content: Content::Text(value),
        },
    );
    let odd_header = prop::option::weighted(
        0.1,
        prop::sample::select(vec![
            "X-Junk: 1".to_owned(),
            "no colon here".to_owned(),
            "Content-Disposition: attachment".to_owned(),
            format!("Content-Length: {}", u64::MAX),
            ":".to_owned(),
        ]),
    );
    (prop_oneof![3 => file, 2 => text], odd_header).prop_map(|(mut p, h)| {
        p.extra_header = h;
        p
    })
}

fn upload() -> impl Strategy<Value = Upload> {
    prop_oneof![1 => framed_upload(), 1 => any_upload()]
}

/// Well framed: valid images under hostile names, mostly valid settings; most are accepted.
fn framed_upload() -> impl Strategy<Value = Upload> {
    let image = (filename(), 4u32..=20, any::<u8>()).prop_map(|(f, size, seed)| Part {
        name: Some("files".to_owned()),
        filename: Some(f),
        content_type: Some("image/png".to_owned()),
        extra_header: None,
        content: Content::Png(size, seed),
    });
    let text = setting().prop_map(|(name, value)| Part {
        name: Some(name),
        filename: None,
        content_type: None,
        extra_header: None,
        content: Content::Text(value),
    });
    (
        "[A-Za-z0-9]{8,40}",
        prop::collection::vec(image, 1..=3),
        prop::collection::vec(text, 0..=2),
    )
        .prop_map(|(boundary, mut parts, texts)| {
            parts.extend(texts);
            Upload {
                boundary,
                preamble: Vec::new(),
                parts,
                ending: Ending::Proper,
                declared: Declared::Proper,
                content_length: None,
                chunks: Vec::new(),
            }
        })
}

fn any_upload() -> impl Strategy<Value = Upload> {
    (
        boundary(),
        prop::option::weighted(0.1, prop::collection::vec(any::<u8>(), 0..32)),
        prop::collection::vec(part(), 0..=6),
        prop_oneof![
            6 => Just(Ending::Proper),
            1 => Just(Ending::Open),
            2 => any::<Index>().prop_map(Ending::Truncated),
            1 => prop::collection::vec(any::<u8>(), 1..32).prop_map(Ending::Epilogue),
        ],
        prop_oneof![
            12 => Just(Declared::Proper),
            1 => Just(Declared::Quoted),
            1 => Just(Declared::WrongBoundary),
            1 => Just(Declared::NoBoundary),
            1 => prop::sample::select(vec![
                "multipart/mixed", "application/json", "text/plain", "multipart/form-data;",
                "application/x-www-form-urlencoded",
            ])
            .prop_map(Declared::Other),
            1 => Just(Declared::Missing),
        ],
        prop_oneof![
            3 => Just(None),
            2 => Just(Some(0i64)),
            1 => prop_oneof![Just(-10i64), Just(1), Just(1 << 40)].prop_map(Some),
        ],
        prop::collection::vec(any::<Index>(), 0..6),
    )
        .prop_map(
            |(boundary, preamble, parts, ending, declared, content_length, chunks)| Upload {
                boundary,
                preamble: preamble.unwrap_or_default(),
                parts,
                ending,
                declared,
                content_length,
                chunks,
            },
        )
}

/// Every file below `dir`.
fn files_below(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let path = entry.path();
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                stack.push(path);
            } else {
                out.push(path);
            }
        }
    }
    out
}

/// A server on a data directory inside a scratch directory, so that anything written beside
/// the data directory is seen.
struct Harness {
    runtime: tokio::runtime::Runtime,
    state: AppState,
    root: tempfile::TempDir,
}

impl Harness {
    fn new() -> Self {
        let root = tempfile::tempdir().unwrap();
        let mut config = ServerConfig::new(root.path().join("data"));
        config.batch = BatchConfig {
            slots: 1,
            method: Method::Relief,
            device: Device::Cpu,
            threads: Some(1),
            ..BatchConfig::default()
        };
        config.limits.max_file_bytes = MAX_FILE_BYTES;
        config.limits.max_request_bytes = 512 * 1024;
        config.limits.max_files = 4;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let state = AppState::new(config).unwrap();
        Self {
            runtime,
            state,
            root,
        }
    }

    fn data(&self) -> PathBuf {
        self.root.path().join("data")
    }

    fn send(&self, request: Request<Body>) -> (StatusCode, Value) {
        self.runtime.block_on(async {
            let response = orfeas_server::app(self.state.clone())
                .oneshot(request)
                .await
                .unwrap();
            let status = response.status();
            let bytes = axum::body::to_bytes(response.into_body(), 1 << 24)
                .await
                .unwrap();
            let body = serde_json::from_slice(&bytes).unwrap_or_else(|_| {
                Value::String(format!("not JSON: {}", String::from_utf8_lossy(&bytes)))
            });
            (status, body)
        })
    }

    /// The property, after one request.
    fn check(&self, status: StatusCode, body: &Value) -> Result<(), TestCaseError> {
        prop_assert!(body.is_object(), "{status}: {body}");
        if status == StatusCode::ACCEPTED {
            prop_assert_eq!(&body["success"], &Value::Bool(true), "{}", body);
            let ids = body["job_ids"].as_array();
            prop_assert!(ids.is_some_and(|ids| !ids.is_empty()), "{body}");
        } else {
            let code = body["code"].as_str().unwrap_or_default();
            let weights = matches!(code, "ERR_WEIGHTS_NOT_FOUND" | "ERR_WEIGHTS_INVALID");
            prop_assert!(
                status.is_client_error() || (status == StatusCode::SERVICE_UNAVAILABLE && weights),
                "{status}: {body}"
            );
            prop_assert_eq!(&body["success"], &Value::Bool(false), "{}", body);
            prop_assert!(
                body["error"].as_str().is_some_and(|e| !e.is_empty()),
                "{body}"
            );
            prop_assert!(code.starts_with("ERR_"), "{status}: {body}");
        }
        let staged = files_below(&self.data().join("uploads"));
        prop_assert!(staged.is_empty(), "left in staging: {staged:?}");
        let outside: Vec<PathBuf> = files_below(self.root.path())
            .into_iter()
            .filter(|p| !p.starts_with(self.data()))
            .collect();
        prop_assert!(
            outside.is_empty(),
            "written outside the data dir: {outside:?}"
        );
        let parent = self.root.path().parent().unwrap();
        let escaped: Vec<_> = std::fs::read_dir(parent)
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().contains(MARKER))
            .map(|e| e.path())
            .collect();
        prop_assert!(
            escaped.is_empty(),
            "written beside the scratch dir: {escaped:?}"
        );
        Ok(())
    }

    /// Waits until every accepted job has finished (so the scratch directory can go), and
    /// checks that their files stayed in their job directories.
    fn finish(self) {
        let deadline = std::time::Instant::now() + Duration::from_secs(300);
        loop {
            let request = Request::get("/api/jobs?limit=1000")
                .body(Body::empty())
                .unwrap();
            let (status, jobs) = self.send(request);
            assert_eq!(status, StatusCode::OK);
            let busy = jobs.as_array().unwrap().iter().any(|j| {
                !matches!(
                    j["status"].as_str(),
                    Some("complete" | "error" | "cancelled")
                )
            });
            if !busy {
                break;
            }
            // A guard against a hung job, not a performance assertion.
            assert!(std::time::Instant::now() < deadline, "jobs did not finish");
            std::thread::sleep(Duration::from_millis(50));
        }
        let jobs = self.data().join("jobs");
        for file in files_below(self.root.path()) {
            let inside = file.starts_with(&jobs) || file.parent() == Some(self.data().as_path());
            assert!(inside, "{} is outside the job directories", file.display());
        }
    }
}

#[test]
fn hostile_multipart_bodies_get_json_answers_and_leave_nothing_behind() {
    let harness = Harness::new();
    let mut runner = proptest::test_runner::TestRunner::new(config(64));
    let result = runner.run(&upload(), |upload| {
        let (status, body) = harness.send(upload.request());
        harness.check(status, &body)
    });
    if let Err(e) = result {
        panic!("{e}");
    }
    harness.finish();
}
