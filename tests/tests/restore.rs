//! Issue 19: the restore drill (infra/restore_drill.py, the runbook's "Restore the table")
//! passes against the local stack: data written, the time noted, the data damaged, the table
//! restored to that time into a new table (moto restores to a point in time as DynamoDB does:
//! infra/moto_server.py), the data verified, and functions switched to the restored table read
//! the event the damaged table lost.

use std::path::Path;

use e2e::joining::{create_event, with_organizer};
use reqwest::StatusCode;

#[tokio::test]
async fn the_restore_drill_brings_back_the_table_as_it_was_and_the_functions_read_it() {
    let (stack, api, _minter, organizer) = with_organizer([127, 0, 19, 1]).await;
    let event = create_event(&api, &organizer, 5).await;
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let ready = std::env::var("CITY_EVENTS_STACK").unwrap();
    let python = root.join(".tools/stack/bin/python");
    let (script, dir) = (root.join("infra/restore_drill.py"), root.to_owned());
    let args = [
        "--stack".to_owned(),
        ready,
        "--event".to_owned(),
        event.clone(),
        "--json".into(),
    ];
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(python)
            .arg(script)
            .args(args)
            .current_dir(dir)
            .output()
    })
    .await
    .unwrap()
    .expect("the drill runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let report: serde_json::Value = serde_json::from_str(stdout.trim())
        .unwrap_or_else(|e| panic!("{e}: {stdout}\n{}", String::from_utf8_lossy(&out.stderr)));
    for check in [
        "drill_items_as_at_T",
        "deleted_after_T_back",
        "overwritten_after_T_as_before",
        "added_after_T_absent",
        "restored_to_the_time_asked",
        "damage_in_source",
        "event_back",
        "switched_functions_read_the_restored_table",
        "damaged_table_misses_the_event",
    ] {
        assert_eq!(report["checks"][check], true, "{check}: {report}");
    }
    assert!(out.status.success(), "{report}");
    // What a restore does not carry over was set again.
    assert_eq!(report["settings"]["ttl"], "ENABLED", "{report}");
    assert_eq!(report["settings"]["pitr"], "ENABLED", "{report}");
    assert_eq!(
        report["settings"]["stream"], "NEW_AND_OLD_IMAGES",
        "{report}"
    );
    assert_eq!(
        report["settings"]["indexes"],
        serde_json::json!(["gsi1"]),
        "{report}"
    );
    // The damaged table still lacks the event through the stack's own gateway.
    let r = api
        .send(
            reqwest::Method::GET,
            &format!("/v1/events/{event}"),
            None,
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.body);
    // A point in time before recovery was on, or after now, is refused as DynamoDB does.
    let ddb = stack.dynamodb().await;
    let table = stack.resource("Table");
    for at in [0.0, 4.0e9] {
        let e = ddb
            .restore_table_to_point_in_time()
            .source_table_name(&table)
            .target_table_name(format!("{table}-never-{}", at as u64))
            .restore_date_time(aws_sdk_dynamodb::primitives::DateTime::from_secs_f64(at))
            .send()
            .await
            .expect_err("outside the restorable window");
        assert!(format!("{:?}", e).contains("InvalidRestoreTime"), "{e:?}");
    }
}
