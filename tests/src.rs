//! The end-to-end tests (in tests/) run over HTTP against the local stack that `make test`
//! starts; [`Stack`] is how they find it.

pub mod client;
pub mod joining;
pub mod oidc;
pub mod ws;
pub mod xray;

pub use client::{Caller, TokenMinter};

use std::path::PathBuf;

use reqwest::StatusCode;
use serde_json::{Value, json};

/// The running local stack, as infra/local_stack.py describes it in its ready file.
pub struct Stack {
    pub url: String,
    pub aws_endpoint_url: String,
    pub log_dir: PathBuf,
    pub env: serde_json::Map<String, serde_json::Value>,
    /// The template's resources as created (logical id → table name, queue URL, secret ARN).
    pub refs: serde_json::Map<String, serde_json::Value>,
    /// The WebSocket API (`ws://…`) and its management API, on the first stack.
    pub realtime_url: Option<String>,
    pub realtime_management_url: Option<String>,
    /// The local OpenID Connect provider (name, issuer, client_id, redirect_base).
    pub oidc: Option<serde_json::Value>,
}

impl Stack {
    /// The stack named by `CITY_EVENTS_STACK` (set by `make test`). Without it the end-to-end
    /// tests cannot run, and fail saying so rather than pass without testing anything.
    pub fn get() -> Stack {
        Self::from_env("CITY_EVENTS_STACK")
    }

    /// The stack ([`Stack::get`]) and a client of its gateway sending from `ip` ([`Api::new`]):
    /// how most tests begin.
    pub fn with_api(ip: [u8; 4]) -> (Stack, Api) {
        let stack = Stack::get();
        let api = Api::new(&stack, ip);
        (stack, api)
    }

    /// The second gateway `make test` starts on the same moto server and resources.
    pub fn second_gateway() -> Stack {
        Self::from_env("CITY_EVENTS_STACK_2")
    }

    fn from_env(var: &str) -> Stack {
        let path = std::env::var(var).unwrap_or_else(|_| {
            panic!("{var} is not set: run the end-to-end tests with `make test`")
        });
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        Stack {
            url: v["url"].as_str().unwrap().to_owned(),
            aws_endpoint_url: v["aws_endpoint_url"].as_str().unwrap().to_owned(),
            log_dir: PathBuf::from(v["log_dir"].as_str().unwrap()),
            env: v["env"].as_object().unwrap().clone(),
            refs: v["resources"]["refs"]
                .as_object()
                .cloned()
                .unwrap_or_default(),
            realtime_url: v["realtime_url"].as_str().map(str::to_owned),
            realtime_management_url: v["realtime_management_url"].as_str().map(str::to_owned),
            oidc: Some(v["oidc"].clone()).filter(|o| o.is_object()),
        }
    }

    /// The resource `logical_id` of the template as created (a queue's URL, a table's name).
    pub fn resource(&self, logical_id: &str) -> String {
        self.refs[logical_id]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    /// An HTTP client whose requests come from `ip` (any 127.x.y.z address reaches the loopback
    /// gateway), so a test has its own per-IP rate-limit budget.
    pub fn client_from(ip: [u8; 4]) -> reqwest::Client {
        reqwest::Client::builder()
            .local_address(std::net::IpAddr::from(ip))
            .timeout(std::time::Duration::from_secs(300))
            .build()
            .expect("an HTTP client")
    }

    /// The SDK configuration of the stack's moto server.
    pub async fn sdk(&self) -> aws_config::SdkConfig {
        use aws_sdk_dynamodb::config::{Credentials, Region};
        aws_config::defaults(aws_config::BehaviorVersion::latest())
            .endpoint_url(&self.aws_endpoint_url)
            .region(Region::new("us-east-1"))
            .credentials_provider(Credentials::new("testing", "testing", None, None, "e2e"))
            // The tests' own calls name themselves: a fault plan (infra/moto_server.py) hits
            // the functions under test, not the test's bookkeeping.
            .app_name(aws_config::AppName::new("e2e-tests").expect("a valid app name"))
            .load()
            .await
    }

    /// A DynamoDB client of the stack's moto server (the real SDK).
    pub async fn dynamodb(&self) -> aws_sdk_dynamodb::Client {
        aws_sdk_dynamodb::Client::new(&self.sdk().await)
    }

    /// A DynamoDB client of the stack's moto server and the name of the stack's table.
    pub async fn table(&self) -> (aws_sdk_dynamodb::Client, String) {
        (self.dynamodb().await, self.env("TABLE_NAME"))
    }

    /// One item of the stack's table, read consistently (tests of what is stored).
    pub async fn item(
        &self,
        pk: &str,
        sk: &str,
    ) -> Option<std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue>> {
        use aws_sdk_dynamodb::types::AttributeValue as V;
        self.dynamodb()
            .await
            .get_item()
            .table_name(self.env("TABLE_NAME"))
            .key("pk", V::S(pk.to_owned()))
            .key("sk", V::S(sk.to_owned()))
            .consistent_read(true)
            .send()
            .await
            .expect("the table answers")
            .item
    }

    /// An SQS client of the stack's moto server.
    pub async fn sqs(&self) -> aws_sdk_sqs::Client {
        aws_sdk_sqs::Client::new(&self.sdk().await)
    }

    /// Signs access tokens exactly as the login function does, with the stack's current
    /// signing key (read from its Secrets Manager). Tests that need hundreds of distinct
    /// callers use it instead of hundreds of argon2id registrations; the tokens are verified by
    /// the functions like any other, and renewed like any other (see [`client`]).
    pub async fn token_minter(&self) -> TokenMinter {
        TokenMinter::new(
            self.table().await,
            aws_sdk_secretsmanager::Client::new(&self.sdk().await),
            self.env("SIGNING_KEYS_SECRET_ID"),
            self.env("JWT_ISSUER"),
            self.env("JWT_AUDIENCE"),
        )
        .await
    }

    /// A value of the functions' environment (TABLE_NAME, OUTBOX_QUEUE_URL, ...).
    pub fn env(&self, name: &str) -> String {
        self.env[name].as_str().unwrap_or_default().to_owned()
    }

    /// The JSON lines a function has logged so far.
    pub fn log_lines(&self, function: &str) -> Vec<serde_json::Value> {
        let path = self.log_dir.join(format!("{function}.log"));
        std::fs::read_to_string(&path)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    /// A function's log lines once `done` holds for them (read again every 100 ms, for at
    /// most [`PATIENCE`]): a function's lines reach its log file after its response, through
    /// the local stack's pump thread, later still on a busy machine. Returns the last read.
    pub async fn log_lines_until(
        &self,
        function: &str,
        done: impl Fn(&[serde_json::Value]) -> bool,
    ) -> Vec<serde_json::Value> {
        let until = std::time::Instant::now() + PATIENCE;
        loop {
            let lines = self.log_lines(function);
            if done(&lines) || std::time::Instant::now() > until {
                return lines;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    }

    /// Everything every function has logged so far, as text.
    pub fn all_logs(&self) -> String {
        let mut out = String::new();
        if let Ok(dir) = std::fs::read_dir(&self.log_dir) {
            for entry in dir.flatten() {
                out.push_str(&std::fs::read_to_string(entry.path()).unwrap_or_default());
            }
        }
        out
    }
}

/// How long a test waits for something asynchronous (an outbox message reaching an inbox, a
/// redelivery after a visibility timeout, a log line) before it fails. Generous on purpose:
/// every wait ends as soon as its condition holds, so only a failing test waits this long, and
/// a slow or busy machine does not fail a test of a system that is right.
pub const PATIENCE: std::time::Duration = std::time::Duration::from_secs(300);

/// The password every test account uses (strong enough for the policy).
pub const PASSWORD: &str = "violet tram sings at dusk";

/// A client of the gateway, sending from its own loopback address.
#[derive(Clone)]
pub struct Api {
    base: String,
    client: reqwest::Client,
}

/// A response, read whole.
pub struct Reply {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
}

impl Api {
    pub fn new(stack: &Stack, ip: [u8; 4]) -> Api {
        Api {
            base: stack.url.clone(),
            client: Stack::client_from(ip),
        }
    }

    /// A client of the gateway of the stack ([`Stack::get`]) sending from `ip`, for a test that
    /// needs nothing else of the stack.
    pub fn at(ip: [u8; 4]) -> Api {
        Api::new(&Stack::get(), ip)
    }

    pub async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
        bearer: Option<&str>,
    ) -> Reply {
        let mut req = self.client.request(method, format!("{}{path}", self.base));
        if let Some(b) = body {
            req = req.json(&b);
        }
        if let Some(t) = bearer {
            req = req.bearer_auth(t);
        }
        self.exec(req).await
    }

    /// A request to `path` on this gateway, to finish with headers and send with [`Api::exec`].
    pub fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.client.request(method, format!("{}{path}", self.base))
    }

    pub async fn exec(&self, req: reqwest::RequestBuilder) -> Reply {
        self.try_exec(req).await.expect("the gateway answers")
    }

    /// Sends `req` and reads the answer whole; a connection or read failure is an error.
    pub async fn try_exec(&self, req: reqwest::RequestBuilder) -> reqwest::Result<Reply> {
        let resp = req.send().await?;
        let status = resp.status();
        let headers = resp.headers().clone();
        let text = resp.text().await?;
        let body = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        Ok(Reply {
            status,
            headers,
            body,
        })
    }

    pub async fn post(&self, path: &str, body: Value) -> Reply {
        self.send(reqwest::Method::POST, path, Some(body), None)
            .await
    }

    pub async fn register(&self, email: &str) -> Reply {
        self.post(
            "/v1/auth/register",
            json!({"email": email, "password": PASSWORD, "display_name": "E2E"}),
        )
        .await
    }

    pub async fn login(&self, email: &str, password: &str) -> Reply {
        self.post(
            "/v1/auth/login",
            json!({"email": email, "password": password}),
        )
        .await
    }

    pub async fn me(&self, token: &str) -> Reply {
        self.send(reqwest::Method::GET, "/v1/me", None, Some(token))
            .await
    }

    pub async fn refresh(&self, refresh_token: &str) -> Reply {
        self.post("/v1/auth/refresh", json!({"refresh_token": refresh_token}))
            .await
    }

    /// Registers a new account (its answer unchecked) and logs it in with [`PASSWORD`]: (the
    /// account's email, the login's answer). Two auth requests from this address.
    pub async fn sign_up(&self) -> (String, Reply) {
        let email = email();
        self.register(&email).await;
        let login = self.login(&email, PASSWORD).await;
        (email, login)
    }

    /// `POST /v1/me/mfa/totp` with [`PASSWORD`], as the holder of `access`: starts enrolling an
    /// authenticator (the answer holds its secret).
    pub async fn enroll_totp(&self, access: &str) -> Reply {
        let body = json!({ "password": PASSWORD });
        let path = "/v1/me/mfa/totp";
        self.send(reqwest::Method::POST, path, Some(body), Some(access))
            .await
    }

    /// `POST /v1/me/mfa/totp/activate` with `code`, as the holder of `access`: turns the enrolled
    /// authenticator on (the answer holds the recovery codes).
    pub async fn activate_totp(&self, access: &str, code: &str) -> Reply {
        let body = json!({ "code": code });
        let path = "/v1/me/mfa/totp/activate";
        self.send(reqwest::Method::POST, path, Some(body), Some(access))
            .await
    }
}

/// A fresh address.
pub fn email() -> String {
    format!("e2e-{}@example.com", uuid::Uuid::new_v4().simple())
}

/// A string member that must be there.
pub fn s(v: &Value, k: &str) -> String {
    v[k].as_str()
        .unwrap_or_else(|| panic!("{k} missing in {v}"))
        .to_owned()
}

/// The administrator the local stack created at start (from its ready file).
pub fn admin_credentials() -> (String, String) {
    let path = std::env::var("CITY_EVENTS_STACK").expect("CITY_EVENTS_STACK is set by make test");
    let v: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    (s(&v["admin"], "email"), s(&v["admin"], "password"))
}

impl Api {
    /// A new account with `roles`, logged in: (user id, access token). See [`Api::account`].
    pub async fn account_with_roles(&self, roles: &[&str]) -> (String, String) {
        let caller = self.account(roles).await;
        let token = caller.current_token().await;
        (caller.id, token)
    }

    /// A new account with `roles` (granted by the stack's admin), logged in, as a client that
    /// renews its token through the refresh endpoint. Four auth requests from this address.
    pub async fn account(&self, roles: &[&str]) -> Caller {
        let email = email();
        let user = self.register(&email).await;
        assert_eq!(user.status, 201, "{}", user.body);
        let id = s(&user.body, "id");
        if !roles.is_empty() {
            let (admin_email, admin_password) = admin_credentials();
            let admin = self.login(&admin_email, &admin_password).await;
            assert_eq!(admin.status, 200, "{}", admin.body);
            let set = self
                .send(
                    reqwest::Method::PUT,
                    &format!("/v1/admin/users/{id}/roles"),
                    Some(json!({ "roles": roles })),
                    Some(&s(&admin.body, "access_token")),
                )
                .await;
            assert_eq!(set.status, 200, "{}", set.body);
        }
        let login = self.login(&email, PASSWORD).await;
        Caller::from_login(id, &login, self)
    }
}

/// Sends one HTTP request to moto's fault endpoint with the standard library only, so that it
/// also works from a destructor (a failing test must not leave the faults on for the next one).
pub fn faults(endpoint: &str, body: &str) -> serde_json::Value {
    let hostport = endpoint.trim_start_matches("http://");
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(hostport).expect("moto answers");
    let method = if body.is_empty() { "GET" } else { "POST" };
    write!(
        s,
        "{method} /_faults HTTP/1.1\r\nHost: {hostport}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let json = out.split("\r\n\r\n").nth(1).unwrap_or("{}");
    serde_json::from_str(json).unwrap_or(serde_json::Value::Null)
}
