pub mod detector;
pub mod trace;

#[cfg(feature = "xray-exporter")]
pub mod xray_exporter;
