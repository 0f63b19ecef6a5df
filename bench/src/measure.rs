//! Interleaved sampling: every contender of a comparison (native runner-core,
//! host-shim, a composition...) is measured in the same rounds, one sample
//! each per round, the order reversed every other round, so that drift of a
//! shared machine (frequency, a neighbour's load) hits all of them alike.
//!
//! Why not criterion: it measures one benchmark after another, so a ratio of
//! two of its figures carries the drift between them; a paired ratio per
//! round does not. Like criterion, this warms up first, sizes each sample to
//! a fixed time, takes many samples and reports their spread and outliers.

use std::time::{Duration, Instant};

use anyhow::Result;
use serde_json::{Value, json};

/// Runs `iterations` units of work and returns how long they took (set-up
/// that must not be timed happens outside the returned duration).
pub type Contender<'a> = Box<dyn FnMut(u64) -> Result<Duration> + 'a>;

/// How a comparison samples.
pub struct Plan {
    /// Warm-up time per contender before sizing samples.
    pub warm_up: Duration,
    /// Target duration of one sample.
    pub sample: Duration,
    /// Samples per contender (one per round).
    pub rounds: usize,
}

impl Default for Plan {
    fn default() -> Self {
        Plan {
            warm_up: Duration::from_millis(300),
            sample: Duration::from_millis(20),
            rounds: 30,
        }
    }
}

/// The per-unit times (ns) of one contender, one per round.
#[derive(Clone, Debug)]
pub struct Samples(pub Vec<f64>);

impl Samples {
    fn sorted(&self) -> Vec<f64> {
        let mut v = self.0.clone();
        v.sort_by(f64::total_cmp);
        v
    }

    /// The `q`-quantile (0..=1), linearly interpolated.
    pub fn quantile(&self, q: f64) -> f64 {
        let v = self.sorted();
        let at = q * (v.len() - 1) as f64;
        let (lo, hi) = (at.floor() as usize, at.ceil() as usize);
        v[lo] + (v[hi] - v[lo]) * (at - lo as f64)
    }

    pub fn median(&self) -> f64 {
        self.quantile(0.5)
    }

    /// Samples outside Tukey's fences (1.5 × IQR beyond the quartiles):
    /// reported, not dropped — the median is already robust to them.
    pub fn outliers(&self) -> usize {
        let (q1, q3) = (self.quantile(0.25), self.quantile(0.75));
        let fence = 1.5 * (q3 - q1);
        self.0
            .iter()
            .filter(|&&x| x < q1 - fence || x > q3 + fence)
            .count()
    }

    /// `self[i] / other[i]` per round: the paired ratio of two contenders.
    pub fn ratio_to(&self, other: &Samples) -> Samples {
        Samples(self.0.iter().zip(&other.0).map(|(a, b)| a / b).collect())
    }

    /// `scale / x` per sample (a rate from a time per unit, say).
    pub fn inverse(&self, scale: f64) -> Samples {
        Samples(self.0.iter().map(|x| scale / x).collect())
    }

    pub fn scaled(&self, factor: f64) -> Samples {
        Samples(self.0.iter().map(|x| x * factor).collect())
    }

    /// Median, quartiles, extremes, outlier count and sample count, as JSON.
    pub fn summary(&self) -> Value {
        let v = self.sorted();
        json!({
            "median": self.median(),
            "q1": self.quantile(0.25),
            "q3": self.quantile(0.75),
            "min": v[0],
            "max": v[v.len() - 1],
            "outliers": self.outliers(),
            "n": v.len(),
        })
    }
}

/// Measures `contenders` interleaved under `plan`; returns each one's
/// per-unit times (ns), in the order given.
pub fn interleaved(plan: &Plan, contenders: &mut [Contender<'_>]) -> Result<Vec<Samples>> {
    // Warm up each, and size its samples from what the warm-up showed.
    let mut batch = Vec::with_capacity(contenders.len());
    for run in contenders.iter_mut() {
        let started = Instant::now();
        let (mut units, mut busy) = (0u64, Duration::ZERO);
        let mut step = 1;
        while started.elapsed() < plan.warm_up {
            busy += run(step)?;
            units += step;
            step = (step * 2).min(1 << 16);
        }
        let per_unit = busy.as_secs_f64() / units as f64;
        batch.push(((plan.sample.as_secs_f64() / per_unit) as u64).max(1));
    }
    let mut samples = vec![Vec::with_capacity(plan.rounds); contenders.len()];
    for round in 0..plan.rounds {
        let order: Vec<usize> = if round % 2 == 0 {
            (0..contenders.len()).collect()
        } else {
            (0..contenders.len()).rev().collect()
        };
        for i in order {
            let took = contenders[i](batch[i])?;
            samples[i].push(took.as_nanos() as f64 / batch[i] as f64);
        }
    }
    Ok(samples.into_iter().map(Samples).collect())
}

/// Across processes: the median of the runs' medians and their min–max.
pub fn across_runs(medians: &[f64]) -> (f64, f64, f64) {
    let s = Samples(medians.to_vec());
    let v = s.sorted();
    (s.median(), v[0], v[v.len() - 1])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_interpolate_and_outliers_are_counted() {
        let s = Samples(vec![1.0, 2.0, 3.0, 4.0, 100.0]);
        assert_eq!(s.median(), 3.0);
        assert_eq!(s.quantile(0.25), 2.0);
        assert_eq!(s.quantile(0.125), 1.5);
        assert_eq!(s.outliers(), 1);
        let r = Samples(vec![2.0, 4.0]).ratio_to(&Samples(vec![1.0, 8.0]));
        assert_eq!(r.0, vec![2.0, 0.5]);
    }

    #[test]
    fn every_contender_gets_one_sample_per_round() {
        let plan = Plan {
            warm_up: Duration::from_millis(5),
            sample: Duration::from_millis(1),
            rounds: 7,
        };
        let mut calls = [0u64; 2];
        let (a, b) = calls.split_at_mut(1);
        let mut contenders: Vec<Contender<'_>> = vec![
            Box::new(|n| {
                a[0] += n;
                Ok(Duration::from_micros(n))
            }),
            Box::new(|n| {
                b[0] += n;
                Ok(Duration::from_micros(3 * n))
            }),
        ];
        let samples = interleaved(&plan, &mut contenders).unwrap();
        drop(contenders);
        assert_eq!(samples[0].0.len(), 7);
        assert_eq!(samples[1].0.len(), 7);
        // The reported per-unit time is what the contender said it took.
        assert!(samples[0].0.iter().all(|&t| t == 1000.0));
        assert!(samples[1].0.iter().all(|&t| t == 3000.0));
        assert!(calls[0] > 0 && calls[1] > 0);
    }
}
