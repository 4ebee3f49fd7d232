//! Non-finite depth values (NaN, ±inf) are counted, never silently flattened: a few are a
//! numeric accident the relief survives (they are set to the base and the result says how
//! many), many mean the estimator is broken and the job fails with `ERR_DEPTH` rather than
//! completing with a plausible but wrong shape.

use crate::error::{OrfeasError, Result};
use crate::mask::Mask;

/// Largest share of the foreground's depth values that may be non-finite before the job
/// fails. One in a hundred: a model that emits NaN in a whole region (broken weights, an
/// overflow) is far above it, while isolated faults stay below and are reported.
pub const MAX_NON_FINITE_SHARE: f64 = 0.01;

/// Replaces every non-finite value of `values` (row-major, the mask's size) by 0 and
/// returns a warning when there were any among the foreground; `Err(Depth)` when they are
/// more than [`MAX_NON_FINITE_SHARE`] of it. An empty mask counts the whole image.
pub fn settle_non_finite(
    values: &mut [f32],
    mask: &Mask,
    input: &str,
    estimator: &str,
) -> Result<Option<String>> {
    let use_mask = mask.data.len() == values.len() && mask.data.iter().any(|&m| m);
    let (mut bad, mut total) = (0usize, 0usize);
    for (i, v) in values.iter_mut().enumerate() {
        let counted = !use_mask || mask.data[i];
        total += usize::from(counted);
        if !v.is_finite() {
            bad += usize::from(counted);
            *v = 0.0;
        }
    }
    if bad == 0 {
        return Ok(None);
    }
    let share = bad as f64 / total.max(1) as f64;
    if share > MAX_NON_FINITE_SHARE {
        return Err(OrfeasError::Depth {
            name: input.to_owned(),
            detail: format!(
                "{estimator} gave {bad} non-finite values (NaN or infinite) of {total} in the \
                 subject ({:.1} %, more than {:.0} % allowed)",
                share * 100.0,
                MAX_NON_FINITE_SHARE * 100.0
            ),
        });
    }
    Ok(Some(format!(
        "{estimator} gave {bad} non-finite depth value(s) of {total}; they were set to the base"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn full(n: usize) -> Mask {
        Mask::full(n as u32, 1)
    }

    #[test]
    fn a_few_faults_are_reported_and_flattened_many_fail_the_job() {
        let mask = full(1000);
        let mut few = vec![0.5f32; 1000];
        few[3] = f32::NAN;
        few[700] = f32::INFINITY;
        let warning = settle_non_finite(&mut few, &mask, "cat.png", "depth-anything")
            .expect("below the share")
            .expect("a warning");
        assert!(warning.contains("2 non-finite"), "{warning}");
        assert!(few.iter().all(|v| v.is_finite()) && few[3] == 0.0);

        let mut many = vec![f32::NAN; 1000];
        many[..500].fill(0.2);
        let err = settle_non_finite(&mut many, &mask, "cat.png", "depth-anything")
            .expect_err("over the share");
        assert_eq!(err.code(), "ERR_DEPTH");
        assert!(err.to_string().contains("500 non-finite"), "{err}");

        let mut clean = vec![0.1f32; 1000];
        assert_eq!(
            settle_non_finite(&mut clean, &mask, "a", "relief").expect("ok"),
            None
        );
    }

    #[test]
    fn only_the_subject_counts() {
        // NaN in the background (half the image) only: nothing of the subject is lost.
        let mut mask = full(100);
        mask.data[50..].fill(false);
        let mut values = vec![0.3f32; 100];
        values[50..].fill(f32::NAN);
        let warning = settle_non_finite(&mut values, &mask, "a", "relief").expect("ok");
        assert_eq!(warning, None);
        assert!(values.iter().all(|v| v.is_finite()));
    }
}
