//! How many intervals overlap at most: the peak parallelism of a durable
//! run's tasks, and the mock server's peak of requests in flight.

/// The most of `spans` (start, end) that were open at one moment; at the
/// same instant an end comes before a start.
pub fn most_at_once<T: Ord + Copy>(spans: impl IntoIterator<Item = (T, T)>) -> usize {
    let mut changes: Vec<(T, bool)> = spans
        .into_iter()
        .flat_map(|(start, end)| [(start, true), (end, false)])
        .collect();
    // `false < true`: ends sort first.
    changes.sort_unstable();
    let (mut now, mut most) = (0_usize, 0_usize);
    for (_, opens) in changes {
        if opens {
            now += 1;
            most = most.max(now);
        } else {
            now = now.saturating_sub(1);
        }
    }
    most
}

#[cfg(test)]
mod tests {
    use super::most_at_once;

    #[test]
    fn counts_the_deepest_overlap_and_touching_spans_once() {
        assert_eq!(most_at_once([(0, 10), (5, 15), (9, 12), (15, 20)]), 3);
        assert_eq!(
            most_at_once([(0, 5), (5, 10)]),
            1,
            "one ends as the next starts"
        );
        assert_eq!(most_at_once(Vec::<(u8, u8)>::new()), 0);
    }
}
