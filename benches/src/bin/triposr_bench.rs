//! TripoSR's own parts on the CPU with candle, at the published size on random weights (the
//! cost does not depend on the values): the tokenizer, the 16-block backbone and the
//! post-processor per image, and the dense field (`density_grid`) at R = 128, 192 and 256, each
//! for every thread count asked for. One JSON document on stdout.
//!
//! `cargo run --release -p orfeas-benches --bin triposr_bench -- [--threads 1,2]
//!  [--resolutions 128,192,256] [--runs N]`
//!
//! Each thread count runs in a child process with `RAYON_NUM_THREADS` set, since rayon's global
//! pool (which the kernels and candle use) is sized once per process. The PyTorch side of the
//! comparison is `benches/triposr_reference.py` (same machine, same `--threads`).
#![allow(clippy::print_stdout)]

use std::process::Command;
use std::time::Instant;

use orfeas_benches::median;
use orfeas_core::models::triposr::bench::RandomParts;
use orfeas_core::CancelToken;

// The `orfeas` binary's allocator set-up (orfeas-server/src/allocator.rs), so the figure is
// the one the CLI and server get.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// `mi_option_purge_delay` in mimalloc v2 (see orfeas-server/src/allocator.rs).
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Set in the child processes: run one thread count and print its JSON object.
const CHILD: &str = "ORFEAS_TRIPOSR_BENCH_CHILD";

struct Args {
    threads: Vec<usize>,
    resolutions: Vec<usize>,
    runs: usize,
}

fn list(value: Option<String>, flag: &str) -> Result<Vec<usize>, String> {
    let value = value.ok_or(format!("{flag} needs a value"))?;
    value
        .split(',')
        .map(|v| v.trim().parse().map_err(|e| format!("{flag} {v}: {e}")))
        .collect()
}

fn parse() -> Result<Args, String> {
    let mut args = Args {
        threads: vec![1, 2],
        resolutions: vec![128, 192, 256],
        runs: 2,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        match flag.as_str() {
            "--threads" => args.threads = list(it.next(), "--threads")?,
            "--resolutions" => args.resolutions = list(it.next(), "--resolutions")?,
            "--runs" => {
                args.runs = list(it.next(), "--runs")?
                    .first()
                    .copied()
                    .unwrap_or(1)
                    .max(1)
            }
            other => return Err(format!("unknown argument {other}")),
        }
    }
    Ok(args)
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| {
            let v: Vec<&str> = l.split_whitespace().take(3).collect();
            (v.len() == 3).then(|| format!("[{}]", v.join(",")))
        })
        .unwrap_or_else(|| "null".into())
}

fn seconds(times: &[f64]) -> String {
    let min = times.iter().copied().fold(f64::INFINITY, f64::min);
    format!(
        "{{\"median_s\":{:.3},\"min_s\":{min:.3},\"runs\":{}}}",
        median(times),
        times.len()
    )
}

/// One thread count, in this process.
fn child(args: &Args) -> Result<(), Box<dyn std::error::Error>> {
    let load_before = load_average();
    let t = Instant::now();
    let parts = RandomParts::published()?;
    let build_s = t.elapsed().as_secs_f64();
    // Warm-up (page faults of the packed weights, thread pool start), then timed runs.
    let mut code = parts.scene_code(&mut |_| {})?;
    let (mut totals, mut blocks, mut upsample) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..args.runs {
        let start = Instant::now();
        let mut last = start;
        let mut block_times = Vec::new();
        let mut upsample_s = 0.0;
        code = parts.scene_code(&mut |stage| {
            let now = Instant::now();
            let dt = (now - last).as_secs_f64();
            last = now;
            match stage {
                "block" => block_times.push(dt),
                "upsample" => upsample_s = dt,
                _ => {}
            }
        })?;
        totals.push(start.elapsed().as_secs_f64());
        blocks.push(median(&block_times));
        upsample.push(upsample_s);
    }
    let mut fields = Vec::new();
    for &r in &args.resolutions {
        let mut times = Vec::new();
        let mut above = 0;
        for _ in 0..args.runs {
            let start = Instant::now();
            let grid = parts.density_grid(&code, r, &CancelToken::new(), &mut |_| {})?;
            times.push(start.elapsed().as_secs_f64());
            above = grid.values.iter().filter(|&&v| v > 25.0).count();
        }
        let best = times.iter().copied().fold(f64::INFINITY, f64::min);
        fields.push(format!(
            "{{\"resolution\":{r},\"time\":{},\"points_per_s\":{:.0},\"gflop_per_s\":{:.1},\"above_iso\":{above}}}",
            seconds(&times),
            (r * r * r) as f64 / best,
            (r * r * r) as f64 * FLOP_PER_POINT / best / 1e9,
        ));
    }
    // Vertex colours: one query of as many points as a mesh at R = 256 has vertices (~1 M).
    let points: Vec<[f32; 3]> = (0..1 << 20)
        .map(|i| {
            let f =
                |k: u32| ((i * 2_654_435_761u32.wrapping_add(k)) >> 8) as f32 / 8_388_608.0 - 1.0;
            [f(1) * 0.87, f(2) * 0.87, f(3) * 0.87]
        })
        .collect();
    let start = Instant::now();
    parts.color(&code, &points)?;
    let color_s = start.elapsed().as_secs_f64();
    println!(
        "{{\"threads\":{},\"build_s\":{build_s:.3},\"scene_code\":{},\"block_median_s\":{:.3},\"upsample_s\":{:.3},\"blocks\":{},\"fields\":[{}],\"color_1m_points_s\":{color_s:.3},\"load_average_before\":{load_before},\"load_average_after\":{}}}",
        std::env::var("RAYON_NUM_THREADS").unwrap_or_default(),
        seconds(&totals),
        median(&blocks),
        median(&upsample),
        parts.num_layers(),
        fields.join(","),
        load_average(),
    );
    Ok(())
}

/// The published MLP's multiply-adds per point, twice: 120 → 64, 8 × 64 → 64, 64 → 4.
const FLOP_PER_POINT: f64 = 2.0 * (120.0 * 64.0 + 8.0 * 64.0 * 64.0 + 64.0 * 4.0);

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // SAFETY: a plain integer option of the allocator above, set before any purge.
    #[allow(unsafe_code)]
    unsafe {
        libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, -1);
    }
    let args = parse()?;
    if std::env::var_os(CHILD).is_some() {
        return child(&args);
    }
    let exe = std::env::current_exe()?;
    let mut results = Vec::new();
    for &threads in &args.threads {
        let out = Command::new(&exe)
            .args(std::env::args().skip(1))
            .env(CHILD, "1")
            .env("RAYON_NUM_THREADS", threads.to_string())
            .output()?;
        if !out.status.success() {
            return Err(format!(
                "{threads} threads: {}",
                String::from_utf8_lossy(&out.stderr)
            )
            .into());
        }
        results.push(String::from_utf8(out.stdout)?.trim().to_string());
    }
    println!(
        "{{\"impl\":\"candle\",\"model\":\"triposr parts, published shapes, random weights\",\"cpu_threads_available\":{},\"results\":[{}]}}",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        results.join(",")
    );
    Ok(())
}
