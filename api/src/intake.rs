//! Limits and counters of the public resident report endpoint: a keyed rate limiter per
//! client address, a global one, and `steward_api_resident_reports_total{outcome}`.

use governor::clock::Clock;
use governor::{DefaultDirectRateLimiter, DefaultKeyedRateLimiter, Quota, RateLimiter};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use serde::{Deserialize, Serialize};
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

/// Keyed limiter entries are dropped once idle this often is worth a sweep.
const SWEEP_ABOVE: usize = 10_000;

/// `[api.public_reports]`: limits of the public report endpoint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PublicReportsConfig {
    pub enabled: bool,
    /// Sustained reports per client address (IPv6: per /64) and hour.
    pub per_client_per_hour: u32,
    /// Reports a client may send at once before the hourly rate applies.
    pub per_client_burst: u32,
    /// Sustained reports per minute from everyone together.
    pub global_per_minute: u32,
    pub global_burst: u32,
}

impl Default for PublicReportsConfig {
    fn default() -> Self {
        PublicReportsConfig {
            enabled: true,
            per_client_per_hour: 10,
            per_client_burst: 3,
            global_per_minute: 60,
            global_burst: 30,
        }
    }
}

impl PublicReportsConfig {
    pub fn validate(&self, prefix: &str) -> Vec<String> {
        let mut e = Vec::new();
        for (key, v, max) in [
            ("per_client_per_hour", self.per_client_per_hour, 3_600_000),
            ("per_client_burst", self.per_client_burst, 10_000),
            ("global_per_minute", self.global_per_minute, 60_000),
            ("global_burst", self.global_burst, 100_000),
        ] {
            if v == 0 || v > max {
                e.push(format!("{prefix}.{key}: must be between 1 and {max}"));
            }
        }
        e
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabel {
    /// accepted, invalid, rate_limited
    pub outcome: &'static str,
}

/// Rate limiters and counters of the endpoint; cheap to clone.
#[derive(Clone)]
pub struct ResidentIntake {
    pub(crate) enabled: bool,
    per_client: Arc<DefaultKeyedRateLimiter<IpAddr>>,
    global: Arc<DefaultDirectRateLimiter>,
    pub reports: Family<OutcomeLabel, Counter>,
    /// Tracking-code lookups and ratings: the same limits times [`LOOKUP_FACTOR`].
    lookups: Arc<(DefaultKeyedRateLimiter<IpAddr>, DefaultDirectRateLimiter)>,
}

/// A resident checks a report more often than they file one; the lookup limits are the
/// report limits times this. Even so, guessing a 50-bit tracking code at that rate is
/// hopeless.
pub const LOOKUP_FACTOR: u32 = 10;

fn quotas(cfg: &PublicReportsConfig, factor: u32) -> (Quota, Quota) {
    let per_hour = cfg.per_client_per_hour.max(1).saturating_mul(factor);
    let period = Duration::from_secs(3600) / per_hour;
    let per_client = Quota::with_period(period)
        .unwrap_or_else(|| Quota::per_hour(nz(per_hour)))
        .allow_burst(nz(cfg.per_client_burst.saturating_mul(factor)));
    let global = Quota::per_minute(nz(cfg.global_per_minute.saturating_mul(factor)))
        .allow_burst(nz(cfg.global_burst.saturating_mul(factor)));
    (per_client, global)
}

fn nz(v: u32) -> NonZeroU32 {
    NonZeroU32::new(v).unwrap_or(NonZeroU32::MIN)
}

impl ResidentIntake {
    /// Limiters from `cfg` (validated by [`PublicReportsConfig::validate`]); counters
    /// registered as `steward_api_resident_reports_total{outcome}`.
    pub fn new(
        cfg: &PublicReportsConfig,
        registry: &mut prometheus_client::registry::Registry,
    ) -> Self {
        let reports = Family::<OutcomeLabel, Counter>::default();
        registry.register(
            "steward_api_resident_reports",
            "Public resident reports by outcome",
            reports.clone(),
        );
        let (per_client, global) = quotas(cfg, 1);
        let (lookup_client, lookup_global) = quotas(cfg, LOOKUP_FACTOR);
        ResidentIntake {
            enabled: cfg.enabled,
            per_client: Arc::new(RateLimiter::keyed(per_client)),
            global: Arc::new(RateLimiter::direct(global)),
            reports,
            lookups: Arc::new((
                RateLimiter::keyed(lookup_client),
                RateLimiter::direct(lookup_global),
            )),
        }
    }

    pub(crate) fn count(&self, outcome: &'static str) {
        self.reports.get_or_create(&OutcomeLabel { outcome }).inc();
    }

    /// `Err(seconds to wait)` when the client or everyone together is over the limit.
    pub(crate) fn admit(&self, client: IpAddr) -> Result<(), u64> {
        if self.per_client.len() > SWEEP_ABOVE {
            self.per_client.retain_recent();
        }
        let wait = |d: Duration| d.as_secs_f64().ceil().max(1.0) as u64;
        if let Err(not_until) = self.per_client.check_key(&client) {
            return Err(wait(
                not_until.wait_time_from(self.per_client.clock().now()),
            ));
        }
        if let Err(not_until) = self.global.check() {
            return Err(wait(not_until.wait_time_from(self.global.clock().now())));
        }
        Ok(())
    }

    /// [`Self::admit`] for tracking-code lookups and ratings, at their own limits.
    pub(crate) fn admit_lookup(&self, client: IpAddr) -> Result<(), u64> {
        let (per_client, global) = &*self.lookups;
        if per_client.len() > SWEEP_ABOVE {
            per_client.retain_recent();
        }
        let wait = |d: Duration| d.as_secs_f64().ceil().max(1.0) as u64;
        if let Err(not_until) = per_client.check_key(&client) {
            return Err(wait(not_until.wait_time_from(per_client.clock().now())));
        }
        if let Err(not_until) = global.check() {
            return Err(wait(not_until.wait_time_from(global.clock().now())));
        }
        Ok(())
    }
}

impl Default for ResidentIntake {
    fn default() -> Self {
        ResidentIntake::new(
            &PublicReportsConfig::default(),
            &mut prometheus_client::registry::Registry::default(),
        )
    }
}
