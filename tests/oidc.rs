//! Signing in with the local OpenID Connect provider (infra/oidc) as a browser does: start at
//! our API, follow the provider's redirects, sign in on its page, and stop where the provider
//! sends the browser back to our callback (the test then calls the callback itself, as the
//! browser or an SPA would).

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::{Api, Reply, Stack};

/// The local provider, as the stack's ready file describes it.
pub struct Provider {
    pub name: String,
    pub issuer: String,
    pub redirect_base: String,
}

impl Provider {
    pub fn of(stack: &Stack) -> Provider {
        let v = stack
            .oidc
            .clone()
            .expect("the local stack runs an OpenID Connect provider (infra/oidc)");
        Provider {
            name: v["name"].as_str().unwrap().to_owned(),
            issuer: v["issuer"].as_str().unwrap().to_owned(),
            redirect_base: v["redirect_base"].as_str().unwrap().to_owned(),
        }
    }

    /// Makes the token response for `code` carry an ID token altered by `changes` (`iss`,
    /// `aud`, `nonce`, `exp_offset`, `unknown_key`; infra/oidc/provider.mjs).
    pub async fn tamper(&self, code: &str, mut changes: Value) {
        changes["code"] = json!(code);
        let r = reqwest::Client::new()
            .post(format!("{}/_local/tamper", self.issuer))
            .json(&changes)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::NO_CONTENT);
    }
}

/// A started sign-in: the provider's URL and this client's binding.
pub struct Started {
    pub authorization_url: String,
    pub binding: String,
    pub state: String,
}

/// `GET /v1/auth/oidc/{provider}/start`.
pub async fn start(api: &Api, provider: &str) -> Started {
    let r = api
        .exec(api.request(
            reqwest::Method::GET,
            &format!("/v1/auth/oidc/{provider}/start"),
        ))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(
        r.headers
            .get_all("set-cookie")
            .iter()
            .any(|c| c.to_str().unwrap().starts_with("__Host-oidc_binding=")),
        "the binding cookie is set"
    );
    let url = r.body["authorization_url"].as_str().unwrap().to_owned();
    let state = url::Url::parse(&url)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "state")
        .map(|(_, v)| v.into_owned())
        .expect("a state in the authorization URL");
    Started {
        authorization_url: url,
        binding: r.body["binding"].as_str().unwrap().to_owned(),
        state,
    }
}

/// Signs in at the provider as `account` from `authorization_url`, as a browser: returns the
/// `code` and `state` the provider sends back to our callback.
pub async fn authorize(
    provider: &Provider,
    authorization_url: &str,
    account: &str,
) -> (String, String) {
    let browser = reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let callback = format!(
        "{}/v1/auth/oidc/{}/callback",
        provider.redirect_base, provider.name
    );
    let mut url = authorization_url.to_owned();
    for _ in 0..10 {
        let r = browser.get(&url).send().await.unwrap();
        if r.status() == StatusCode::OK && url.contains("/interaction/") {
            // The provider's sign-in page: post the account.
            let r = browser
                .post(format!("{url}/login"))
                .form(&[("account", account)])
                .send()
                .await
                .unwrap();
            assert!(r.status().is_redirection(), "{}", r.text().await.unwrap());
            url = absolute(&provider.issuer, r.headers()["location"].to_str().unwrap());
            continue;
        }
        assert!(r.status().is_redirection(), "{url}: {}", r.status());
        let next = absolute(&provider.issuer, r.headers()["location"].to_str().unwrap());
        if next.starts_with(&callback) {
            let u = url::Url::parse(&next).unwrap();
            let get = |k: &str| {
                u.query_pairs()
                    .find(|(n, _)| n == k)
                    .map(|(_, v)| v.into_owned())
                    .unwrap_or_else(|| panic!("no {k} in {next}"))
            };
            return (get("code"), get("state"));
        }
        url = next;
    }
    panic!("the provider never sent the browser back to {callback}");
}

fn absolute(base: &str, location: &str) -> String {
    url::Url::parse(base)
        .unwrap()
        .join(location)
        .unwrap()
        .to_string()
}

/// `POST /v1/auth/oidc/{provider}/callback` with `code` and `state`, and the binding (none:
/// no header).
pub async fn callback(
    api: &Api,
    provider: &str,
    code: &str,
    state: &str,
    binding: Option<&str>,
) -> Reply {
    let mut req = api
        .request(
            reqwest::Method::POST,
            &format!("/v1/auth/oidc/{provider}/callback"),
        )
        .json(&json!({"code": code, "state": state}));
    if let Some(b) = binding {
        req = req.header("X-OIDC-Binding", b);
    }
    api.exec(req).await
}

/// A whole sign-in as `account`: start, the provider, the callback.
pub async fn sign_in(api: &Api, provider: &Provider, account: &str) -> Reply {
    let started = start(api, &provider.name).await;
    let (code, state) = authorize(provider, &started.authorization_url, account).await;
    assert_eq!(state, started.state);
    callback(api, &provider.name, &code, &state, Some(&started.binding)).await
}
