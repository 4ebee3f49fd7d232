//! The model loaders on mutated configs and checkpoints, the tiny fixtures of
//! `tests/fixtures/` as seeds: Depth Anything (transformers `config.json` + safetensors, and
//! the authors' `.pth`), TripoSR (`config.yaml`, its ViT `config.json`, safetensors and the
//! `model.ckpt` pickle) and BiRefNet (safetensors).
//!
//! Safetensors files are mutated in their header (dtype, shape, offsets of one tensor; a
//! tensor removed, renamed or duplicated; shapes with a zero dimension beside huge ones, which
//! describe no bytes and so pass the format's own checks; the length prefix claiming
//! gigabytes; malformed JSON) and in their bytes (bit flips, truncation). Configs get values
//! of the wrong type, absurd sizes (2^40, 2^63), missing keys and broken syntax.
//!
//! Property: the loader succeeds (the mutation was harmless) or fails with
//! ERR_WEIGHTS_INVALID / ERR_WEIGHTS_NOT_FOUND naming the file it could not use; never a panic
//! and never an allocation sized by a claim (`alloc_cap`).

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use candle_core::Device;
use orfeas_core::depth::depth_anything::load_model;
use orfeas_core::models::birefnet::BiRefNet;
use orfeas_core::models::triposr::TripoSr;
use orfeas_core::models::TripoSrWeights;
use orfeas_core::OrfeasError;
use proptest::prelude::*;
use proptest::sample::Index;
use serde_json::{Map, Value};

use crate::alloc_cap::assert_no_huge_allocation;

fn fixture(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(rel)
}

/// Fixture files read so far, by path relative to `tests/fixtures`.
type FixtureCache = std::sync::Mutex<Vec<(&'static str, &'static [u8])>>;

/// A fixture file's bytes, read once per process.
pub fn bytes(rel: &'static str) -> &'static [u8] {
    static CACHE: OnceLock<FixtureCache> = OnceLock::new();
    let cache = CACHE.get_or_init(Default::default);
    let mut cache = cache.lock().unwrap();
    if let Some((_, b)) = cache.iter().find(|(r, _)| *r == rel) {
        return b;
    }
    let b: &'static [u8] = std::fs::read(fixture(rel)).unwrap().leak();
    cache.push((rel, b));
    b
}

// ---------------------------------------------------------------------------------------
// Safetensors

/// One tensor of a safetensors file: dtype and shape as JSON (so that they can be junk), and
/// its bytes.
#[derive(Clone)]
struct Entry {
    dtype: Value,
    shape: Value,
    data: Vec<u8>,
    /// Written instead of the offsets the layout gives.
    offsets: Option<Value>,
}

/// A safetensors file taken apart: its tensors by name, other header keys, and on writing a
/// fresh contiguous layout (what a writer produces), so that a mutation describing no bytes
/// (a zero dimension) gives a file the format's own checks accept.
struct Safetensors {
    tensors: Vec<(String, Entry)>,
    other: Map<String, Value>,
}

impl Safetensors {
    fn parse(bytes: &[u8]) -> Self {
        let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
        let header: Map<String, Value> = serde_json::from_slice(&bytes[8..8 + n]).unwrap();
        let data = &bytes[8 + n..];
        let mut tensors = Vec::new();
        let mut other = Map::new();
        for (name, v) in header {
            let offsets = v["data_offsets"].as_array().map(|o| {
                (
                    o[0].as_u64().unwrap() as usize,
                    o[1].as_u64().unwrap() as usize,
                )
            });
            match offsets {
                Some((a, b)) => tensors.push((
                    name,
                    Entry {
                        dtype: v["dtype"].clone(),
                        shape: v["shape"].clone(),
                        data: data[a..b].to_vec(),
                        offsets: None,
                    },
                )),
                None => {
                    other.insert(name, v);
                }
            }
        }
        Self { tensors, other }
    }

    fn to_bytes(&self) -> Vec<u8> {
        let mut header = self.other.clone();
        let mut data = Vec::new();
        for (name, e) in &self.tensors {
            let start = data.len();
            data.extend_from_slice(&e.data);
            let offsets = e
                .offsets
                .clone()
                .unwrap_or_else(|| Value::from(vec![start, data.len()]));
            header.insert(
                name.clone(),
                serde_json::json!({"dtype": e.dtype, "shape": e.shape, "data_offsets": offsets}),
            );
        }
        let json = serde_json::to_vec(&header).unwrap();
        let mut out = (json.len() as u64).to_le_bytes().to_vec();
        out.extend_from_slice(&json);
        out.extend_from_slice(&data);
        out
    }

    fn entry(&mut self, i: &Index) -> Option<&mut (String, Entry)> {
        let n = self.tensors.len();
        (n > 0).then(|| &mut self.tensors[i.index(n)])
    }
}

fn dtype_size(dtype: &Value) -> usize {
    match dtype.as_str() {
        Some("F64" | "I64" | "U64") => 8,
        Some("F32" | "I32" | "U32") => 4,
        Some("F16" | "BF16" | "I16" | "U16") => 2,
        _ => 1,
    }
}

fn dims(shape: &Value) -> Vec<u64> {
    shape
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_u64).collect())
        .unwrap_or_default()
}

/// A dimension: mostly small, sometimes absurd.
fn dim() -> impl Strategy<Value = u64> + Clone {
    prop_oneof![
        4 => 1u64..=8,
        1 => Just(0),
        1 => prop::sample::select(vec![49, 96, 1 << 20, 1 << 31, 1 << 32, 1 << 40, 1 << 62, u64::MAX]),
    ]
}

/// One change to a safetensors file.
#[derive(Clone, Debug)]
pub enum StMutation {
    /// The dtype changed, the bytes kept (consistent when the sizes agree).
    Dtype(Index, &'static str),
    /// The shape changed, the bytes kept.
    Shape(Index, Vec<u64>),
    /// The shape changed and the bytes resized to match (zeros), when that is at most 4 MB:
    /// a well-formed file holding a tensor of the wrong shape.
    Resize(Index, Vec<u64>),
    /// The tensor's own shape with one dimension (the first `Index`) set to zero and another
    /// (the second) to the given size, and no bytes: a well-formed file, and sizes that a
    /// loader reading them off shapes must not trust.
    Empty(Index, Index, Index, u64),
    /// The same elements in another shape: flat, with a leading 1, or dimensions reversed.
    Reshape(Index, u8),
    Offsets(Index, u64, u64),
    Remove(Index),
    Rename(Index, String),
    /// A second name for a tensor.
    Alias(Index, String),
    /// A header entry that is not a tensor.
    Junk(String, Value),
    /// A named tensor replaced (for the regression tests' precise inputs).
    Entry(&'static str, &'static str, Vec<u64>),
    /// The length prefix rewritten.
    HeaderLen(u64),
    /// The header's JSON text damaged (same length, so the prefix stays right).
    HeaderByte(Index, u8),
    FlipBit(Index, u8),
    Truncate(Index),
}

fn json_value() -> impl Strategy<Value = Value> + Clone {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        prop::sample::select(vec![
            0i64,
            1,
            2,
            3,
            -1,
            14,
            1 << 20,
            1 << 31,
            1 << 40,
            i64::MAX,
            i64::MIN
        ])
        .prop_map(Value::from),
        Just(Value::from(u64::MAX)),
        prop::sample::select(vec![0.5, -0.5, 1e300, -1e300, 1e-300, 3.7, 4.0, 0.25])
            .prop_map(Value::from),
        prop::sample::select(vec![
            "", "gelu", "relu", "F32", "relative", "metric", "stage99", "stem", "stage1", "???",
            "${nope}",
        ])
        .prop_map(Value::from),
    ];
    leaf.prop_recursive(2, 12, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            prop::collection::vec(("[a-z_]{1,12}", inner), 0..3)
                .prop_map(|kv| Value::Object(kv.into_iter().collect())),
        ]
    })
}

fn st_mutation() -> impl Strategy<Value = StMutation> {
    let dtype = prop::sample::select(vec![
        "F32", "F16", "BF16", "F64", "I64", "I32", "U32", "U8", "I8", "BOOL", "F8_E4M3", "U64",
        "XYZ", "",
    ]);
    let shape = prop::collection::vec(dim(), 0..=5);
    let offset = prop_oneof![0u64..70_000, Just(u64::MAX), Just(1 << 40)];
    prop_oneof![
        2 => (any::<Index>(), dtype).prop_map(|(i, d)| StMutation::Dtype(i, d)),
        2 => (any::<Index>(), shape.clone()).prop_map(|(i, s)| StMutation::Shape(i, s)),
        2 => (any::<Index>(), shape).prop_map(|(i, s)| StMutation::Resize(i, s)),
        4 => (any::<Index>(), any::<Index>(), any::<Index>(), dim())
            .prop_map(|(i, z, h, v)| StMutation::Empty(i, z, h, v)),
        2 => (any::<Index>(), 0u8..3).prop_map(|(i, k)| StMutation::Reshape(i, k)),
        1 => (any::<Index>(), offset.clone(), offset).prop_map(|(i, a, b)| StMutation::Offsets(i, a, b)),
        2 => any::<Index>().prop_map(StMutation::Remove),
        1 => (any::<Index>(), "[a-z_.0-9]{1,40}").prop_map(|(i, n)| StMutation::Rename(i, n)),
        1 => (any::<Index>(), "[a-z_.0-9]{1,40}").prop_map(|(i, n)| StMutation::Alias(i, n)),
        1 => ("[a-z_.]{1,12}", json_value()).prop_map(|(k, v)| StMutation::Junk(k, v)),
        1 => prop_oneof![
            Just(0u64), Just(1), Just(7), Just(1 << 30), Just(1 << 40), Just(u64::MAX), 0u64..100_000
        ].prop_map(StMutation::HeaderLen),
        2 => (any::<Index>(), any::<u8>()).prop_map(|(i, b)| StMutation::HeaderByte(i, b)),
        2 => (any::<Index>(), 0u8..8).prop_map(|(i, b)| StMutation::FlipBit(i, b)),
        1 => any::<Index>().prop_map(StMutation::Truncate),
    ]
}

/// Applies the structural mutations, lays the file out, then applies the byte-level ones.
pub fn mutate_safetensors(seed: &[u8], mutations: &[StMutation]) -> Vec<u8> {
    let mut st = Safetensors::parse(seed);
    for m in mutations {
        match m {
            StMutation::Dtype(i, d) => {
                if let Some((_, e)) = st.entry(i) {
                    e.dtype = Value::from(*d);
                }
            }
            StMutation::Shape(i, s) => {
                if let Some((_, e)) = st.entry(i) {
                    e.shape = Value::from(s.clone());
                }
            }
            StMutation::Resize(i, s) => {
                if let Some((_, e)) = st.entry(i) {
                    let bytes = s
                        .iter()
                        .try_fold(dtype_size(&e.dtype) as u64, |n, &d| n.checked_mul(d));
                    if let Some(bytes) = bytes.filter(|&b| b <= 4 << 20) {
                        e.data = vec![0; bytes as usize];
                    }
                    e.shape = Value::from(s.clone());
                }
            }
            StMutation::Empty(i, z, h, v) => {
                if let Some((_, e)) = st.entry(i) {
                    let mut d = dims(&e.shape);
                    if d.is_empty() {
                        d.push(0);
                    }
                    let n = d.len();
                    d[h.index(n)] = *v;
                    d[z.index(n)] = 0;
                    e.shape = Value::from(d);
                    e.data.clear();
                }
            }
            StMutation::Reshape(i, k) => {
                if let Some((_, e)) = st.entry(i) {
                    let d = dims(&e.shape);
                    e.shape = Value::from(match k {
                        0 => vec![d.iter().product::<u64>()],
                        1 => std::iter::once(1).chain(d.iter().copied()).collect(),
                        _ => d.iter().rev().copied().collect::<Vec<u64>>(),
                    });
                }
            }
            StMutation::Offsets(i, a, b) => {
                if let Some((_, e)) = st.entry(i) {
                    e.offsets = Some(Value::from(vec![*a, *b]));
                }
            }
            StMutation::Remove(i) => {
                let n = st.tensors.len();
                if n > 0 {
                    st.tensors.remove(i.index(n));
                }
            }
            StMutation::Rename(i, new) => {
                if let Some((name, _)) = st.entry(i) {
                    *name = new.clone();
                }
            }
            StMutation::Alias(i, new) => {
                if let Some((_, e)) = st.entry(i) {
                    let copy = e.clone();
                    st.tensors.push((new.clone(), copy));
                }
            }
            StMutation::Junk(k, v) => {
                st.other.insert(k.clone(), v.clone());
            }
            StMutation::Entry(name, dtype, shape) => {
                let size =
                    shape.iter().product::<u64>() as usize * dtype_size(&Value::from(*dtype));
                let entry = Entry {
                    dtype: Value::from(*dtype),
                    shape: Value::from(shape.clone()),
                    data: vec![0; size],
                    offsets: None,
                };
                st.tensors.retain(|(n, _)| n != name);
                st.tensors.push(((*name).to_owned(), entry));
            }
            _ => {}
        }
    }
    // Duplicate names (a rename onto an existing one): the last wins, as in a JSON object.
    let mut seen = std::collections::HashSet::new();
    let mut tensors = std::mem::take(&mut st.tensors);
    tensors.reverse();
    tensors.retain(|(n, _)| seen.insert(n.clone()));
    tensors.reverse();
    st.tensors = tensors;
    let mut bytes = st.to_bytes();
    let header_len = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    for m in mutations {
        let len = bytes.len();
        match m {
            StMutation::HeaderLen(n) => bytes[..8].copy_from_slice(&n.to_le_bytes()),
            StMutation::HeaderByte(i, b) if header_len > 0 && len >= 8 + header_len => {
                bytes[8 + i.index(header_len)] = *b;
            }
            StMutation::FlipBit(i, bit) if len > 0 => bytes[i.index(len)] ^= 1 << bit,
            StMutation::Truncate(i) => bytes.truncate(i.index(len + 1)),
            _ => {}
        }
    }
    bytes
}

// ---------------------------------------------------------------------------------------
// JSON and YAML configs

#[derive(Clone, Debug)]
enum Step {
    Key(String),
    At(usize),
}

/// Every node of a JSON document, as the steps leading to it (the root excluded).
fn json_paths(v: &Value, prefix: &mut Vec<Step>, out: &mut Vec<Vec<Step>>) {
    match v {
        Value::Object(map) => {
            for (k, child) in map {
                prefix.push(Step::Key(k.clone()));
                out.push(prefix.clone());
                json_paths(child, prefix, out);
                prefix.pop();
            }
        }
        Value::Array(items) => {
            for (i, child) in items.iter().enumerate() {
                prefix.push(Step::At(i));
                out.push(prefix.clone());
                json_paths(child, prefix, out);
                prefix.pop();
            }
        }
        _ => {}
    }
}

fn json_parent<'a>(root: &'a mut Value, path: &[Step]) -> Option<&'a mut Value> {
    path.iter().try_fold(root, |v, step| match step {
        Step::Key(k) => v.get_mut(k.as_str()),
        Step::At(i) => v.get_mut(*i),
    })
}

/// One change to a configuration file.
#[derive(Clone, Debug)]
pub enum ConfigMutation {
    /// JSON: a node replaced. YAML: a line's value replaced.
    Set(Index, Value),
    /// JSON: a key or element removed. YAML: a line removed.
    Remove(Index),
    /// YAML: a line repeated (duplicate keys).
    Repeat(Index),
    /// A line of text inserted (JSON: anywhere, usually breaking the syntax).
    Insert(Index, &'static str),
    Truncate(Index),
    FlipBit(Index, u8),
}

fn config_mutation() -> impl Strategy<Value = ConfigMutation> + Clone {
    let junk = prop::sample::select(vec![
        "extra_key: 1",
        "  nested_extra: [1, 2]",
        "x: &a [1, 2]\ny: *a",
        "decoder: 3",
        "- item",
        ":",
        "{",
        "key: !!binary AAAA",
        "key: ${oc.env:HOME}",
        "key: ${missing.key}",
        "loop: ${loop}",
        "\"a\": 1,",
        "\u{0}\u{1}\u{7f}",
        "cond_image_size: 1099511627776",
    ]);
    prop_oneof![
        6 => (any::<Index>(), json_value()).prop_map(|(i, v)| ConfigMutation::Set(i, v)),
        2 => any::<Index>().prop_map(ConfigMutation::Remove),
        1 => any::<Index>().prop_map(ConfigMutation::Repeat),
        1 => (any::<Index>(), junk).prop_map(|(i, j)| ConfigMutation::Insert(i, j)),
        1 => any::<Index>().prop_map(ConfigMutation::Truncate),
        1 => (any::<Index>(), 0u8..8).prop_map(|(i, b)| ConfigMutation::FlipBit(i, b)),
    ]
}

fn text_mutation(text: &mut Vec<u8>, m: &ConfigMutation) {
    let len = text.len();
    match m {
        ConfigMutation::Insert(i, junk) => {
            let at = i.index(len + 1);
            let line = format!("\n{junk}\n");
            text.splice(at..at, line.into_bytes());
        }
        ConfigMutation::Truncate(i) => text.truncate(i.index(len + 1)),
        ConfigMutation::FlipBit(i, b) if len > 0 => text[i.index(len)] ^= 1 << b,
        _ => {}
    }
}

fn mutate_json(seed: &[u8], mutations: &[ConfigMutation]) -> Vec<u8> {
    let mut doc: Value = serde_json::from_slice(seed).unwrap();
    for m in mutations {
        let mut paths = Vec::new();
        json_paths(&doc, &mut Vec::new(), &mut paths);
        if paths.is_empty() {
            continue;
        }
        match m {
            ConfigMutation::Set(i, v) => {
                if let Some(node) = json_parent(&mut doc, &paths[i.index(paths.len())]) {
                    *node = v.clone();
                }
            }
            ConfigMutation::Remove(i) | ConfigMutation::Repeat(i) => {
                let path = &paths[i.index(paths.len())];
                let (last, parent) = path.split_last().unwrap();
                if let Some(parent) = json_parent(&mut doc, parent) {
                    match (parent, last) {
                        (Value::Object(map), Step::Key(k)) => {
                            map.remove(k);
                        }
                        (Value::Array(items), Step::At(i)) => {
                            if matches!(m, ConfigMutation::Remove(_)) {
                                items.remove(*i);
                            } else {
                                let copy = items[*i].clone();
                                items.insert(*i, copy);
                            }
                        }
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }
    let mut text = serde_json::to_vec_pretty(&doc).unwrap();
    for m in mutations {
        text_mutation(&mut text, m);
    }
    text
}

/// A YAML value as text, for [`mutate_yaml`].
fn yaml_text(v: &Value) -> String {
    match v {
        Value::String(s) => format!("{s:?}"),
        other => other.to_string(),
    }
}

fn mutate_yaml(seed: &[u8], mutations: &[ConfigMutation]) -> Vec<u8> {
    let mut lines: Vec<String> = String::from_utf8(seed.to_vec())
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect();
    for m in mutations {
        if lines.is_empty() {
            break;
        }
        let n = lines.len();
        match m {
            ConfigMutation::Set(i, v) => {
                let line = &mut lines[i.index(n)];
                if let Some(colon) = line.find(':') {
                    line.truncate(colon + 1);
                    line.push(' ');
                    line.push_str(&yaml_text(v));
                }
            }
            ConfigMutation::Remove(i) => {
                lines.remove(i.index(n));
            }
            ConfigMutation::Repeat(i) => {
                let line = lines[i.index(n)].clone();
                lines.insert(i.index(n), line);
            }
            _ => {}
        }
    }
    let mut text = lines.join("\n").into_bytes();
    for m in mutations {
        text_mutation(&mut text, m);
    }
    text
}

// ---------------------------------------------------------------------------------------
// The property

/// One load of a broken checkpoint: the error, if any, and the files involved.
pub struct Run {
    pub error: Option<OrfeasError>,
    /// The file that was broken.
    pub broken: PathBuf,
    /// Files a message may name instead, where two files disagree (a configuration that
    /// parses but describes another model is reported against the weights, and the other way
    /// round).
    pub others: Vec<PathBuf>,
    _dir: tempfile::TempDir,
}

impl Run {
    /// The property: `Ok`, or one of the weights codes naming the broken file (or the file
    /// it disagrees with); no allocation sized by a claim.
    pub fn check(&self, context: &str) -> Result<(), TestCaseError> {
        if let Some(e) = &self.error {
            let text = e.to_string();
            prop_assert!(
                matches!(e.code(), "ERR_WEIGHTS_INVALID" | "ERR_WEIGHTS_NOT_FOUND"),
                "{context}: {}: {text}",
                e.code()
            );
            let named = |p: &Path| text.contains(&p.display().to_string());
            prop_assert!(
                named(&self.broken) || self.others.iter().any(|p| named(p)),
                "{context}: {} not named in: {text}",
                self.broken.display()
            );
        }
        assert_no_huge_allocation(context);
        Ok(())
    }

    /// The error's code and message (`None` when the load succeeded).
    pub fn failure(&self) -> Option<(&'static str, String)> {
        self.error.as_ref().map(|e| (e.code(), e.to_string()))
    }
}

fn write(dir: &Path, rel: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(rel);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).unwrap();
    }
    std::fs::write(&path, bytes).unwrap();
    path
}

/// Which file of a checkpoint is broken, and how.
#[derive(Clone, Debug)]
pub enum Broken {
    Weights(Vec<StMutation>),
    Config(Vec<ConfigMutation>),
    /// TripoSR's ViT `config.json`.
    VitConfig(Vec<ConfigMutation>),
    /// A PyTorch pickle (a zip): raw byte mutations.
    Pickle(Vec<StMutation>),
    /// The configuration replaced by this text (the regression tests' precise inputs).
    ConfigText(String),
    /// TripoSR's ViT `config.json` replaced by these bytes.
    VitText(Vec<u8>),
    /// The weights file replaced by these bytes.
    WeightsBytes(Vec<u8>),
}

fn broken(with_vit: bool) -> BoxedStrategy<Broken> {
    let st = prop::collection::vec(st_mutation(), 1..=3);
    let cfg = prop::collection::vec(config_mutation(), 1..=3);
    let raw = prop::collection::vec(
        prop_oneof![
            (any::<Index>(), 0u8..8).prop_map(|(i, b)| StMutation::FlipBit(i, b)),
            any::<Index>().prop_map(StMutation::Truncate),
        ],
        1..=3,
    );
    let mut options: Vec<(u32, BoxedStrategy<Broken>)> = vec![
        (4, st.prop_map(Broken::Weights).boxed()),
        (3, cfg.clone().prop_map(Broken::Config).boxed()),
        (1, raw.prop_map(Broken::Pickle).boxed()),
    ];
    if with_vit {
        options.push((1, cfg.prop_map(Broken::VitConfig).boxed()));
    }
    proptest::strategy::Union::new_weighted(options).boxed()
}

/// Byte-level mutations of a file that is not safetensors.
fn mutate_raw(seed: &[u8], mutations: &[StMutation]) -> Vec<u8> {
    let mut bytes = seed.to_vec();
    for m in mutations {
        let len = bytes.len();
        match m {
            StMutation::FlipBit(i, bit) if len > 0 => bytes[i.index(len)] ^= 1 << bit,
            StMutation::Truncate(i) => bytes.truncate(i.index(len + 1)),
            _ => {}
        }
    }
    bytes
}

/// Depth Anything: the transformers layout (`config.json` + `model.safetensors`), or the
/// authors' `.pth` alone (`Broken::Pickle`).
pub fn run_depth_anything(b: &Broken) -> Run {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let config = bytes("depth_anything/tiny/config.json");
    let weights = bytes("depth_anything/tiny/model.safetensors");
    let (load_from, broken) = match b {
        Broken::Weights(m) => {
            write(d, "config.json", config);
            let file = write(d, "model.safetensors", &mutate_safetensors(weights, m));
            (d.to_path_buf(), file)
        }
        Broken::Config(m) | Broken::VitConfig(m) => {
            write(d, "model.safetensors", weights);
            (
                d.to_path_buf(),
                write(d, "config.json", &mutate_json(config, m)),
            )
        }
        Broken::ConfigText(text) => {
            write(d, "model.safetensors", weights);
            (d.to_path_buf(), write(d, "config.json", text.as_bytes()))
        }
        Broken::VitText(_) => unreachable!("Depth Anything has no ViT config"),
        Broken::WeightsBytes(file) => {
            write(d, "config.json", config);
            (d.to_path_buf(), write(d, "model.safetensors", file))
        }
        Broken::Pickle(m) => {
            let pth = bytes("depth_anything/tiny/depth_anything_v2_tiny.pth");
            let file = write(d, "depth_anything_v2_tiny.pth", &mutate_raw(pth, m));
            (file.clone(), file)
        }
    };
    Run {
        error: load_model(&load_from, &Device::Cpu).err(),
        broken,
        others: Vec::new(),
        _dir: dir,
    }
}

/// TripoSR: `config.yaml`, `vit/config.json` and `model.safetensors` (or `model.ckpt` for
/// `Broken::Pickle`).
pub fn run_triposr(b: &Broken) -> Run {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let yaml = bytes("triposr/tiny/config.yaml");
    let vit = bytes("triposr/tiny/vit/config.json");
    let weights = bytes("triposr/tiny/model.safetensors");
    let config = write(d, "config.yaml", yaml);
    let vit_file = write(d, "vit/config.json", vit);
    let mut file = write(d, "model.safetensors", weights);
    let broken = match b {
        Broken::Weights(m) => write(d, "model.safetensors", &mutate_safetensors(weights, m)),
        Broken::WeightsBytes(file) => write(d, "model.safetensors", file),
        Broken::Config(m) => write(d, "config.yaml", &mutate_yaml(yaml, m)),
        Broken::ConfigText(text) => write(d, "config.yaml", text.as_bytes()),
        Broken::VitConfig(m) => write(d, "vit/config.json", &mutate_json(vit, m)),
        Broken::VitText(bytes) => write(d, "vit/config.json", bytes),
        Broken::Pickle(m) => {
            let ckpt = bytes("triposr/tiny/model.ckpt");
            file = write(d, "model.ckpt", &mutate_raw(ckpt, m));
            file.clone()
        }
    };
    let location = TripoSrWeights {
        config: config.clone(),
        weights: file.clone(),
    };
    let others = match b {
        Broken::Weights(_) | Broken::WeightsBytes(_) | Broken::Pickle(_) => Vec::new(),
        _ => vec![config, vit_file, file],
    };
    Run {
        error: TripoSr::load(&location, orfeas_core::Device::Cpu).err(),
        broken,
        others,
        _dir: dir,
    }
}

/// BiRefNet: `model.safetensors`.
pub fn run_birefnet(m: &[StMutation]) -> Run {
    let dir = tempfile::tempdir().unwrap();
    let seed = bytes("birefnet/model.safetensors");
    let file = write(
        dir.path(),
        "model.safetensors",
        &mutate_safetensors(seed, m),
    );
    Run {
        error: BiRefNet::load(&file, &Device::Cpu).err(),
        broken: file,
        others: Vec::new(),
        _dir: dir,
    }
}

proptest! {
    #![proptest_config(crate::config(32))]

    #[test]
    fn depth_anything_refuses_broken_checkpoints(b in broken(false)) {
        run_depth_anything(&b).check("depth anything")?;
    }

    #[test]
    fn triposr_refuses_broken_checkpoints(b in broken(true)) {
        run_triposr(&b).check("triposr")?;
    }

    #[test]
    fn birefnet_refuses_broken_checkpoints(m in prop::collection::vec(st_mutation(), 1..=3)) {
        run_birefnet(&m).check("birefnet")?;
    }
}
