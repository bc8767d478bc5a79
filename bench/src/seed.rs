//! Seeding: makes sure users 0..N of the benchmark's prefix exist, reusing those an earlier run
//! created, so a server can grow from 10^4 to 10^5 users across runs.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Result};

use crate::client::{encode, Client, Conn};
use crate::scim::{create_or_find, ListPage, Names, SeedUser};

pub struct Seeded {
    pub users: Vec<SeedUser>,
    pub found: usize,
    pub created: usize,
    pub elapsed: Duration,
}

/// Lists the seeded users already on the server. `None` when the server cannot filter with `sw`
/// (then every user is POSTed and 409s are resolved one by one).
async fn discover(conn: &mut Conn, names: &Names, wanted: usize) -> Result<Option<HashMap<usize, SeedUser>>> {
    let filter = format!("filter={}", encode(&format!("userName sw \"{}\"", names.seeded_prefix())));
    let projection = "attributes=userName,externalId";
    let mut found = HashMap::new();
    let keep = |page: ListPage, found: &mut HashMap<usize, SeedUser>| -> usize {
        let n = page.resources.len();
        for user in page.resources {
            if let Some(i) = names.seeded_index(&user.user_name).filter(|i| *i < wanted) {
                found.insert(
                    i,
                    SeedUser {
                        id: user.id,
                        user_name: user.user_name,
                        external_id: user.external_id.unwrap_or_else(|| names.seeded(i).1),
                    },
                );
            }
        }
        n
    };

    // Cursor paging (RFC 9865) first: one cheap page after another on servers that have it.
    let res = conn.get(&format!("/Users?{filter}&{projection}&count=1000&cursor=")).await?;
    if res.status != 200 {
        eprintln!("seed: the server cannot list with `userName sw` (HTTP {}); POSTing every user", res.status);
        return Ok(None);
    }
    let first: ListPage = serde_json::from_slice(&res.body)?;
    let (total, mut next) = (first.total_results, first.next_cursor.clone());
    let first_len = keep(first, &mut found);
    let cursor_works = next.is_some() || first_len as u64 >= total;
    // The walk stops once it has every user wanted: a run with fewer `--users` than the server
    // holds seeded need not list them all (seeding creates them roughly in index order, which is
    // the order of a list without sortBy).
    while let Some(cursor) = next.take().filter(|_| found.len() < wanted) {
        let res = conn.get(&format!("/Users?{filter}&{projection}&count=1000&cursor={}", encode(&cursor))).await?;
        if res.status != 200 {
            bail!("listing seeded users by cursor answered HTTP {}: {}", res.status, res.snippet());
        }
        let page: ListPage = serde_json::from_slice(&res.body)?;
        next = page.next_cursor.clone();
        keep(page, &mut found);
    }
    if !cursor_works {
        // No cursors: index paging, advancing by whatever page size the server grants.
        found.clear();
        let mut start = 1u64;
        loop {
            let res = conn.get(&format!("/Users?{filter}&{projection}&count=1000&startIndex={start}")).await?;
            if res.status != 200 {
                bail!("listing seeded users by index answered HTTP {}: {}", res.status, res.snippet());
            }
            let page: ListPage = serde_json::from_slice(&res.body)?;
            let total = page.total_results;
            let n = keep(page, &mut found) as u64;
            start += n;
            if n == 0 || start > total || found.len() >= wanted {
                break;
            }
        }
    }
    Ok(Some(found))
}

pub async fn seed(client: &Client, names: &Names, wanted: usize, concurrency: usize) -> Result<Seeded> {
    let started = Instant::now();
    let mut conn = client.conn();
    let mut found = discover(&mut conn, names, wanted).await?.unwrap_or_default();
    let already = found.len();
    let missing: Vec<usize> = (0..wanted).filter(|i| !found.contains_key(i)).collect();
    eprintln!("seed: {already} of {wanted} users exist, creating {}", missing.len());

    let missing = Arc::new(missing);
    let next = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(AtomicUsize::new(0));
    let made = Arc::new(Mutex::new(Vec::with_capacity(missing.len())));
    let mut tasks = Vec::new();
    for _ in 0..concurrency.max(1) {
        let (missing, next, done, made) = (missing.clone(), next.clone(), done.clone(), made.clone());
        let (mut conn, names) = (client.conn(), names.clone());
        tasks.push(tokio::spawn(async move {
            loop {
                let k = next.fetch_add(1, Ordering::Relaxed);
                let Some(&i) = missing.get(k) else { return Ok::<_, anyhow::Error>(()) };
                let (user_name, external_id) = names.seeded(i);
                let id = create_or_find(&mut conn, &user_name, &external_id, i as u64).await?;
                made.lock().expect("not poisoned").push((i, SeedUser { id, user_name, external_id }));
                let count = done.fetch_add(1, Ordering::Relaxed) + 1;
                let total = missing.len();
                if count * 10 / total != (count - 1) * 10 / total {
                    let secs = started.elapsed().as_secs_f64();
                    eprintln!(
                        "seed: {count}/{total} ({}%) created, {:.0} users/s",
                        count * 100 / total,
                        count as f64 / secs
                    );
                }
            }
        }));
    }
    for task in tasks {
        task.await??;
    }
    let made = std::mem::take(&mut *made.lock().expect("not poisoned"));
    let created = made.len();
    found.extend(made);
    let mut users: Vec<(usize, SeedUser)> = found.into_iter().collect();
    users.sort_by_key(|(i, _)| *i);
    Ok(Seeded {
        users: users.into_iter().map(|(_, u)| u).collect(),
        found: already,
        created,
        elapsed: started.elapsed(),
    })
}
