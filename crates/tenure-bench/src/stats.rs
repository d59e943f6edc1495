//! Min / median / max over repeated runs, and the one-line verdicts the benchmarks print.

/// A summary of repeated measurements.
#[derive(Debug, Clone, Copy)]
pub struct Summary {
    pub runs: usize,
    pub min: f64,
    pub median: f64,
    pub max: f64,
}

impl Summary {
    /// Summarizes `xs`; `None` when there are none.
    pub fn of(mut xs: Vec<f64>) -> Option<Self> {
        xs.sort_by(f64::total_cmp);
        let n = xs.len();
        let (min, max) = (*xs.first()?, *xs.last()?);
        let mid = xs.get(n / 2).copied()?;
        let median =
            if n.is_multiple_of(2) { xs.get(n / 2 - 1).map_or(mid, |lo| f64::midpoint(*lo, mid)) } else { mid };
        Some(Self { runs: n, min, median, max })
    }
}

/// Prints the verdict line for a target and returns whether it was met. The median decides:
/// a target is a statement about the typical run, and the min is shown next to it.
pub fn verdict(id: &str, what: &str, s: &Summary, unit: &str, target: f64) -> bool {
    let pass = s.median <= target;
    println!(
        "{id} {what}: {} runs: min {:.1} {unit}, median {:.1} {unit}, max {:.1} {unit} (target <= {target} {unit}): {}",
        s.runs,
        s.min,
        s.median,
        s.max,
        if pass { "PASS" } else { "MISS" }
    );
    pass
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(xs: &[f64], want: (f64, f64, f64)) {
        let s = Summary::of(xs.to_vec()).unwrap();
        assert_eq!((s.min, s.median, s.max), want);
    }

    #[test]
    fn median_of_odd_and_even_counts() {
        check(&[3.0, 1.0, 2.0], (1.0, 2.0, 3.0));
        check(&[4.0, 1.0, 2.0, 3.0], (1.0, 2.5, 4.0));
        check(&[7.0], (7.0, 7.0, 7.0));
        assert!(Summary::of(Vec::new()).is_none());
    }
}
