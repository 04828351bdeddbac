//! Prints what auth's cryptography costs per call on this machine (`make bench-auth`, a release build):
//! RS256 access-token verification (every authenticated request pays it), signing (every login
//! and refresh), and one argon2id hash at the configured cost (every register and login, and
//! unknown emails through the dummy hash).

use std::hint::black_box;
use std::time::{Duration, Instant};

use secrecy::SecretString;
use shared::auth::{KeyDocument, KeySet, Role, new_claims, now_unix};

const ISS: &str = "https://city-events.bench";
const AUD: &str = "city-events-api";

/// Runs `f` for at least `budget` (after a warm-up) and returns the median of 5 rounds, per call.
fn per_call(budget: Duration, mut f: impl FnMut()) -> Duration {
    f();
    let mut rounds = Vec::new();
    for _ in 0..5 {
        let start = Instant::now();
        let mut n = 0u32;
        while start.elapsed() < budget / 5 {
            f();
            n += 1;
        }
        rounds.push(start.elapsed() / n);
    }
    rounds.sort();
    rounds[2]
}

fn main() {
    let doc = KeyDocument {
        keys: vec![KeyDocument::generate_key(now_unix()).expect("key generation")],
    };
    let set = KeySet::from_document(&doc).expect("key set");
    let claims = new_claims(ISS, AUD, "usr_bench", &[Role::Attendee], "sess_bench");
    let token = set.sign(&claims).expect("sign");
    assert!(
        set.verify(&token, ISS, AUD).is_ok(),
        "the bench token must verify"
    );

    let verify = per_call(Duration::from_secs(2), || {
        black_box(set.verify(black_box(&token), ISS, AUD).is_ok());
    });
    let sign = per_call(Duration::from_secs(2), || {
        black_box(set.sign(black_box(&claims)).is_ok());
    });

    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let hash = per_call(Duration::from_secs(5), || {
        let h = rt.block_on(auth::password::hash(SecretString::from(
            "correct horse battery staple".to_owned(),
        )));
        black_box(h.expect("hash"));
    });

    println!(
        "RS256 access token verify : {:>10.1} µs/call",
        micros(verify)
    );
    println!("RS256 access token sign   : {:>10.1} µs/call", micros(sign));
    println!(
        "argon2id hash (m={} KiB, t={}, p={}) : {:>8.1} ms/hash",
        auth::password::MEMORY_KIB,
        auth::password::ITERATIONS,
        auth::password::LANES,
        micros(hash) / 1000.0
    );
}

fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}
