//! What a new row is stamped with: its id and the time.

/// A new `id` for a user, group or content item: a UUID of version 7, whose first 48 bits are
/// the time of creation in milliseconds (the rest random). Ids made one after another sort
/// together, so a create adds its entry to the same last page of the unique index on `id` as
/// the creates before it, instead of to a random page of an index of 10^6 entries (with version
/// 4 ids, one more page per create for SQLite's WAL to write and its checkpoints to copy back).
/// The time in the id is what `meta.created` says anyway; the id stays opaque to clients
/// (RFC 7643 §3.1).
pub fn new_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

/// Real time at millisecond precision, for records outside the lifecycle (tokens, tenants);
/// request handling uses the application's [`crate::clock::Clock`].
pub fn now() -> chrono::NaiveDateTime {
    crate::clock::Clock::default().now()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_ids_sort_in_the_order_they_were_made() {
        let ids: Vec<String> = (0..10_000).map(|_| new_id()).collect();
        assert!(ids.windows(2).all(|pair| pair[0] < pair[1]), "ids made one after another must ascend");
        assert!(ids.iter().all(|id| uuid::Uuid::parse_str(id).is_ok_and(|u| u.get_version_num() == 7)));
    }
}
