//! Images per second of Depth Anything V2 on the CPU with candle: loads a transformers-layout
//! weights directory through the real loading code and times `forward` on a `[1, 3, S, S]`
//! input (median of RUNS after one warm-up). `benches/depth_anything_compare.sh` runs it side
//! by side with PyTorch on the same weights and thread count.
//!
//! `cargo run --release -p orfeas-benches --bin da_forward -- WEIGHTS_DIR [SIZE [RUNS]]`
#![allow(clippy::print_stdout)]

use std::path::PathBuf;
use std::time::Instant;

use candle_core::{Device, Tensor};
use orfeas_benches::median;
use orfeas_core::depth::depth_anything::load_model;

// The `orfeas` binary's allocator set-up (orfeas-server/src/allocator.rs), so the figure is
// the one the CLI and server get.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// `mi_option_purge_delay` in mimalloc v2 (see orfeas-server/src/allocator.rs).
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // SAFETY: a plain integer option of the allocator above, set before any purge.
    #[allow(unsafe_code)]
    unsafe {
        libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, -1);
    }
    let mut args = std::env::args().skip(1);
    let dir = PathBuf::from(
        args.next()
            .ok_or("usage: da_forward WEIGHTS_DIR [SIZE [RUNS]]")?,
    );
    let size: usize = args.next().map(|s| s.parse()).transpose()?.unwrap_or(518);
    let runs: usize = args
        .next()
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(5)
        .max(1);
    let device = Device::Cpu;
    let model = load_model(&dir, &device)?;
    // Deterministic, image-like input: the values do not change the cost.
    let values: Vec<f32> = (0..3 * size * size)
        .map(|i| ((i * 7919 % 1000) as f32 / 500.0) - 1.0)
        .collect();
    let input = Tensor::from_vec(values, (1, 3, size, size), &device)?;
    let warm = Instant::now();
    let out = model.forward(&input)?;
    let warm_s = warm.elapsed().as_secs_f64();
    let mut times = Vec::with_capacity(runs);
    for _ in 0..runs {
        let t = Instant::now();
        model.forward(&input)?;
        times.push(t.elapsed().as_secs_f64());
    }
    let med = median(&times);
    println!(
        "{{\"impl\":\"candle\",\"size\":{size},\"threads\":{},\"warmup_s\":{warm_s:.3},\"median_s\":{med:.3},\"images_per_s\":{:.3},\"out_shape\":{:?},\"runs\":{runs}}}",
        candle_core::utils::get_num_threads(),
        1.0 / med,
        out.dims()
    );
    Ok(())
}
