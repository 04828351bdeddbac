//! The end-to-end tests (in tests/) run over HTTP against the local stack that `make test`
//! starts; [`Stack`] is how they find it.

use std::path::PathBuf;

/// The running local stack, as infra/local_stack.py describes it in its ready file.
pub struct Stack {
    pub url: String,
    pub aws_endpoint_url: String,
    pub log_dir: PathBuf,
    pub env: serde_json::Map<String, serde_json::Value>,
}

impl Stack {
    /// The stack named by `CITY_EVENTS_STACK` (set by `make test`). Without it the end-to-end
    /// tests cannot run, and fail saying so rather than pass without testing anything.
    pub fn get() -> Stack {
        Self::from_env("CITY_EVENTS_STACK")
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
        }
    }

    /// An HTTP client whose requests come from `ip` (any 127.x.y.z address reaches the loopback
    /// gateway), so a test has its own per-IP rate-limit budget.
    pub fn client_from(ip: [u8; 4]) -> reqwest::Client {
        reqwest::Client::builder()
            .local_address(std::net::IpAddr::from(ip))
            .timeout(std::time::Duration::from_secs(60))
            .build()
            .expect("an HTTP client")
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
