//! SCIM request bodies and answers as the benchmark sends and reads them, plus a small random
//! number generator (the workers need speed, not cryptographic quality).

use anyhow::{anyhow, bail, Result};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::client::{encode, Conn};

pub const USER_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
pub const GROUP_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
pub const PATCH_OP: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";
pub const BULK_REQUEST: &str = "urn:ietf:params:scim:api:messages:2.0:BulkRequest";

/// A user the benchmark seeded (or found seeded by an earlier run).
#[derive(Clone, Debug)]
pub struct SeedUser {
    pub id: String,
    pub user_name: String,
    pub external_id: String,
}

/// Names of everything the benchmark creates, all under one prefix so runs never collide with
/// real data and seeded users are found again by the next run.
#[derive(Clone)]
pub struct Names {
    pub prefix: String,
}

impl Names {
    pub fn seeded_prefix(&self) -> String {
        format!("{}.user.", self.prefix)
    }

    pub fn seeded(&self, i: usize) -> (String, String) {
        (format!("{}.user.{i:07}@example.com", self.prefix), format!("{}-ext-{i:07}", self.prefix))
    }

    /// The index of a seeded userName, if it is one.
    pub fn seeded_index(&self, user_name: &str) -> Option<usize> {
        let lower = user_name.to_ascii_lowercase();
        let rest = lower.strip_prefix(&self.seeded_prefix().to_ascii_lowercase())?;
        rest.strip_suffix("@example.com")?.parse().ok()
    }

    pub fn created(&self, run: &str, n: u64) -> (String, String) {
        (format!("{}.create.{run}.{n}@example.com", self.prefix), format!("{}-create-{run}-{n}", self.prefix))
    }

    pub fn synced(&self, run: &str, n: u64) -> (String, String) {
        (format!("{}.sync.{run}.{n}@example.com", self.prefix), format!("{}-sync-{run}-{n}", self.prefix))
    }

    pub fn member(&self, worker: usize) -> (String, String) {
        (format!("{}.member.{worker:03}@example.com", self.prefix), format!("{}-member-{worker:03}", self.prefix))
    }
}

/// The body Okta sends to create a user (Okta's SCIM 2.0 app: core schema, primary work email,
/// externalId = Okta's id, a password, active).
pub fn okta_user(user_name: &str, external_id: &str, n: u64) -> Vec<u8> {
    const GIVEN: [&str; 8] = ["Ada", "Grace", "Alan", "Edsger", "Barbara", "Donald", "Frances", "Ken"];
    const FAMILY: [&str; 8] = ["Lovelace", "Hopper", "Turing", "Dijkstra", "Liskov", "Knuth", "Allen", "Thompson"];
    let given = GIVEN[(n % 8) as usize];
    let family = format!("{}{}", FAMILY[(n / 8 % 8) as usize], n);
    let body = json!({
        "schemas": [USER_SCHEMA],
        "userName": user_name,
        "name": {"givenName": given, "familyName": family},
        "emails": [{"primary": true, "value": user_name, "type": "work"}],
        "displayName": format!("{given} {family}"),
        "locale": "en-US",
        "externalId": external_id,
        "groups": [],
        "password": format!("Pw!{:016x}", n.wrapping_mul(0x9e37_79b9_7f4a_7c15)),
        "active": true
    });
    serde_json::to_vec(&body).expect("JSON serialises")
}

pub fn patch_body(operations: Value) -> Vec<u8> {
    serde_json::to_vec(&json!({"schemas": [PATCH_OP], "Operations": operations})).expect("JSON serialises")
}

/// The parts of a ListResponse the benchmark reads; everything else is skipped unparsed.
#[derive(Deserialize)]
pub struct ListPage {
    #[serde(rename = "totalResults", default)]
    pub total_results: u64,
    #[serde(rename = "Resources", default)]
    pub resources: Vec<Listed>,
    #[serde(rename = "nextCursor")]
    pub next_cursor: Option<String>,
}

/// A listed user reduced to what the benchmark needs.
#[derive(Deserialize)]
pub struct Listed {
    #[serde(default)]
    pub id: String,
    #[serde(rename = "userName", default)]
    pub user_name: String,
    #[serde(rename = "externalId", default)]
    pub external_id: Option<String>,
}

/// Only the count of a ListResponse.
#[derive(Deserialize)]
pub struct ListCount {
    #[serde(rename = "totalResults", default)]
    pub total_results: u64,
}

/// Only the cursor of a ListResponse.
#[derive(Deserialize)]
pub struct ListCursor {
    #[serde(rename = "nextCursor")]
    pub next_cursor: Option<String>,
}

#[derive(Deserialize)]
pub struct Created {
    pub id: String,
}

pub fn eq_filter(attribute: &str, value: &str) -> String {
    let quoted = value.replace('\\', "\\\\").replace('"', "\\\"");
    format!("filter={}", encode(&format!("{attribute} eq \"{quoted}\"")))
}

/// The id of the user with this userName, looked up by filter.
pub async fn find_user(conn: &mut Conn, user_name: &str) -> Result<Option<String>> {
    let res = conn.get(&format!("/Users?{}&attributes=id", eq_filter("userName", user_name))).await?;
    if res.status != 200 {
        bail!("looking up {user_name:?} by filter answered HTTP {}: {}", res.status, res.snippet());
    }
    let page: ListPage = serde_json::from_slice(&res.body)?;
    Ok(page.resources.into_iter().next().map(|u| u.id))
}

/// Creates the user, or finds it when it exists already (409); returns its id.
pub async fn create_or_find(conn: &mut Conn, user_name: &str, external_id: &str, n: u64) -> Result<String> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        let failure = match conn.post("/Users", okta_user(user_name, external_id, n)).await {
            Ok(res) if res.ok() => return Ok(serde_json::from_slice::<Created>(&res.body)?.id),
            Ok(res) if res.status == 409 => {
                return find_user(conn, user_name)
                    .await?
                    .ok_or_else(|| anyhow!("{user_name:?}: POST said 409 but the filter finds no such user"));
            }
            Ok(res) => anyhow!("POST /Users for {user_name:?} answered HTTP {}: {}", res.status, res.snippet()),
            Err(e) => e.context(format!("POST /Users for {user_name:?}")),
        };
        if attempt >= 5 {
            return Err(failure);
        }
        eprintln!("retrying after: {failure:#}");
        tokio::time::sleep(std::time::Duration::from_millis(200 * attempt)).await;
    }
}

/// The number of users the server reports (`totalResults` of a one-item page).
pub async fn count_users(conn: &mut Conn) -> Result<u64> {
    let res = conn.get("/Users?count=1&attributes=id").await?;
    if res.status != 200 {
        bail!("GET /Users answered HTTP {}: {}", res.status, res.snippet());
    }
    Ok(serde_json::from_slice::<ListCount>(&res.body)?.total_results)
}

/// xorshift64*, seeded through splitmix64.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        let mut z = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        Rng((z ^ (z >> 31)) | 1)
    }

    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Uniform enough in `0..n` for n far below 2^64; `n` must not be 0.
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeded_names_round_trip() {
        let names = Names { prefix: "bench".into() };
        let (user_name, external_id) = names.seeded(42);
        assert_eq!(user_name, "bench.user.0000042@example.com");
        assert_eq!(external_id, "bench-ext-0000042");
        assert_eq!(names.seeded_index(&user_name), Some(42));
        assert_eq!(names.seeded_index("BENCH.USER.0000042@EXAMPLE.COM"), Some(42));
        assert_eq!(names.seeded_index("bench.create.x.1@example.com"), None);
    }

    #[test]
    fn filter_values_are_quoted_and_encoded() {
        assert_eq!(eq_filter("userName", r#"a"b"#), "filter=userName%20eq%20%22a%5C%22b%22");
    }

    #[test]
    fn okta_bodies_are_valid_json() {
        let body: serde_json::Value = serde_json::from_slice(&okta_user("u@example.com", "x1", 9)).unwrap();
        assert_eq!(body["userName"], "u@example.com");
        assert_eq!(body["emails"][0]["primary"], true);
        assert_eq!(body["active"], true);
    }

    #[test]
    fn rng_stays_in_range() {
        let mut rng = Rng::new(7);
        assert!((0..10_000).all(|_| rng.below(13) < 13));
    }
}
