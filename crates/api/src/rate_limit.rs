//! Per-user rate limiting: a token bucket per (tenant, user), in memory.
//!
//! Each process limits on its own; behind N API processes a user gets up
//! to N times the limit. The bucket holds a full hour's allowance, refilled
//! continuously.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

use chronicle_store::TenantId;

use crate::error::ApiError;

/// Buckets beyond this many trigger a sweep of the full (idle) ones.
const SWEEP_ABOVE: usize = 100_000;

/// Token buckets keyed by tenant and user.
pub struct RateLimiter {
    capacity: f64,
    per_second: f64,
    buckets: Mutex<HashMap<(TenantId, String), Bucket>>,
}

struct Bucket {
    tokens: f64,
    updated: Instant,
}

impl RateLimiter {
    /// Allows `per_hour` requests per hour per user, in bursts of up to as many.
    pub fn new(per_hour: u32) -> Self {
        let capacity = f64::from(per_hour.max(1));
        Self {
            capacity,
            per_second: capacity / 3600.0,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one request from the user's bucket, or says how long to wait.
    pub fn check(&self, tenant: &TenantId, user: &str) -> Result<(), ApiError> {
        self.check_at(tenant, user, Instant::now())
    }

    fn check_at(&self, tenant: &TenantId, user: &str, now: Instant) -> Result<(), ApiError> {
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        if buckets.len() > SWEEP_ABOVE {
            let (capacity, rate) = (self.capacity, self.per_second);
            buckets.retain(|_, b| {
                b.tokens + now.duration_since(b.updated).as_secs_f64() * rate < capacity
            });
        }
        let key = (tenant.clone(), user.to_owned());
        let bucket = buckets.entry(key).or_insert(Bucket {
            tokens: self.capacity,
            updated: now,
        });
        let elapsed = now.saturating_duration_since(bucket.updated).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * self.per_second).min(self.capacity);
        bucket.updated = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            let wait = (1.0 - bucket.tokens) / self.per_second;
            Err(ApiError::TooManyRequests {
                retry_after_secs: (wait.ceil() as u64).max(1),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn a_bucket_empties_refills_and_is_per_user() {
        let limiter = RateLimiter::new(3600); // one per second
        let acme = TenantId::parse("acme").unwrap();
        let t0 = Instant::now();
        for _ in 0..3600 {
            limiter.check_at(&acme, "ann", t0).unwrap();
        }
        match limiter.check_at(&acme, "ann", t0) {
            Err(ApiError::TooManyRequests { retry_after_secs }) => assert_eq!(retry_after_secs, 1),
            other => panic!("expected 429, got {other:?}"),
        }
        limiter.check_at(&acme, "bob", t0).unwrap();
        limiter
            .check_at(&TenantId::parse("other").unwrap(), "ann", t0)
            .unwrap();
        limiter
            .check_at(&acme, "ann", t0 + Duration::from_secs(1))
            .unwrap();
        assert!(limiter
            .check_at(&acme, "ann", t0 + Duration::from_secs(1))
            .is_err());
    }
}
