//! GPU telemetry, shaped like the server's `/api/gpu-stats` (`available: false` without a GPU).

use napi_derive::napi;

/// One GPU at the time of the query.
#[napi(object, object_from_js = false)]
#[derive(Debug)]
pub struct GpuInfo {
    pub index: u32,
    pub name: String,
    pub memory_used_mb: f64,
    pub memory_total_mb: f64,
    pub utilization_percent: Option<u32>,
    pub temperature_c: Option<u32>,
}

/// Slot usage of a `BatchProcessor`.
#[napi(object, object_from_js = false)]
#[derive(Debug)]
pub struct SlotCounts {
    pub total: u32,
    pub busy: u32,
}

/// Every NVIDIA GPU, or why there is none.
#[napi(object, object_from_js = false)]
#[derive(Debug)]
pub struct GpuStats {
    pub available: bool,
    pub gpus: Vec<GpuInfo>,
    /// Why `available` is false (no driver, no device, feature not built).
    pub reason: Option<String>,
    /// Only from `BatchProcessor.gpuStats()`.
    pub slots: Option<SlotCounts>,
    /// Jobs waiting for a slot; only from `BatchProcessor.gpuStats()`.
    pub queue: Option<u32>,
}

impl From<orfeas_core::GpuStats> for GpuStats {
    fn from(s: orfeas_core::GpuStats) -> Self {
        Self {
            available: s.available,
            gpus: s
                .gpus
                .into_iter()
                .map(|g| GpuInfo {
                    index: g.index,
                    name: g.name,
                    memory_used_mb: g.memory_used_mb as f64,
                    memory_total_mb: g.memory_total_mb as f64,
                    utilization_percent: g.utilization_percent,
                    temperature_c: g.temperature_c,
                })
                .collect(),
            reason: s.reason,
            slots: None,
            queue: None,
        }
    }
}

/// GPU telemetry. Never throws: without an NVIDIA GPU/driver it returns `available: false`
/// and the reason.
#[napi]
pub fn gpu_stats() -> GpuStats {
    GpuStats::from(orfeas_core::gpu_stats())
}
