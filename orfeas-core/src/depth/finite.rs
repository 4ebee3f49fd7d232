//! Non-finite depth: counted and reported, never silently turned into heights.
//!
//! A depth source can hand out NaN or ±∞: Depth Anything on damaged weights or after an
//! overflow on a device, TripoSR's density field likewise; a bug in an estimator would too.
//! Meshing such values would give NaN vertices (the printability check then fails as if it
//! were a bug), and silently flattening them hides a broken model behind a dented relief. So
//! every depth source feeding a shape goes through [`screen`]: a few bad values are replaced
//! and the result says so in its warnings; more than [`MAX_NON_FINITE_SHARE`] fails the job
//! with `ERR_DEPTH`.

use crate::error::{OrfeasError, Result};

/// The largest share of non-finite values (of the foreground pixels of a depth map, of all
/// points of a density field) that a job tolerates; above it the job fails with `ERR_DEPTH`.
///
/// Why 1 %: isolated bad values do happen without the model being broken (one overflowing
/// activation, spread to a 4×4 block by the bicubic resampling, more when upsampling), and
/// replacing them leaves pin-prick dents in an otherwise sound model, better than no model.
/// A damaged model or a failing device gives bad values in whole regions or everywhere,
/// far above 1 %. And at 1 % the damage stops being small: on a `medium` relief (512² working
/// pixels, about half of them foreground) that is some 1 300 pixels, a 36-pixel-wide crater
/// if they are together — a result to refuse with a reason rather than hand out.
pub const MAX_NON_FINITE_SHARE: f64 = 0.01;

/// What [`screen`] found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct NonFinite {
    /// Non-finite values among the counted ones.
    pub count: usize,
    /// Values counted (foreground pixels, or every value without a mask).
    pub total: usize,
}

impl NonFinite {
    fn too_many(&self) -> bool {
        self.count as f64 > MAX_NON_FINITE_SHARE * self.total as f64
    }

    fn percent(&self) -> f64 {
        100.0 * self.count as f64 / self.total.max(1) as f64
    }
}

/// Screens one depth source: counts the non-finite values where `counted` is set (every value
/// when `None`; a mask of the wrong length counts every value too), then replaces every
/// non-finite value (counted or not) with `fill(finite lowest)`, so nothing downstream sees one.
///
/// `Err(ERR_DEPTH)` naming `name` when more than [`MAX_NON_FINITE_SHARE`] of the counted
/// values are non-finite; otherwise the warning to report when any were (`what`: "depth
/// values in the foreground"; `replaced`: what they became, e.g. "set to the lowest height").
pub(crate) fn screen(
    values: &mut [f32],
    counted: Option<&[bool]>,
    name: &str,
    what: &str,
    replaced: &str,
    fill: impl FnOnce(f32) -> f32,
) -> Result<Option<String>> {
    let counted = counted.filter(|c| c.len() == values.len());
    let found = match counted {
        Some(mask) => NonFinite {
            count: values
                .iter()
                .zip(mask)
                .filter(|(v, &m)| m && !v.is_finite())
                .count(),
            total: mask.iter().filter(|&&m| m).count(),
        },
        None => NonFinite {
            count: values.iter().filter(|v| !v.is_finite()).count(),
            total: values.len(),
        },
    };
    if found.too_many() {
        return Err(OrfeasError::Depth {
            name: name.to_owned(),
            detail: format!(
                "{} of {} {what} ({:.1} %) are not finite (NaN or infinite), more than the \
                 {} % orfeas tolerates; the model's weights may be damaged, or its arithmetic \
                 overflowed on this device",
                found.count,
                found.total,
                found.percent(),
                MAX_NON_FINITE_SHARE * 100.0
            ),
        });
    }
    replace(values, fill);
    Ok((found.count > 0).then(|| {
        format!(
            "{} of {} {what} ({:.2} %) were not finite (NaN or infinite) and were {replaced}",
            found.count,
            found.total,
            found.percent()
        )
    }))
}

/// Replaces every non-finite value with `fill(finite lowest)` (the lowest finite value, 0 when
/// there is none), without a verdict: for a second map made from a source already screened.
pub(crate) fn replace(values: &mut [f32], fill: impl FnOnce(f32) -> f32) {
    if values.iter().all(|v| v.is_finite()) {
        return;
    }
    let lowest = values
        .iter()
        .copied()
        .filter(|v| v.is_finite())
        .fold(f32::INFINITY, f32::min);
    let value = fill(if lowest.is_finite() { lowest } else { 0.0 });
    for v in values.iter_mut().filter(|v| !v.is_finite()) {
        *v = value;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(values: &mut [f32], mask: Option<&[bool]>) -> Result<Option<String>> {
        screen(
            values,
            mask,
            "x.png",
            "depth values",
            "set to the lowest height",
            |l| l,
        )
    }

    #[test]
    fn a_handful_are_replaced_and_reported() {
        let mut values: Vec<f32> = (0..1000).map(|i| 0.2 + i as f32 / 2000.0).collect();
        values[10] = f32::NAN;
        values[500] = f32::INFINITY;
        values[999] = f32::NEG_INFINITY;
        let warning = run(&mut values, None).expect("3 of 1000 is tolerated");
        let warning = warning.expect("a warning");
        assert!(warning.starts_with("3 of 1000 depth values"), "{warning}");
        assert!(warning.contains("set to the lowest height"), "{warning}");
        assert!(values.iter().all(|v| v.is_finite()));
        assert_eq!([values[10], values[500], values[999]], [0.2; 3]);
    }

    #[test]
    fn more_than_the_share_fails_with_err_depth() {
        let mut half: Vec<f32> = (0..100)
            .map(|i| if i % 2 == 0 { f32::NAN } else { 1.0 })
            .collect();
        let e = run(&mut half, None).expect_err("50 % is too many");
        assert_eq!(e.code(), "ERR_DEPTH");
        assert!(e.to_string().contains("50 of 100"), "{e}");
        assert!(e.to_string().starts_with("x.png: "), "{e}");
        // Exactly at the share passes; one more fails.
        let mut at = vec![1.0f32; 200];
        at[..2].fill(f32::NAN);
        assert!(run(&mut at, None).is_ok());
        let mut over = vec![1.0f32; 200];
        over[..3].fill(f32::NAN);
        assert_eq!(run(&mut over, None).map_err(|e| e.code()), Err("ERR_DEPTH"));
    }

    #[test]
    fn only_the_foreground_counts_but_everything_is_replaced() {
        // 10 foreground pixels, one of them NaN (10 %); 90 NaN in the background.
        let mask: Vec<bool> = (0..100).map(|i| i < 10).collect();
        let mut values: Vec<f32> = (0..100)
            .map(|i| if i == 3 || i >= 10 { f32::NAN } else { 0.5 })
            .collect();
        let e = run(&mut values.clone(), Some(&mask)).expect_err("10 % of the foreground");
        assert!(e.to_string().contains("1 of 10"), "{e}");
        // The same background NaN beside a clean foreground: no error, no warning, replaced.
        values[3] = 0.5;
        assert_eq!(
            run(&mut values, Some(&mask)).expect("clean foreground"),
            None
        );
        assert!(values.iter().all(|&v| v == 0.5));
    }

    #[test]
    fn clean_maps_are_untouched_and_nothing_finite_falls_back_to_zero() {
        let mut clean = vec![0.25f32, 0.75];
        assert_eq!(run(&mut clean, None).expect("clean"), None);
        assert_eq!(clean, [0.25, 0.75]);
        // An empty foreground counts nothing; its NaN background becomes 0.
        let mut background = vec![f32::NAN; 4];
        assert_eq!(
            run(&mut background, Some(&[false; 4])).expect("no foreground"),
            None
        );
        assert_eq!(background, [0.0; 4]);
    }
}
