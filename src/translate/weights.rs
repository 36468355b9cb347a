//! Relative weights to whole percentages.

/// Normalises relative weights to integers summing to 100 by the largest-remainder method.
///
/// Ties go to the earlier target, so 1:1:1 gives 34/33/33. A non-zero weight never rounds down to
/// 0 (it takes 1 from the largest share), so no target App Mesh sends traffic to loses it all.
/// Returns `None` when every weight is 0.
pub fn normalise(weights: &[u64]) -> Option<Vec<u32>> {
    let total: u128 = weights.iter().map(|w| u128::from(*w)).sum();
    if total == 0 {
        return None;
    }
    let mut shares: Vec<u32> = Vec::with_capacity(weights.len());
    let mut remainders: Vec<(u128, usize)> = Vec::with_capacity(weights.len());
    for (i, w) in weights.iter().enumerate() {
        let scaled = u128::from(*w) * 100;
        shares.push(u32::try_from(scaled / total).expect("a share is at most 100"));
        remainders.push((scaled % total, i));
    }
    let assigned: u32 = shares.iter().sum();
    // Largest remainder first; among equal remainders the earlier target wins.
    remainders.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    for &(_, i) in remainders.iter().take((100 - assigned) as usize) {
        shares[i] += 1;
    }
    for i in 0..weights.len() {
        if weights[i] > 0 && shares[i] == 0 {
            let largest = (0..shares.len())
                .max_by_key(|&j| (shares[j], std::cmp::Reverse(j)))
                .expect("weights are not empty");
            shares[largest] -= 1;
            shares[i] = 1;
        }
    }
    Some(shares)
}

#[cfg(test)]
mod tests {
    use super::normalise;

    #[test]
    fn equal_weights_give_the_remainder_to_the_first() {
        assert_eq!(normalise(&[1, 1, 1]), Some(vec![34, 33, 33]));
        assert_eq!(normalise(&[1, 1]), Some(vec![50, 50]));
        assert_eq!(
            normalise(&[1, 1, 1, 1, 1, 1]),
            Some(vec![17, 17, 17, 17, 16, 16])
        );
    }

    #[test]
    fn percentages_are_kept_and_zero_stays_zero() {
        assert_eq!(normalise(&[50, 40, 10]), Some(vec![50, 40, 10]));
        assert_eq!(normalise(&[0, 3]), Some(vec![0, 100]));
        assert_eq!(normalise(&[2, 1]), Some(vec![67, 33]));
        assert_eq!(normalise(&[1, 1000]), Some(vec![1, 99]));
        assert_eq!(normalise(&[1, 1, 1000]), Some(vec![1, 1, 98]));
    }

    #[test]
    fn all_zero_cannot_route() {
        assert_eq!(normalise(&[0, 0]), None);
        assert_eq!(normalise(&[]), None);
    }
}
