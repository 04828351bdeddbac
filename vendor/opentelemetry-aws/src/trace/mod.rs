#[cfg(feature = "trace")]
pub mod id_generator;
#[cfg(feature = "trace")]
pub mod xray_extractor;
#[cfg(feature = "trace")]
pub mod xray_propagator;

#[cfg(feature = "trace")]
pub use id_generator::XrayIdGenerator;

#[cfg(feature = "trace")]
pub use xray_extractor::XrayExtractor;

#[cfg(feature = "trace")]
pub use xray_propagator::{MissingSampledBehavior, XrayPropagator};
