//! An accessibility check of one Admin Panel page in the real browser, with axe-core.
//!
//! axe-core is Deque Systems' accessibility rules engine (<https://github.com/dequelabs/axe-core>,
//! MPL-2.0). `vendor/axe-4.14.1.min.js` is the file `axe.min.js` of the npm package
//! `axe-core@4.14.1`, unchanged (npm integrity
//! `sha512-FHfa+lmNjQZfJz1q8wKqIDwC6DExcHt/pkjNQb09a3NPjCKg2rhu5qb2S4r76ASyFNNtuFooJpZe37OgudVGtQ==`),
//! with the package's licence beside it (`vendor/axe-LICENSE.txt`). It is used by these tests
//! only and never served or shipped. [`AXE_SHA256`] pins the file: a changed copy fails the check
//! before it runs.
//!
//! Every page of the panel goes through [`assert_accessible`]: a page added later gets one call,
//! with its URL, in the test that signs in (tests/browser/main.rs).

use fantoccini::Client;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

const AXE: &str = include_str!("vendor/axe-4.14.1.min.js");

/// SHA-256 of `vendor/axe-4.14.1.min.js` as the npm package ships it.
const AXE_SHA256: &str = "29348999450cdf2849a8e70b7912fc2da85a849da39c0d0d5394f51d4a9ed95c";

/// The impacts that fail the check; axe's `minor` and `moderate` findings are printed only.
const FAILING: [&str; 2] = ["serious", "critical"];

/// What axe-core finds on the page at `url` (opened in `browser`, with its cookies): its
/// `violations`, each with its rule, impact, help and the elements it concerns.
pub async fn violations(browser: &Client, url: &str) -> Vec<Value> {
    let digest = format!("{:x}", Sha256::digest(AXE.as_bytes()));
    assert_eq!(digest, AXE_SHA256, "tests/browser/vendor/axe-4.14.1.min.js is not the file of axe-core 4.14.1");
    browser.goto(url).await.unwrap_or_else(|e| panic!("{url}: {e}"));
    // WebDriver's scripts run outside the page's Content-Security-Policy, so the panel's strict
    // CSP stays as it is served.
    browser.execute(AXE, vec![]).await.expect("axe-core loads");
    let run = r#"
        const done = arguments[arguments.length - 1];
        // The rules of WCAG 2.0, 2.1 and 2.2 at levels A and AA, and axe's best practices.
        axe.run(document, {runOnly: {type: "tag",
                values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa", "best-practice"]}})
            .then(result => done({violations: result.violations.map(v => ({
                id: v.id, impact: v.impact, help: v.help, helpUrl: v.helpUrl,
                nodes: v.nodes.map(n => ({target: n.target, html: n.html, summary: n.failureSummary}))}))}))
            .catch(error => done({error: String(error)}));
    "#;
    let result = browser.execute_async(run, vec![]).await.expect("axe-core runs");
    assert!(result.get("error").is_none(), "axe-core failed on {url}: {}", result["error"]);
    result["violations"].as_array().cloned().unwrap_or_default()
}

/// Fails when axe-core finds a serious or critical violation on the page at `url`, and prints
/// every violation it finds there.
pub async fn assert_accessible(browser: &Client, url: &str) {
    let found = violations(browser, url).await;
    let describe = |v: &Value| {
        let nodes: Vec<String> = v["nodes"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|n| format!("    {} {}\n      {}", n["target"], n["html"], n["summary"].as_str().unwrap_or("")))
            .collect();
        format!("  [{}] {}: {} ({})\n{}", v["impact"], v["id"], v["help"], v["helpUrl"], nodes.join("\n"))
    };
    for v in &found {
        eprintln!("axe-core on {url}:\n{}", describe(v));
    }
    let failing: Vec<String> =
        found.iter().filter(|v| FAILING.iter().any(|i| v["impact"] == json!(i))).map(describe).collect();
    assert!(failing.is_empty(), "serious or critical accessibility violations on {url}:\n{}", failing.join("\n"));
}
