//! GPU telemetry through NVML, for progress displays and the server's GPU monitor.
//!
//! NVML is loaded at run time: a machine without an NVIDIA driver (or a build without the
//! `nvml` feature) reports `available: false` with the reason, never an error. Telemetry is
//! informational; nothing in the pipeline depends on it.

use serde::Serialize;

/// One GPU's state at the time of the query.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct GpuInfo {
    pub index: u32,
    pub name: String,
    pub memory_used_mb: u64,
    pub memory_total_mb: u64,
    /// Percent of the last sample period with a kernel running; `None` when not reported.
    pub utilization_percent: Option<u32>,
    pub temperature_c: Option<u32>,
}

/// All GPUs, or why there are none.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct GpuStats {
    pub available: bool,
    pub gpus: Vec<GpuInfo>,
    /// Why `available` is false (no driver, no device, feature off).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl GpuStats {
    fn unavailable(reason: impl Into<String>) -> Self {
        Self {
            available: false,
            gpus: Vec::new(),
            reason: Some(reason.into()),
        }
    }
}

/// Queries every NVIDIA GPU. Cheap after the first call (the NVML handle is kept).
pub fn gpu_stats() -> GpuStats {
    imp::query()
}

#[cfg(feature = "nvml")]
mod imp {
    use std::sync::OnceLock;

    use nvml_wrapper::enum_wrappers::device::TemperatureSensor;
    use nvml_wrapper::Nvml;

    use super::{GpuInfo, GpuStats};

    static NVML: OnceLock<Result<Nvml, String>> = OnceLock::new();

    pub(super) fn query() -> GpuStats {
        let nvml = match NVML.get_or_init(|| Nvml::init().map_err(|e| e.to_string())) {
            Ok(n) => n,
            Err(e) => return GpuStats::unavailable(format!("no NVIDIA GPU/driver ({e})")),
        };
        let count = match nvml.device_count() {
            Ok(n) => n,
            Err(e) => return GpuStats::unavailable(format!("NVML could not count devices: {e}")),
        };
        let gpus: Vec<GpuInfo> = (0..count)
            .filter_map(|index| {
                let d = nvml.device_by_index(index).ok()?;
                let mem = d.memory_info().ok();
                Some(GpuInfo {
                    index,
                    name: d.name().unwrap_or_else(|_| format!("GPU {index}")),
                    memory_used_mb: mem.as_ref().map_or(0, |m| m.used >> 20),
                    memory_total_mb: mem.as_ref().map_or(0, |m| m.total >> 20),
                    utilization_percent: d.utilization_rates().ok().map(|u| u.gpu),
                    temperature_c: d.temperature(TemperatureSensor::Gpu).ok(),
                })
            })
            .collect();
        if gpus.is_empty() {
            return GpuStats::unavailable("NVML found no GPU");
        }
        GpuStats {
            available: true,
            gpus,
            reason: None,
        }
    }
}

#[cfg(not(feature = "nvml"))]
mod imp {
    use super::GpuStats;

    pub(super) fn query() -> GpuStats {
        GpuStats::unavailable("orfeas was built without the `nvml` feature")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_fails_and_explains_absence() {
        let s = gpu_stats();
        if s.available {
            assert!(!s.gpus.is_empty() && s.reason.is_none());
        } else {
            assert!(s.gpus.is_empty());
            assert!(s.reason.as_deref().is_some_and(|r| !r.is_empty()));
        }
        let v = serde_json::to_value(&s).expect("json");
        assert_eq!(v["available"], s.available);
        assert!(v["gpus"].is_array());
    }
}
