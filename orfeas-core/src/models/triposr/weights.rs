//! Reading a TripoSR checkpoint: the published `model.ckpt` (a `torch.save`d state dict, read
//! by candle's unpickler, which rebuilds tensors and never runs code from the file) or the same
//! tensors as `model.safetensors`.
//!
//! Names, dtypes and shapes are read first (the pickle's index, the safetensors header) and
//! compared with the table [`expected`] derives from config.yaml, so a mismatched or
//! half-downloaded 1.7 GB file is refused in milliseconds, before any tensor data is read, with
//! the first missing, misshaped or unexpected tensor named. Data is then read one tensor at a
//! time, when the model asks for it ([`var_builder`]): each layer packs its tensor for the CPU
//! kernels and drops it before the next is read, so the file is never in memory beside the
//! packed model, and the allocator reuses one tensor's pages for the next (fresh pages cost the
//! kernel a zeroing each: reading everything first made loading take nearly twice as long).

use std::collections::HashMap;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use candle_core::{DType, Device, Shape, Tensor};
use candle_nn::var_builder::SimpleBackend;
use candle_nn::VarBuilder;

use super::config::{FeedForwardKind, TripoSrConfig};
use crate::error::{OrfeasError, Result};

/// One tensor the model needs (or may ignore).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ExpectedTensor {
    pub name: String,
    pub shape: Vec<usize>,
    /// ViTModel's pooler: in the published file, never used by TripoSR (it reads
    /// `last_hidden_state`), so it may be absent and is not loaded.
    pub ignored: bool,
}

/// Every tensor of the model `config` describes, in the model's order, with the names of the
/// authors' state dict (transformers 4.35's ViT keys under `image_tokenizer.model.`).
pub(crate) fn expected(config: &TripoSrConfig) -> Vec<ExpectedTensor> {
    let mut t = Table::default();
    vit(&mut t, config);
    let tk = &config.tokenizer;
    t.add(
        "tokenizer.embeddings",
        &[3, tk.num_channels, tk.plane_size, tk.plane_size],
    );
    backbone(&mut t, config);
    let p = &config.post_processor;
    t.add(
        "post_processor.upsample.weight",
        &[p.in_channels, p.out_channels, 2, 2],
    );
    t.add("post_processor.upsample.bias", &[p.out_channels]);
    let d = &config.decoder;
    let hidden = d.n_hidden_layers.max(1);
    for i in 0..=hidden {
        let (out, inp) = match i {
            0 => (d.n_neurons, d.in_channels),
            i if i == hidden => (4, d.n_neurons),
            _ => (d.n_neurons, d.n_neurons),
        };
        // nn.Sequential numbering: a linear layer, then its activation.
        t.linear(&format!("decoder.layers.{}", 2 * i), out, inp, d.bias);
    }
    t.0
}

#[derive(Default)]
struct Table(Vec<ExpectedTensor>);

impl Table {
    fn add(&mut self, name: &str, shape: &[usize]) {
        self.0.push(ExpectedTensor {
            name: name.to_owned(),
            shape: shape.to_vec(),
            ignored: false,
        });
    }

    fn linear(&mut self, prefix: &str, out: usize, inp: usize, bias: bool) {
        self.add(&format!("{prefix}.weight"), &[out, inp]);
        if bias {
            self.add(&format!("{prefix}.bias"), &[out]);
        }
    }

    fn norm(&mut self, prefix: &str, dim: usize) {
        self.add(&format!("{prefix}.weight"), &[dim]);
        self.add(&format!("{prefix}.bias"), &[dim]);
    }
}

fn vit(t: &mut Table, config: &TripoSrConfig) {
    let v = &config.vit;
    let (h, p) = (v.hidden_size, v.patch_size);
    let m = "image_tokenizer.model";
    t.add(&format!("{m}.embeddings.cls_token"), &[1, 1, h]);
    t.add(
        &format!("{m}.embeddings.position_embeddings"),
        &[1, v.grid() * v.grid() + 1, h],
    );
    let proj = format!("{m}.embeddings.patch_embeddings.projection");
    t.add(&format!("{proj}.weight"), &[h, v.num_channels, p, p]);
    t.add(&format!("{proj}.bias"), &[h]);
    for i in 0..v.num_hidden_layers {
        let l = format!("{m}.encoder.layer.{i}");
        for qkv in ["query", "key", "value"] {
            t.linear(&format!("{l}.attention.attention.{qkv}"), h, h, v.qkv_bias);
        }
        t.linear(&format!("{l}.attention.output.dense"), h, h, true);
        t.linear(
            &format!("{l}.intermediate.dense"),
            v.intermediate_size,
            h,
            true,
        );
        t.linear(&format!("{l}.output.dense"), h, v.intermediate_size, true);
        t.norm(&format!("{l}.layernorm_before"), h);
        t.norm(&format!("{l}.layernorm_after"), h);
    }
    t.norm(&format!("{m}.layernorm"), h);
    for (name, shape) in [("weight", vec![h, h]), ("bias", vec![h])] {
        t.0.push(ExpectedTensor {
            name: format!("{m}.pooler.dense.{name}"),
            shape,
            ignored: true,
        });
    }
}

fn backbone(t: &mut Table, config: &TripoSrConfig) {
    let b = &config.backbone;
    let (c, inner) = (b.in_channels, b.inner_dim());
    t.norm("backbone.norm", c);
    t.linear("backbone.proj_in", inner, c, true);
    let ff_inner = 4 * inner;
    for i in 0..b.num_layers {
        let blk = format!("backbone.transformer_blocks.{i}");
        let norm = |t: &mut Table, n: &str| {
            if b.norm_elementwise_affine {
                t.norm(&format!("{blk}.{n}"), inner);
            }
        };
        let attention = |t: &mut Table, a: &str, kv_dim: usize| {
            t.linear(&format!("{blk}.{a}.to_q"), inner, inner, b.attention_bias);
            t.linear(&format!("{blk}.{a}.to_k"), inner, kv_dim, b.attention_bias);
            t.linear(&format!("{blk}.{a}.to_v"), inner, kv_dim, b.attention_bias);
            t.linear(&format!("{blk}.{a}.to_out.0"), inner, inner, true);
        };
        norm(t, "norm1");
        attention(t, "attn1", inner);
        if let Some(cross) = b.cross_attention_dim {
            norm(t, "norm2");
            attention(t, "attn2", cross);
        }
        norm(t, "norm3");
        let proj = match b.activation_fn {
            FeedForwardKind::Geglu => 2 * ff_inner,
            FeedForwardKind::Gelu
            | FeedForwardKind::GeluApproximate
            | FeedForwardKind::GegluApproximate => ff_inner,
        };
        t.linear(&format!("{blk}.ff.net.0.proj"), proj, inner, true);
        t.linear(&format!("{blk}.ff.net.2"), inner, ff_inner, true);
    }
    t.linear("backbone.proj_out", c, inner, true);
}

/// What a checkpoint file holds, before any tensor data is read.
enum Checkpoint {
    Safetensors {
        /// Locked while one tensor is read (a seek, then a read).
        file: Mutex<File>,
        /// Where the data section starts.
        data_start: u64,
        entries: HashMap<String, Entry>,
    },
    Pickle {
        tensors: candle_core::pickle::PthTensors,
        /// The zip file, to verify each tensor's checksum (candle's reader stops before the end
        /// of an entry, where the zip reader checks it).
        file: PathBuf,
    },
}

/// A tensor's dtype, shape and (safetensors) byte range in the data section.
struct Entry {
    dtype: DType,
    shape: Vec<usize>,
    range: (u64, u64),
}

/// The model's tensors from `file` (model.ckpt or model.safetensors), as f32 on the CPU, after
/// checking every name and shape against `config` (ERR_WEIGHTS_INVALID naming `file` and the
/// first bad tensor otherwise). All at once, for the tests: the model reads them one by one
/// through [`var_builder`].
#[cfg(test)]
pub(crate) fn load(file: &Path, config: &TripoSrConfig) -> Result<HashMap<String, Tensor>> {
    let invalid = |detail: String| OrfeasError::WeightsInvalid {
        path: file.to_path_buf(),
        detail,
    };
    let checkpoint = Checkpoint::open(file).map_err(invalid)?;
    let found = checkpoint.index();
    let expected = expected(config);
    check(&found, &expected).map_err(invalid)?;
    let mut tensors = HashMap::with_capacity(expected.len());
    for t in expected.iter().filter(|t| !t.ignored) {
        let tensor = checkpoint
            .read(&t.name)
            .map_err(|e| invalid(format!("cannot read tensor {}: {e}", t.name)))?;
        tensors.insert(t.name.clone(), tensor);
    }
    Ok(tensors)
}

/// The checkpoint `file`, its names and shapes checked against `config` before any data is
/// read, as a `VarBuilder` that reads each tensor (as f32, onto `device`) when the model asks
/// for it.
pub(crate) fn var_builder(
    file: &Path,
    config: &TripoSrConfig,
    device: &Device,
) -> Result<VarBuilder<'static>> {
    let invalid = |detail: String| OrfeasError::WeightsInvalid {
        path: file.to_path_buf(),
        detail,
    };
    let checkpoint = Checkpoint::open(file).map_err(invalid)?;
    check(&checkpoint.index(), &expected(config)).map_err(invalid)?;
    Ok(VarBuilder::from_backend(
        Box::new(OnDemand(checkpoint)),
        DType::F32,
        device.clone(),
    ))
}

/// A checked checkpoint read one tensor at a time.
struct OnDemand(Checkpoint);

impl OnDemand {
    fn read(&self, name: &str, dtype: DType, device: &Device) -> candle_core::Result<Tensor> {
        self.0
            .read(name)
            .map_err(|e| candle_core::Error::Msg(format!("cannot read tensor {name}: {e}")))?
            .to_dtype(dtype)?
            .to_device(device)
    }
}

impl SimpleBackend for OnDemand {
    fn get(
        &self,
        shape: Shape,
        name: &str,
        _: candle_nn::Init,
        dtype: DType,
        device: &Device,
    ) -> candle_core::Result<Tensor> {
        let tensor = self.read(name, dtype, device)?;
        if tensor.shape() != &shape {
            candle_core::bail!(
                "tensor {name} has shape {:?}, the model needs {:?}",
                tensor.dims(),
                shape.dims()
            );
        }
        Ok(tensor)
    }

    fn get_unchecked(
        &self,
        name: &str,
        dtype: DType,
        device: &Device,
    ) -> candle_core::Result<Tensor> {
        self.read(name, dtype, device)
    }

    fn contains_tensor(&self, name: &str) -> bool {
        match &self.0 {
            Checkpoint::Safetensors { entries, .. } => entries.contains_key(name),
            Checkpoint::Pickle { tensors, .. } => tensors.tensor_infos().contains_key(name),
        }
    }
}

/// The first problem of a checkpoint's `(name → (dtype, shape))` index against the table:
/// expected tensors in model order (missing, wrong dtype, wrong shape), then unexpected ones in
/// name order; with the number of problems when there are several.
fn check(
    found: &HashMap<&str, (DType, &[usize])>,
    expected: &[ExpectedTensor],
) -> Result<(), String> {
    let mut problems = Vec::new();
    for t in expected {
        match found.get(t.name.as_str()) {
            None if t.ignored => {}
            None => problems.push(format!(
                "tensor {} is missing (config.yaml gives it shape {:?})",
                t.name, t.shape
            )),
            Some((dtype, _)) if !matches!(dtype, DType::F32 | DType::F16 | DType::BF16) => problems
                .push(format!(
                    "tensor {} is {dtype:?}; only float32, float16 and bfloat16 weights load",
                    t.name
                )),
            Some((_, shape)) if *shape != t.shape.as_slice() => problems.push(format!(
                "tensor {} has shape {shape:?}, config.yaml gives {:?}",
                t.name, t.shape
            )),
            Some(_) => {}
        }
    }
    let mut unexpected: Vec<_> = found
        .iter()
        .filter(|(name, _)| !expected.iter().any(|t| t.name == **name))
        .collect();
    unexpected.sort_by_key(|(name, _)| **name);
    for (name, (_, shape)) in unexpected {
        problems.push(format!(
            "unexpected tensor {name} (shape {shape:?}): not part of the model config.yaml describes"
        ));
    }
    match problems.as_slice() {
        [] => Ok(()),
        [only] => Err(only.clone()),
        [first, ..] => Err(format!("{first} ({} problems in all)", problems.len())),
    }
}

impl Checkpoint {
    fn open(file: &Path) -> Result<Self, String> {
        let len = std::fs::metadata(file)
            .map_err(|e| format!("cannot read the file: {e}"))?
            .len();
        if len == 0 {
            return Err("the file is empty (an interrupted download?)".to_owned());
        }
        let is_safetensors = file
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("safetensors"));
        if is_safetensors {
            open_safetensors(file, len)
        } else {
            open_pickle(file)
        }
    }

    fn index(&self) -> HashMap<&str, (DType, &[usize])> {
        match self {
            Self::Safetensors { entries, .. } => entries
                .iter()
                .map(|(k, e)| (k.as_str(), (e.dtype, e.shape.as_slice())))
                .collect(),
            Self::Pickle { tensors, .. } => tensors
                .tensor_infos()
                .iter()
                .map(|(k, info)| (k.as_str(), (info.dtype, info.layout.dims())))
                .collect(),
        }
    }

    /// One tensor's data as a contiguous f32 CPU tensor.
    fn read(&self, name: &str) -> Result<Tensor, String> {
        let tensor = match self {
            Self::Safetensors {
                file,
                data_start,
                entries,
            } => {
                let e = entries.get(name).ok_or("not in the file")?;
                let mut bytes = vec![0u8; (e.range.1 - e.range.0) as usize];
                let mut f = file.lock().unwrap_or_else(|p| p.into_inner());
                f.seek(SeekFrom::Start(data_start + e.range.0))
                    .and_then(|_| f.read_exact(&mut bytes))
                    .map_err(|err| format!("{err} (a truncated file?)"))?;
                Tensor::from_raw_buffer(&bytes, e.dtype, &e.shape, &Device::Cpu)
                    .map_err(|err| root(&err))?
            }
            Self::Pickle { tensors, file } => {
                let tensor = guarded(|| tensors.get(name))?
                    .map_err(|err| root(&err))?
                    .ok_or("not in the file")?;
                let entry = &tensors.tensor_infos()[name].path;
                verify_zip_entry(file, entry)?;
                tensor
            }
        };
        tensor
            .to_dtype(DType::F32)
            .and_then(|t| t.contiguous())
            .map_err(|err| root(&err))
    }
}

/// Reads a zip entry to its end, where the zip reader compares its CRC-32 with the one the
/// archive records: a download damaged inside a tensor's data is refused, not loaded as
/// garbage weights. (Re-reading from the page cache costs a fraction of a second for the
/// published 1.7 GB.)
fn verify_zip_entry(file: &Path, entry: &str) -> Result<(), String> {
    let reader = std::io::BufReader::new(File::open(file).map_err(|e| e.to_string())?);
    let mut zip = zip::ZipArchive::new(reader).map_err(|e| e.to_string())?;
    let mut data = zip.by_name(entry).map_err(|e| e.to_string())?;
    std::io::copy(&mut data, &mut std::io::sink())
        .map(|_| ())
        .map_err(|e| format!("its data is damaged ({e}): download the file again"))
}

/// Runs candle's unpickler, turning a panic on a malformed file into an error: a damaged
/// download must be refused with a message, never bring the process down.
fn guarded<T>(f: impl FnOnce() -> T) -> Result<T, String> {
    catch_unwind(AssertUnwindSafe(f))
        .map_err(|_| "the PyTorch checkpoint is malformed (its unpickling failed)".to_owned())
}

fn root(e: &candle_core::Error) -> String {
    crate::depth::depth_anything::root(e).to_string()
}

fn open_pickle(file: &Path) -> Result<Checkpoint, String> {
    let not_readable = |e: String| {
        format!(
            "not a readable PyTorch checkpoint (a torch.save zip file; damaged or cut short?): {e}"
        )
    };
    let plain = guarded(|| candle_core::pickle::PthTensors::new(file, None))
        .map_err(not_readable)?
        .map_err(|e| not_readable(root(&e)))?;
    if !plain.tensor_infos().is_empty() {
        return Ok(Checkpoint::Pickle {
            tensors: plain,
            file: file.to_path_buf(),
        });
    }
    // Lightning-style checkpoints nest the state dict under "state_dict".
    let nested = guarded(|| candle_core::pickle::PthTensors::new(file, Some("state_dict")))
        .ok()
        .and_then(|r| r.ok())
        .filter(|p| !p.tensor_infos().is_empty());
    nested
        .map(|tensors| Checkpoint::Pickle {
            tensors,
            file: file.to_path_buf(),
        })
        .ok_or_else(|| {
            "the PyTorch checkpoint holds no tensors (neither a state dict nor one under \
         \"state_dict\")"
                .to_owned()
        })
}

/// Parses a safetensors header (8-byte little-endian length, then JSON) and checks every
/// tensor's byte range against its dtype, its shape and the file's length.
fn open_safetensors(path: &Path, len: u64) -> Result<Checkpoint, String> {
    /// safetensors' own limit on the header.
    const MAX_HEADER: u64 = 100_000_000;
    let mut file = File::open(path).map_err(|e| format!("cannot open the file: {e}"))?;
    let not_safetensors = |why: String| format!("not a readable safetensors file: {why}");
    if len < 8 {
        return Err(not_safetensors(format!(
            "{len} bytes is shorter than the header"
        )));
    }
    let mut n = [0u8; 8];
    file.read_exact(&mut n)
        .map_err(|e| not_safetensors(e.to_string()))?;
    let n = u64::from_le_bytes(n);
    if n > MAX_HEADER || n > len - 8 {
        return Err(not_safetensors(format!(
            "its header would be {n} bytes in a {len}-byte file"
        )));
    }
    let mut header = vec![0u8; n as usize];
    file.read_exact(&mut header)
        .map_err(|e| not_safetensors(e.to_string()))?;
    let header: serde_json::Value = serde_json::from_slice(&header)
        .map_err(|e| not_safetensors(format!("header is not JSON: {e}")))?;
    let header = header
        .as_object()
        .ok_or_else(|| not_safetensors("header is not a JSON object".to_owned()))?;
    let data_start = 8 + n;
    let mut entries = HashMap::with_capacity(header.len());
    for (name, info) in header {
        if name == "__metadata__" {
            continue;
        }
        let entry =
            safetensors_entry(info).map_err(|e| not_safetensors(format!("tensor {name}: {e}")))?;
        match data_start.checked_add(entry.range.1) {
            Some(end) if end <= len => {}
            end => {
                return Err(format!(
                    "the file is truncated: tensor {name} ends at byte {} of a {len}-byte file \
                     (an interrupted download?)",
                    end.map_or_else(
                        || format!("{data_start} + {}", entry.range.1),
                        |e| e.to_string()
                    )
                ))
            }
        }
        entries.insert(name.clone(), entry);
    }
    Ok(Checkpoint::Safetensors {
        file: Mutex::new(file),
        data_start,
        entries,
    })
}

fn safetensors_entry(info: &serde_json::Value) -> Result<Entry, String> {
    let dtype = match info.get("dtype").and_then(|d| d.as_str()) {
        Some("F32") => DType::F32,
        Some("F16") => DType::F16,
        Some("BF16") => DType::BF16,
        Some("F64") => DType::F64,
        Some("I64") => DType::I64,
        Some("U32") => DType::U32,
        Some("U8") => DType::U8,
        Some(other) => return Err(format!("dtype {other} is not supported")),
        None => return Err("no dtype".to_owned()),
    };
    let shape = info
        .get("shape")
        .and_then(|s| s.as_array())
        .and_then(|dims| {
            dims.iter()
                .map(|d| d.as_u64().map(|d| d as usize))
                .collect::<Option<Vec<_>>>()
        })
        .ok_or("no shape")?;
    let range = match info
        .get("data_offsets")
        .and_then(|o| o.as_array())
        .map(|o| o.as_slice())
    {
        Some([a, b]) => match (a.as_u64(), b.as_u64()) {
            (Some(a), Some(b)) if a <= b => (a, b),
            _ => return Err("bad data_offsets".to_owned()),
        },
        _ => return Err("no data_offsets".to_owned()),
    };
    let bytes = shape
        .iter()
        .try_fold(dtype.size_in_bytes() as u64, |acc, &d| {
            acc.checked_mul(d as u64)
        })
        .ok_or("shape overflows")?;
    if range.1 - range.0 != bytes {
        return Err(format!(
            "{} data bytes for shape {shape:?} of {dtype:?} ({bytes} needed)",
            range.1 - range.0
        ));
    }
    Ok(Entry {
        dtype,
        shape,
        range,
    })
}
