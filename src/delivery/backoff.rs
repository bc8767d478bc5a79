//! When a failed delivery is tried again: exponential back-off with jitter.

use std::time::Duration;

use crate::config::WebhookSettings;

/// The wait after the `tries`-th failed try (1 for the first): `retry_base_ms` doubled per
/// earlier failure, at most `retry_max_ms`, plus up to a quarter more at random, so that
/// deliveries that failed together (an endpoint down) do not all come back at once. The jitter
/// only lengthens waits: the whole schedule lasts at least what the settings add up to.
pub fn wait_after(settings: &WebhookSettings, tries: u32) -> Duration {
    let doubled = settings.retry_base_ms.saturating_mul(1u64 << tries.saturating_sub(1).min(40));
    let base = doubled.min(settings.retry_max_ms.max(settings.retry_base_ms));
    let jitter = rand::random_range(0..=base / 4);
    Duration::from_millis(base + jitter)
}

/// The shortest time from the first try to the last (jitter aside).
pub fn shortest_schedule(settings: &WebhookSettings) -> Duration {
    (1..settings.max_attempts)
        .map(|tries| {
            let doubled = settings.retry_base_ms.saturating_mul(1u64 << (tries - 1).min(40));
            Duration::from_millis(doubled.min(settings.retry_max_ms.max(settings.retry_base_ms)))
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_double_up_to_the_ceiling_with_jitter_on_top() {
        let s = WebhookSettings { retry_base_ms: 1000, retry_max_ms: 5000, ..WebhookSettings::default() };
        for (tries, base) in [(1, 1000), (2, 2000), (3, 4000), (4, 5000), (30, 5000), (500, 5000)] {
            let wait = wait_after(&s, tries).as_millis() as u64;
            assert!((base..=base + base / 4).contains(&wait), "try {tries}: {wait} ms");
        }
    }

    #[test]
    fn the_default_schedule_retries_for_more_than_a_day() {
        let schedule = shortest_schedule(&WebhookSettings::default());
        assert!(schedule > Duration::from_secs(24 * 3600), "{schedule:?}");
    }
}
