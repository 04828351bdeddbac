//! Least privilege, read from template.yaml itself: only the functions that sign tokens can
//! read the private signing keys, every other function reads the public ones, and no
//! statement grants a wildcard action or resource.

use serde_yaml::Value;
use serde_yaml::value::TaggedValue;

/// The functions (by binary) that sign access tokens, and the rotation function that writes
/// the keys.
const SIGNERS: [&str; 4] = ["login", "mfa_verify", "refresh", "rotate_keys"];

fn template() -> Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../template.yaml");
    serde_yaml::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// A `!Ref X` names X.
fn reference(v: &Value) -> Option<&str> {
    match v {
        Value::Tagged(t) if t.tag == "!Ref" => t.value.as_str(),
        _ => None,
    }
}

fn list(v: &Value) -> Vec<&Value> {
    match v {
        Value::Sequence(s) => s.iter().collect(),
        Value::Null => vec![],
        other => vec![other],
    }
}

/// Every string anywhere in a value (inside intrinsic functions too).
fn strings(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::String(s) => out.push(s.clone()),
        Value::Sequence(s) => s.iter().for_each(|x| strings(x, out)),
        Value::Mapping(m) => m.values().for_each(|x| strings(x, out)),
        Value::Tagged(t) => {
            let TaggedValue { value, .. } = &**t;
            strings(value, out)
        }
        _ => {}
    }
}

struct Grant {
    function: String,
    binary: String,
    actions: Vec<String>,
    resources: Vec<Value>,
}

fn grants(t: &Value) -> Vec<Grant> {
    let mut out = Vec::new();
    for (id, res) in t["Resources"].as_mapping().unwrap() {
        if res["Type"] != "AWS::Serverless::Function" {
            continue;
        }
        let binary = res["Metadata"]["BuildProperties"]["Binary"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        for policy in list(&res["Properties"]["Policies"]) {
            assert!(
                policy.get("Statement").is_some(),
                "{id:?}: only inline statements are used (a SAM policy template hides its actions): {policy:?}"
            );
            for st in list(&policy["Statement"]) {
                assert_eq!(st["Effect"], "Allow", "{id:?}");
                out.push(Grant {
                    function: id.as_str().unwrap().to_owned(),
                    binary: binary.clone(),
                    actions: list(&st["Action"])
                        .into_iter()
                        .map(|a| a.as_str().unwrap().to_owned())
                        .collect(),
                    resources: list(&st["Resource"]).into_iter().cloned().collect(),
                });
            }
        }
    }
    out
}

#[test]
fn only_the_signing_functions_can_read_the_private_keys() {
    let t = template();
    let grants = grants(&t);
    let mut readers: Vec<&str> = grants
        .iter()
        .filter(|g| {
            g.actions
                .iter()
                .any(|a| a.starts_with("secretsmanager:") || a == "*")
                && g.resources
                    .iter()
                    .any(|r| reference(r) == Some("SigningKeysSecret"))
        })
        .map(|g| g.binary.as_str())
        .collect();
    readers.sort();
    readers.dedup();
    let mut expected = SIGNERS.to_vec();
    expected.sort();
    assert_eq!(readers, expected, "who may touch the private signing keys");

    // Everyone else who verifies tokens reads the public keys.
    let public: Vec<&str> = grants
        .iter()
        .filter(|g| {
            g.resources
                .iter()
                .any(|r| reference(r) == Some("PublicKeysSecret"))
        })
        .map(|g| g.binary.as_str())
        .collect();
    for verifier in [
        "readyz",
        "me",
        "set_roles",
        "join_event",
        "create_event",
        "jwks",
    ] {
        assert!(
            public.contains(&verifier),
            "{verifier} reads the public keys"
        );
    }

    // The private secret's id is handed only to the signers; every function gets the public one.
    let globals = &t["Globals"]["Function"]["Environment"]["Variables"];
    assert!(globals.get("SIGNING_KEYS_SECRET_ID").is_none());
    assert_eq!(
        reference(&globals["PUBLIC_KEYS_SECRET_ID"]),
        Some("PublicKeysSecret")
    );
    for (id, res) in t["Resources"].as_mapping().unwrap() {
        let binary = res["Metadata"]["BuildProperties"]["Binary"]
            .as_str()
            .unwrap_or_default();
        let has = res["Properties"]["Environment"]["Variables"]
            .get("SIGNING_KEYS_SECRET_ID")
            .is_some();
        assert_eq!(has, SIGNERS.contains(&binary), "{id:?} ({binary})");
    }

    // Nothing else in the template grants access to it (no roles or policies of their own).
    for (id, res) in t["Resources"].as_mapping().unwrap() {
        let kind = res["Type"].as_str().unwrap();
        assert!(
            !kind.starts_with("AWS::IAM::"),
            "{id:?} is an IAM resource: the test above would not see what it grants"
        );
    }
}

#[test]
fn no_function_has_a_wildcard_action_or_resource() {
    let t = template();
    let grants = grants(&t);
    assert!(grants.len() > 20, "the policies were read");
    for g in &grants {
        for a in &g.actions {
            assert!(!a.contains('*'), "{}: action {a}", g.function);
        }
        for r in &g.resources {
            let mut texts = Vec::new();
            strings(r, &mut texts);
            for s in texts {
                assert!(!s.contains('*'), "{}: resource {s}", g.function);
            }
        }
    }
}
