//! End-to-end harness: [`HubSandbox`] runs a whole hub (real managed QuestDB on ephemeral
//! ports in a temporary root, the embedded broker, ingest, the API) and gives tests typed
//! clients for MQTT, SQL and HTTP, plus [`wait_until`] instead of bare sleeps.
//!
//! This crate only drives the product from outside, as a vendor, crew or manager would.
//! The test estate comes from [`fixture`], which other crates' tests use alone through
//! the `fixture` feature; everything else needs the (default) `harness` feature.

pub mod fixture;
pub use fixture::{load_estate, Device, Estate, TEST_ESTATE};

#[cfg(feature = "harness")]
mod harness;
#[cfg(feature = "harness")]
pub use harness::*;
#[cfg(feature = "harness")]
pub mod cluster;
#[cfg(feature = "harness")]
pub mod crash;
#[cfg(feature = "harness")]
pub mod process;
