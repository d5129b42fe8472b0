//! The `process_*` metrics every Prometheus client library exports for its
//! own process (<https://prometheus.io/docs/instrumenting/writing_clientlibs/#process-metrics>):
//! CPU time, memory, open file descriptors, threads and start time, read
//! from `/proc/self` by the `metrics-process` crate at each scrape.

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Unit;

use super::families::help;

/// Encodes the process metrics of the calling process on every scrape.
/// A value the system does not give (no `/proc`) is left out.
#[derive(Debug, Default)]
pub struct ProcessCollector;

impl Collector for ProcessCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let m = metrics_process::collector::collect();
        if let Some(cpu) = m.cpu_seconds_total {
            let metric = encoder.encode_descriptor(
                "process_cpu",
                &format!("{}.", help("process_cpu_seconds_total")),
                Some(&Unit::Seconds),
                MetricType::Counter,
            )?;
            ConstCounter::new(cpu).encode(metric)?;
        }
        let gauges = [
            ("process_open_fds", "process_open_fds", None, m.open_fds),
            (
                "process_max_fds",
                "process_max_fds",
                None,
                // 0 is how the crate says "unlimited".
                m.max_fds.filter(|&n| n > 0),
            ),
            (
                "process_virtual_memory",
                "process_virtual_memory_bytes",
                Some(Unit::Bytes),
                m.virtual_memory_bytes,
            ),
            (
                "process_resident_memory",
                "process_resident_memory_bytes",
                Some(Unit::Bytes),
                m.resident_memory_bytes,
            ),
            (
                "process_start_time",
                "process_start_time_seconds",
                Some(Unit::Seconds),
                m.start_time_seconds,
            ),
            ("process_threads", "process_threads", None, m.threads),
        ];
        for (name, full_name, unit, value) in gauges {
            let Some(value) = value else { continue };
            let help = format!("{}.", help(full_name));
            let metric =
                encoder.encode_descriptor(name, &help, unit.as_ref(), MetricType::Gauge)?;
            // A u64 count or size is exact in an f64 up to 2^53.
            ConstGauge::new(value as f64).encode(metric)?;
        }
        Ok(())
    }
}
