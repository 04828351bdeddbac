//! Least privilege, read from template.yaml itself: only the functions that sign tokens can
//! read the private signing keys, every other function reads the public ones, and no
//! statement grants a wildcard action or resource.

use serde_yaml::Value;
use serde_yaml::value::TaggedValue;

/// The functions (by binary) that sign access tokens, and the rotation function that writes
/// the keys.
const SIGNERS: [&str; 5] = [
    "login",
    "mfa_verify",
    "oidc_callback",
    "refresh",
    "rotate_keys",
];

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

/// The binaries of the functions whose policy statements name `secret` (any action).
fn who_can_touch(grants: &[Grant], secret: &str) -> Vec<String> {
    let mut who: Vec<String> = grants
        .iter()
        .filter(|g| {
            g.actions
                .iter()
                .any(|a| a.starts_with("secretsmanager:") || a == "*")
                && g.resources.iter().any(|r| {
                    // `!Ref X`, or X named inside any other form (`!Sub`, `!GetAtt`, an ARN).
                    let mut texts = Vec::new();
                    strings(r, &mut texts);
                    reference(r) == Some(secret) || texts.iter().any(|t| t.contains(secret))
                })
        })
        .map(|g| g.binary.clone())
        .collect();
    who.sort();
    who.dedup();
    who
}

/// The binaries whose own environment names `variable`.
fn who_is_told(t: &Value, variable: &str) -> Vec<String> {
    let mut who: Vec<String> = t["Resources"]
        .as_mapping()
        .unwrap()
        .values()
        .filter(|r| {
            r["Properties"]["Environment"]["Variables"]
                .get(variable)
                .is_some()
        })
        .map(|r| {
            r["Metadata"]["BuildProperties"]["Binary"]
                .as_str()
                .unwrap_or_default()
                .to_owned()
        })
        .collect();
    who.sort();
    who
}

#[test]
fn only_the_signing_functions_can_read_the_private_keys() {
    let t = template();
    let grants = grants(&t);
    // (secret, the variable that names it, the only functions that may read it)
    let restricted: [(&str, &str, &[&str]); 4] = [
        ("SigningKeysSecret", "SIGNING_KEYS_SECRET_ID", &SIGNERS),
        ("RefreshKeySecret", "REFRESH_KEY_SECRET_ID", &["refresh"]),
        (
            "IdempotencyKeySecret",
            "IDEMPOTENCY_KEY_SECRET_ID",
            &["create_event", "join_event", "leave_event", "register"],
        ),
        (
            "MfaKeySecret",
            "MFA_KEY_SECRET_ID",
            &["mfa_verify", "totp_activate", "totp_disable", "totp_enroll"],
        ),
    ];
    let globals = &t["Globals"]["Function"]["Environment"]["Variables"];
    for (secret, variable, allowed) in restricted {
        let mut expected: Vec<String> = allowed.iter().map(|b| b.to_string()).collect();
        expected.sort();
        assert_eq!(
            who_can_touch(&grants, secret),
            expected,
            "who may read {secret}"
        );
        assert!(globals.get(variable).is_none(), "{variable} is not global");
        assert_eq!(
            who_is_told(&t, variable),
            expected,
            "who is told {variable}"
        );
    }

    // Everyone else who verifies tokens reads the public keys.
    let public = who_can_touch(&grants, "PublicKeysSecret");
    for verifier in [
        "readyz",
        "me",
        "set_roles",
        "join_event",
        "create_event",
        "jwks",
    ] {
        assert!(
            public.iter().any(|b| b == verifier),
            "{verifier} reads the public keys"
        );
    }
    assert_eq!(
        reference(&globals["PUBLIC_KEYS_SECRET_ID"]),
        Some("PublicKeysSecret")
    );

    // Nothing else in the template grants access to it (no roles or policies of their own).
    for (id, res) in t["Resources"].as_mapping().unwrap() {
        let kind = res["Type"].as_str().unwrap();
        assert!(
            !kind.starts_with("AWS::IAM::") && kind != "AWS::SecretsManager::ResourcePolicy",
            "{id:?} ({kind}) grants access the test above would not see"
        );
    }
}

/// The routes that change state check the caller's session inside their transaction: a
/// ConditionCheck needs its own action (AWS refuses it without; moto does not check).
#[test]
fn the_transactional_routes_may_check_the_session_in_their_transaction() {
    let t = template();
    let grants = grants(&t);
    for binary in [
        "create_event",
        "update_event",
        "cancel_event",
        "join_event",
        "leave_event",
        "set_roles",
    ] {
        assert!(
            grants.iter().any(|g| g.binary == binary
                && g.actions.iter().any(|a| a == "dynamodb:ConditionCheckItem")),
            "{binary} may ConditionCheckItem"
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
                // The one wildcard: the connection id of ManageConnections on one API and
                // stage (connections are made at run time; see the realtime test below).
                if g.actions == ["execute-api:ManageConnections"]
                    && s.ends_with("${RealtimeApi}/${RealtimeStage}/POST/@connections/*")
                    && s.matches('*').count() == 1
                {
                    continue;
                }
                assert!(!s.contains('*'), "{}: resource {s}", g.function);
            }
        }
    }
}

/// Every function is traced (Tracing: Active, globally or on itself), and each saved Logs
/// Insights query reads every function's log group and the fields our log lines carry.
#[test]
fn every_function_is_traced_and_every_query_reads_every_function_log() {
    let t = template();
    let global = &t["Globals"]["Function"]["Tracing"];
    let resources = t["Resources"].as_mapping().unwrap();
    let mut groups = Vec::new();
    for (id, r) in resources {
        if r["Type"] != "AWS::Serverless::Function" {
            continue;
        }
        let tracing = match &r["Properties"]["Tracing"] {
            Value::Null => global,
            own => own,
        };
        assert_eq!(tracing.as_str(), Some("Active"), "{id:?} is not traced");
        let group = reference(&r["Properties"]["LoggingConfig"]["LogGroup"])
            .unwrap_or_else(|| panic!("{id:?} has no log group of its own"));
        groups.push(group.to_owned());
    }
    let queries: Vec<(&Value, &Value)> = resources
        .iter()
        .filter(|(_, r)| r["Type"] == "AWS::Logs::QueryDefinition")
        .collect();
    assert_eq!(
        queries.len(),
        4,
        "errors by route, slowest, a user's, a trace's"
    );
    for (id, q) in queries {
        let read: Vec<&str> = list(&q["Properties"]["LogGroupNames"])
            .into_iter()
            .filter_map(reference)
            .collect();
        for g in &groups {
            assert!(read.contains(&g.as_str()), "{id:?} does not read {g}");
        }
        let text = q["Properties"]["QueryString"].as_str().unwrap();
        assert!(text.contains("trace_id"), "{id:?} leads to no trace");
    }
}

/// Every function either opens its DynamoDB connection at init with a GetItem of the key
/// `WARMUP` (shared::aws::Clients::warm) and may make that GetItem, or is told not to
/// (`TABLE_WARM_UP: "false"`); and only the readiness probe may call DescribeTable.
#[test]
fn every_warm_up_is_allowed_and_describe_table_is_the_probes_alone() {
    let t = template();
    for (id, res) in t["Resources"].as_mapping().unwrap() {
        if res["Type"] != "AWS::Serverless::Function" {
            continue;
        }
        let warm = res["Properties"]["Environment"]["Variables"]
            .get("TABLE_WARM_UP")
            .map(|v| v.as_str().unwrap() != "false")
            .unwrap_or(true);
        let mut may_get_warmup = false;
        for policy in list(&res["Properties"]["Policies"]) {
            for st in list(&policy["Statement"]) {
                let actions: Vec<&str> = list(&st["Action"])
                    .into_iter()
                    .map(|a| a.as_str().unwrap())
                    .collect();
                let on_table = list(&st["Resource"])
                    .iter()
                    .any(|r| format!("{r:?}").contains("Table.Arn"));
                if actions.contains(&"dynamodb:DescribeTable") {
                    assert_eq!(
                        res["Metadata"]["BuildProperties"]["Binary"], "readyz",
                        "{id:?}: DescribeTable is a control-plane call the warm-up no longer makes"
                    );
                }
                if !(on_table && actions.contains(&"dynamodb:GetItem")) {
                    continue;
                }
                let keys: Vec<String> = {
                    let cond = &st["Condition"];
                    let mut texts = Vec::new();
                    if !cond.is_null() {
                        strings(cond, &mut texts);
                    }
                    texts
                };
                may_get_warmup |= keys.is_empty()
                    || keys.iter().any(|k| k == "WARMUP")
                    || keys
                        .iter()
                        .any(|k| k.ends_with('*') && "WARMUP".starts_with(&k[..k.len() - 1]));
            }
        }
        assert_eq!(
            warm, may_get_warmup,
            "{id:?}: warms the table at init: {warm}; may GetItem the WARMUP key: {may_get_warmup}"
        );
    }
}

/// Public reads are protected across the fleet by API Gateway's route throttling (the
/// per-instance brake multiplies with the instances): each has its own route settings, within
/// the account's regional limit (docs/decisions/0013-public-read-protection.md).
#[test]
fn public_reads_are_throttled_by_the_gateway_per_route() {
    let t = template();
    let api = &t["Resources"]["HttpApi"]["Properties"];
    for route in [
        "GET /v1/events/{id}",
        "GET /v1/events",
        "POST /v1/events/batch",
    ] {
        let s = &api["RouteSettings"][route];
        let rate = s["ThrottlingRateLimit"].as_f64();
        let burst = s["ThrottlingBurstLimit"].as_i64();
        assert!(
            rate.is_some_and(|r| r > 0.0 && r <= 10_000.0)
                && burst.is_some_and(|b| b > 0 && b <= 5_000),
            "{route}: route throttling rate {rate:?}, burst {burst:?}"
        );
    }
}

/// A route whose policy lets its handler run beside (or before) the rate-limit count
/// (`Policy::api`, `Policy::public_api`, `Policy::open`) must only read: GET, or the batch read
/// `POST /v1/events/batch`. A write run beside an undecided count would change state while over
/// the limit (decision 0013).
#[test]
fn only_read_routes_count_beside_their_handler() {
    let t = template();
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
    let mut checked = 0;
    for (id, res) in t["Resources"].as_mapping().unwrap() {
        if res["Type"] != "AWS::Serverless::Function" {
            continue;
        }
        let binary = res["Metadata"]["BuildProperties"]["Binary"]
            .as_str()
            .unwrap();
        let Some(source) = ["auth", "events", "joins", "notifications", "ops"]
            .iter()
            .map(|c| format!("{root}/functions/{c}/src/bin/{binary}.rs"))
            .find_map(|p| std::fs::read_to_string(p).ok())
        else {
            panic!("{id:?}: no source for {binary}");
        };
        let read_policy = ["Policy::api(", "Policy::public_api", "Policy::open()"]
            .iter()
            .any(|p| source.contains(p));
        let routes: Vec<String> = res["Properties"]["Events"]
            .as_mapping()
            .map(|m| {
                m.values()
                    .filter(|e| e["Type"] == "HttpApi")
                    .map(|e| {
                        format!(
                            "{} {}",
                            e["Properties"]["Method"].as_str().unwrap_or(""),
                            e["Properties"]["Path"].as_str().unwrap_or("")
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        if routes.is_empty() || !read_policy {
            continue;
        }
        for route in &routes {
            assert!(
                route.starts_with("GET ")
                    || route == "POST /v1/events/batch"
                    || route.starts_with("ANY "),
                "{binary} serves {route} with a policy that runs it beside its count"
            );
        }
        checked += 1;
    }
    assert!(checked >= 10, "only {checked} read routes found");
}

/// Realtime (issue 17): only the notifications consumer may post to or close a client's
/// connection, and only on this WebSocket API's stage; the WebSocket functions cannot.
#[test]
fn only_the_consumer_manages_connections_on_this_api_only() {
    let t = template();
    let grants = grants(&t);
    let managers: Vec<&Grant> = grants
        .iter()
        .filter(|g| g.actions.iter().any(|a| a.starts_with("execute-api:")))
        .collect();
    assert_eq!(managers.len(), 1, "one statement grants execute-api");
    let g = managers[0];
    assert_eq!(g.binary, "notifications_consumer");
    assert_eq!(g.actions, ["execute-api:ManageConnections"]);
    assert_eq!(g.resources.len(), 1);
    let mut texts = Vec::new();
    strings(&g.resources[0], &mut texts);
    assert_eq!(
        texts,
        [
            "arn:${AWS::Partition}:execute-api:${AWS::Region}:${AWS::AccountId}:${RealtimeApi}/${RealtimeStage}/POST/@connections/*"
        ]
    );
    // The API it names is the WebSocket one, and each of its routes invokes a function of
    // its own.
    assert_eq!(
        t["Resources"]["RealtimeApi"]["Properties"]["ProtocolType"],
        "WEBSOCKET"
    );
    let routes: Vec<&str> = t["Resources"]
        .as_mapping()
        .unwrap()
        .values()
        .filter(|r| r["Type"] == "AWS::ApiGatewayV2::Route")
        .map(|r| r["Properties"]["RouteKey"].as_str().unwrap())
        .collect();
    for key in ["$connect", "$disconnect", "$default"] {
        assert!(routes.contains(&key), "{key}");
    }
    // Only $connect needs the public keys (it verifies the token); none of them signs.
    assert_eq!(
        who_can_touch(&grants, "PublicKeysSecret")
            .iter()
            .filter(|b| b.starts_with("realtime_"))
            .collect::<Vec<_>>(),
        ["realtime_connect"]
    );
    assert_eq!(
        who_is_told(&t, "REALTIME_ENDPOINT"),
        ["notifications_consumer"]
    );
    // Connection maps live in their own partitions (CONNS#<user>): what changes them reaches
    // no user's roles, sessions or password hash (USER#<id>), and the realtime functions change
    // nothing else but their own records and counters.
    let mut checked = 0;
    for name in [
        "RealtimeConnectFunction",
        "RealtimeDisconnectFunction",
        "RealtimeMessageFunction",
        "NotificationsConsumerFunction",
    ] {
        let f = &t["Resources"][name];
        for policy in list(&f["Properties"]["Policies"]) {
            for st in list(&policy["Statement"]) {
                let actions: Vec<&str> = list(&st["Action"])
                    .iter()
                    .filter_map(|a| a.as_str())
                    .collect();
                let writes = actions.iter().any(|a| {
                    matches!(
                        *a,
                        "dynamodb:UpdateItem" | "dynamodb:PutItem" | "dynamodb:DeleteItem"
                    )
                });
                if !writes {
                    continue;
                }
                let mut keys = Vec::new();
                strings(&st["Condition"]["ForAllValues:StringLike"], &mut keys);
                assert!(!keys.is_empty(), "{name}: a write without LeadingKeys");
                let allowed: &[&str] = if name == "NotificationsConsumerFunction" {
                    // Its inbox items (PutItem, BatchWriteItem on USER#*) predate realtime.
                    &["CONNS#*", "CONN#*", "USER#*"]
                } else {
                    &["CONNS#*", "CONN#*", "RATE#ws#*"]
                };
                for k in &keys {
                    assert!(
                        allowed.contains(&k.as_str()),
                        "{name}: writes {k} {actions:?}"
                    );
                }
                if actions.contains(&"dynamodb:UpdateItem") {
                    assert_eq!(
                        keys.iter().filter(|k| *k == "USER#*").count(),
                        0,
                        "{name}: UpdateItem on USER#*"
                    );
                }
                checked += 1;
            }
        }
    }
    assert!(checked >= 8, "the realtime writes were read ({checked})");
}

/// Sign-in with OpenID Connect (issue 18): both functions reach only their keys (every table
/// statement names its leading keys); the start reads no secret at all; the callback reads the
/// signing keys and the OIDC client secrets, and only the callback reads those.
#[test]
fn the_sign_in_functions_reach_only_their_keys_and_secrets() {
    let t = template();
    let grants = grants(&t);
    for name in ["OidcStartFunction", "OidcCallbackFunction"] {
        let f = &t["Resources"][name];
        for policy in list(&f["Properties"]["Policies"]) {
            for st in list(&policy["Statement"]) {
                let dynamodb = list(&st["Action"])
                    .iter()
                    .any(|a| a.as_str().unwrap().starts_with("dynamodb:"));
                if dynamodb {
                    let mut keys = Vec::new();
                    strings(&st["Condition"], &mut keys);
                    assert!(
                        !keys.is_empty(),
                        "{name}: a table statement without leading keys"
                    );
                    assert!(!keys.iter().any(|k| k == "*"), "{name}: {keys:?}");
                }
            }
        }
    }
    let reads = |binary: &str| -> Vec<String> {
        let mut out: Vec<String> = grants
            .iter()
            .filter(|g| {
                g.binary == binary && g.actions.iter().any(|a| a.starts_with("secretsmanager:"))
            })
            .flat_map(|g| {
                g.resources
                    .iter()
                    .filter_map(|r| reference(r).map(str::to_owned))
            })
            .collect();
        out.sort();
        out
    };
    // Every key prefix each function writes is granted (moto does not check IAM: this does).
    let granted = |name: &str, action: &str| -> Vec<String> {
        let mut keys = Vec::new();
        for policy in list(&t["Resources"][name]["Properties"]["Policies"]) {
            for st in list(&policy["Statement"]) {
                if list(&st["Action"])
                    .iter()
                    .any(|a| a.as_str() == Some(action))
                {
                    strings(&st["Condition"], &mut keys);
                }
            }
        }
        keys
    };
    for (name, action, key) in [
        ("OidcStartFunction", "dynamodb:PutItem", "OIDC#*"),
        ("OidcCallbackFunction", "dynamodb:DeleteItem", "OIDC#*"),
        ("OidcCallbackFunction", "dynamodb:PutItem", "IDENTITY#*"),
        ("OidcCallbackFunction", "dynamodb:PutItem", "EMAIL#*"),
        ("OidcCallbackFunction", "dynamodb:PutItem", "OIDCLINK#*"),
        ("LinkIdentityFunction", "dynamodb:UpdateItem", "OIDCLINK#*"),
        ("LinkIdentityFunction", "dynamodb:UpdateItem", "USER#*"),
        ("LinkIdentityFunction", "dynamodb:PutItem", "IDENTITY#*"),
        ("LinkIdentityFunction", "dynamodb:GetItem", "OIDCLINK#*"),
        ("UnlinkIdentityFunction", "dynamodb:UpdateItem", "USER#*"),
        (
            "UnlinkIdentityFunction",
            "dynamodb:DeleteItem",
            "IDENTITY#*",
        ),
    ] {
        assert!(
            granted(name, action).iter().any(|k| k == key),
            "{name}: {action} on {key} is not granted"
        );
    }
    // Unlink stamps the profile (UpdateItem), never overwrites a USER# item.
    assert!(
        !granted("UnlinkIdentityFunction", "dynamodb:PutItem")
            .iter()
            .any(|k| k == "USER#*")
    );
    assert!(reads("oidc_start").is_empty(), "{:?}", reads("oidc_start"));
    assert_eq!(
        reads("oidc_callback"),
        ["OidcClientSecrets", "SigningKeysSecret"]
    );
    assert_eq!(
        who_can_touch(&grants, "OidcClientSecrets"),
        ["oidc_callback"]
    );
    assert_eq!(who_is_told(&t, "OIDC_CLIENT_SECRETS_ID"), ["oidc_callback"]);
}
