//! A mergeable quantile sketch of durations with a relative error bound
//! (the bucketing of DDSketch, Masson, Rim and Lee, VLDB 2019).
//!
//! A duration of `ms` milliseconds falls in bucket `key(ms)`: key 0 holds
//! exactly 0 ms, and key `k >= 1` holds the durations in
//! `(γ^(k-2), γ^(k-1)]` ms, with `γ = (1 + α) / (1 - α)`. A sketch is the
//! count of durations per key. Its quantile is the representative value of
//! the bucket holding the wanted rank, `2 γ^(k-1) / (γ + 1)`, which is
//! within a relative error of `α` of every duration in that bucket.
//!
//! **The bound.** For `q` in (0, 1] and `n` durations, let `x` be the exact
//! quantile of rank `r = max(1, ⌈q·n⌉)` in ascending order (PostgreSQL's
//! `percentile_disc(q)`: the smallest duration with at least a share `q` of
//! the durations at or below it). Then `|quantile(q) - x| <= α · x`. Sums
//! of sketches are the sketch of the union, so the bound holds for any
//! range of days and any grouping merged from the per-day rows. The
//! property tests below check it against the exact quantile.
//!
//! Counts may be negative while deltas are merged (a withdrawn resolution
//! is subtracted); stored sketches only ever hold positive counts.

/// The relative accuracy: 1 %.
pub const ALPHA: f64 = 0.01;

fn gamma() -> f64 {
    (1.0 + ALPHA) / (1.0 - ALPHA)
}

/// The bucket of a duration in milliseconds (negative ones count as 0).
pub fn key(ms: i64) -> i32 {
    if ms <= 0 {
        return 0;
    }
    // ln(ms) / ln(γ) is at most ln(2^63) / 0.0200 ≈ 2184: no overflow.
    let k = ((ms as f64).ln() / gamma().ln()).ceil() as i32;
    k.max(0) + 1
}

/// The value a bucket stands for, in milliseconds.
pub fn value(key: i32) -> f64 {
    if key <= 0 {
        return 0.0;
    }
    let g = gamma();
    2.0 * g.powi(key - 1) / (g + 1.0)
}

/// Counts of durations per bucket, sorted by bucket, without zeros.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Sketch {
    counts: Vec<(i32, i64)>,
}

impl Sketch {
    /// Adds `n` durations of `ms` milliseconds (`n` may be negative).
    pub fn add(&mut self, ms: i64, n: i64) {
        self.add_key(key(ms), n);
    }

    fn add_key(&mut self, key: i32, n: i64) {
        match self.counts.binary_search_by_key(&key, |(k, _)| *k) {
            Ok(i) => {
                self.counts[i].1 += n;
                if self.counts[i].1 == 0 {
                    self.counts.remove(i);
                }
            }
            Err(i) if n != 0 => self.counts.insert(i, (key, n)),
            Err(_) => {}
        }
    }

    /// Adds another sketch's counts.
    pub fn merge(&mut self, other: &Sketch) {
        self.merge_sorted(other.counts.iter().copied(), 1);
    }

    /// Adds stored `(keys, counts)` arrays, times `sign` (1, or -1 to
    /// subtract them).
    pub fn merge_arrays(&mut self, keys: &[i32], counts: &[i64], sign: i64) {
        if keys.windows(2).all(|w| w[0] < w[1]) {
            self.merge_sorted(keys.iter().copied().zip(counts.iter().copied()), sign);
        } else {
            for (k, n) in keys.iter().zip(counts) {
                self.add_key(*k, sign * n);
            }
        }
    }

    /// Adds `(key, count)` pairs times `sign` (1, or -1 to subtract them).
    pub fn merge_pairs(&mut self, pairs: &[(i32, i64)], sign: i64) {
        if pairs.windows(2).all(|w| w[0].0 < w[1].0) {
            self.merge_sorted(pairs.iter().copied(), sign);
        } else {
            for (k, n) in pairs {
                self.add_key(*k, sign * n);
            }
        }
    }

    /// Merges pairs sorted by key, in one pass.
    fn merge_sorted(&mut self, other: impl Iterator<Item = (i32, i64)>, sign: i64) {
        let mine = std::mem::take(&mut self.counts);
        let mut out = Vec::with_capacity(mine.len());
        let mut mine = mine.into_iter().peekable();
        let mut other = other.peekable();
        loop {
            let next = match (mine.peek(), other.peek()) {
                (None, None) => break,
                (Some(_), None) => mine.next(),
                (None, Some(_)) => other.next().map(|(k, n)| (k, sign * n)),
                (Some(a), Some(b)) => match a.0.cmp(&b.0) {
                    std::cmp::Ordering::Less => mine.next(),
                    std::cmp::Ordering::Greater => other.next().map(|(k, n)| (k, sign * n)),
                    std::cmp::Ordering::Equal => {
                        let (k, n) = mine.next().unwrap_or_default();
                        let m = other.next().map_or(0, |(_, m)| m);
                        Some((k, n + sign * m))
                    }
                },
            };
            if let Some((k, n)) = next {
                if n != 0 {
                    out.push((k, n));
                }
            }
        }
        self.counts = out;
    }

    /// The stored form: keys ascending, and their counts (no zeros).
    pub fn to_arrays(&self) -> (Vec<i32>, Vec<i64>) {
        self.counts.iter().copied().unzip()
    }

    pub fn from_arrays(keys: &[i32], counts: &[i64]) -> Self {
        let mut sketch = Self::default();
        sketch.merge_arrays(keys, counts, 1);
        sketch
    }

    /// How many durations it holds.
    pub fn count(&self) -> i64 {
        self.counts.iter().map(|(_, n)| n).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.counts.is_empty()
    }

    /// The quantile `numerator / denominator` (e.g. 9/10 for p90) in
    /// milliseconds, within `ALPHA` of the exact rank-based quantile (see
    /// the module documentation); `None` when empty. The rank is computed
    /// in integers, so p90 of 10 values is exactly the 9th.
    pub fn quantile(&self, numerator: i64, denominator: i64) -> Option<f64> {
        let n = self.count();
        if n <= 0 || numerator <= 0 || denominator <= 0 {
            return None;
        }
        let rank = rank(n, numerator, denominator);
        let mut seen = 0;
        for (k, c) in &self.counts {
            seen += c;
            if seen >= rank {
                return Some(value(*k));
            }
        }
        self.counts.last().map(|(k, _)| value(*k))
    }
}

/// The rank (from 1) of the quantile `numerator / denominator` of `n`
/// values: `max(1, ⌈q·n⌉)`, in integers.
pub fn rank(n: i64, numerator: i64, denominator: i64) -> i64 {
    ((numerator * n + denominator - 1) / denominator).max(1)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// The exact quantile of rank `⌈q·n⌉` of sorted values.
    fn exact(sorted: &[i64], numerator: i64, denominator: i64) -> i64 {
        let n = sorted.len() as f64;
        let q = numerator as f64 / denominator as f64;
        // As PostgreSQL's percentile_disc: the first value whose position
        // reaches q·n.
        let position = ((q * n).ceil() as usize).max(1);
        sorted[position - 1]
    }

    #[test]
    fn buckets_hold_their_values_within_alpha() {
        assert_eq!(key(0), 0);
        assert_eq!(key(-5), 0);
        assert_eq!(value(0), 0.0);
        for ms in [
            1,
            2,
            3,
            10,
            999,
            1000,
            1001,
            60_000,
            86_400_000,
            31_536_000_000,
        ] {
            let v = value(key(ms));
            assert!(
                (v - ms as f64).abs() <= ALPHA * ms as f64 * (1.0 + 1e-12),
                "{ms} ms → bucket {} → {v}",
                key(ms)
            );
        }
    }

    #[test]
    fn ranks_follow_percentile_disc() {
        let mut s = Sketch::default();
        for ms in 1..=10 {
            s.add(ms * 1000, 1);
        }
        // p50 of 1..10 s is the 5th value, p90 the 9th.
        let p50 = s.quantile(1, 2).unwrap();
        let p90 = s.quantile(9, 10).unwrap();
        assert!((p50 - 5000.0).abs() <= 50.0, "{p50}");
        assert!((p90 - 9000.0).abs() <= 90.0, "{p90}");
        assert_eq!(Sketch::default().quantile(1, 2), None);
    }

    #[test]
    fn subtracting_what_was_added_leaves_nothing() {
        let mut s = Sketch::default();
        s.add(1234, 2);
        s.add(1234, -2);
        assert!(s.is_empty());
        assert_eq!(s.to_arrays(), (vec![], vec![]));
        let mut t = Sketch::default();
        for ms in [5, 500, 50_000] {
            t.add(ms, 1);
        }
        let (keys, counts) = t.to_arrays();
        let mut u = t.clone();
        u.merge_arrays(&keys, &counts, -1);
        assert!(u.is_empty());
        // Unsorted arrays (as an analyst may build them) still add up.
        let mut v = Sketch::default();
        v.merge_arrays(&[keys[2], keys[0], keys[1]], &[1, 1, 1], 1);
        assert_eq!(v, t);
    }

    proptest! {
        /// The bound of the module documentation, for p50 and p90 and any
        /// split of the values into merged parts.
        #[test]
        fn quantiles_are_within_alpha_of_the_exact_ones(
            values in prop::collection::vec(
                prop_oneof![
                    Just(0i64),
                    1i64..1_000,
                    1_000i64..3_600_000,
                    3_600_000i64..40_000_000_000,
                ],
                1..400,
            ),
            split in 0usize..400,
            q in prop::sample::select(vec![(1i64, 2i64), (9, 10), (1, 100), (99, 100), (1, 1)]),
        ) {
            let split = split % values.len();
            let (mut a, mut b) = (Sketch::default(), Sketch::default());
            for (i, v) in values.iter().enumerate() {
                if i < split { a.add(*v, 1) } else { b.add(*v, 1) }
            }
            a.merge(&b);
            let (keys, counts) = a.to_arrays();
            let stored = Sketch::from_arrays(&keys, &counts);
            prop_assert_eq!(&stored, &a);
            let mut sorted = values.clone();
            sorted.sort_unstable();
            let x = exact(&sorted, q.0, q.1) as f64;
            let estimate = stored.quantile(q.0, q.1).unwrap();
            prop_assert!(
                (estimate - x).abs() <= ALPHA * x * (1.0 + 1e-9),
                "q {}/{}: estimate {} exact {}", q.0, q.1, estimate, x
            );
        }
    }
}
