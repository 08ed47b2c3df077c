//! The `switchboard` binary as a user runs it: help for every command, JSON output for
//! scripts, clear errors with a non-zero exit, and the seeding and loading commands.

use std::path::Path;
use std::process::Output;

mod common;

use common::{bin, run};

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn every_command_has_help() {
    let commands: &[&[&str]] = &[
        &[],
        &["serve"],
        &["demo"],
        &["migrate"],
        &["tenants", "add"],
        &["tenants", "show"],
        &["users", "add"],
        &["users", "list"],
        &["flows", "check"],
        &["flows", "load"],
        &["flows", "start"],
        &["channels", "add"],
        &["config", "example"],
    ];
    for c in commands {
        let o = bin().args(*c).arg("--help").output().unwrap();
        assert!(o.status.success(), "{c:?} --help failed: {}", stderr(&o));
        assert!(stdout(&o).contains("Usage:"), "{c:?} --help prints usage");
    }
}

#[test]
fn tenants_and_users_are_created_with_json_output_and_errors_say_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let o = run(
        &[
            "tenants", "add", "--slug", "acme", "--name", "ACME", "--json",
        ],
        dir.path(),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let t: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(t["slug"], "acme");

    let o = run(
        &[
            "users",
            "add",
            "--tenant",
            "acme",
            "--email",
            "boss@acme.example",
            "--name",
            "Boss",
            "--role",
            "admin",
            "--json",
        ],
        dir.path(),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let u: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(u["role"], "admin");
    assert!(
        u["password"].as_str().is_some_and(|p| p.len() >= 10),
        "a generated password is printed once"
    );
    assert!(u.get("password_hash").is_none());

    let o = run(
        &[
            "users",
            "add",
            "--tenant",
            "acme",
            "--email",
            "boss@acme.example",
            "--name",
            "Again",
        ],
        dir.path(),
    );
    assert!(!o.status.success(), "a duplicate e-mail fails");
    assert!(stderr(&o).contains("already"), "{}", stderr(&o));

    let o = run(&["users", "list", "--tenant", "nope"], dir.path());
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("switchboard tenants add"),
        "the error says how to fix it: {}",
        stderr(&o)
    );

    let o = run(
        &[
            "users",
            "add",
            "--tenant",
            "acme",
            "--email",
            "x@acme.example",
            "--name",
            "X",
            "--role",
            "boss",
        ],
        dir.path(),
    );
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("admin, supervisor, agent"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn demo_seeding_is_idempotent_and_flows_load_sets_a_channels_default() {
    let dir = tempfile::tempdir().unwrap();
    let seed = || {
        run(
            &[
                "demo",
                "--seed-only",
                "--json",
                "--admin-password",
                "cli-test-password",
            ],
            dir.path(),
        )
    };
    let first: serde_json::Value = serde_json::from_str(&stdout(&seed())).unwrap();
    let second: serde_json::Value = serde_json::from_str(&stdout(&seed())).unwrap();
    assert_eq!(first["created"], true);
    assert_eq!(
        second["created"], false,
        "running demo again creates nothing new"
    );
    assert_eq!(first["webchat_channel_id"], second["webchat_channel_id"]);
    let channel = first["webchat_channel_id"].as_str().unwrap().to_string();

    let flows_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../flows");
    let mut files: Vec<String> = std::fs::read_dir(&flows_dir)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .map(|p| p.display().to_string())
        .collect();
    files.sort();
    let mut args = vec![
        "flows",
        "load",
        "--tenant",
        "demo",
        "--default-flow",
        "balance",
        "--channel",
        &channel,
        "--json",
    ];
    args.extend(files.iter().map(String::as_str));
    let o = run(&args, dir.path());
    assert!(o.status.success(), "{}", stderr(&o));
    let out: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(out["default_flow"]["flow_id"], "balance");
    assert!(
        out["flows"]
            .as_array()
            .unwrap()
            .iter()
            .all(|f| f["created"] == false),
        "demo already loaded the same sources: {out}"
    );

    let bad = dir.path().join("bad.yaml");
    std::fs::write(
        &bad,
        "id: broken\nnodes:\n  - id: a\n    type: send\n    text: hi\n    next: nowhere\n",
    )
    .unwrap();
    let o = run(
        &["flows", "load", "--tenant", "demo", bad.to_str().unwrap()],
        dir.path(),
    );
    assert!(!o.status.success(), "an invalid flow is refused");
    assert!(stderr(&o).contains("nowhere"), "{}", stderr(&o));
    let o = bin()
        .args(["flows", "check", bad.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert!(
        stdout(&o).contains("bad.yaml:3:"),
        "file and line are named: {}",
        stdout(&o)
    );
}

#[test]
fn flows_start_reports_progress_per_contact_and_says_why_each_was_refused() {
    let dir = tempfile::tempdir().unwrap();
    let o = run(
        &[
            "demo",
            "--seed-only",
            "--json",
            "--admin-password",
            "cli-test-password",
        ],
        dir.path(),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let seeded: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    let channel = seeded["webchat_channel_id"].as_str().unwrap().to_string();
    let unknown = "0190a0a0-0000-7000-8000-000000000001";

    // A CSV with a header row and two unknown contacts: each line says why, and the run fails.
    let csv = dir.path().join("contacts.csv");
    std::fs::write(
        &csv,
        format!("contact_id,name\n{unknown},Thandi\n0190a0a0-0000-7000-8000-000000000002,Sipho\n"),
    )
    .unwrap();
    let o = run(
        &[
            "flows",
            "start",
            "balance",
            "--tenant",
            "demo",
            "--channel",
            &channel,
            "--contacts",
            csv.to_str().unwrap(),
        ],
        dir.path(),
    );
    assert!(!o.status.success(), "nothing started is a failure");
    let out = stdout(&o);
    assert!(
        out.contains(&format!("[1/2] {unknown}: refused: contact not found")),
        "{out}"
    );
    assert!(out.contains("[2/2]"), "{out}");
    assert!(out.contains("0 of 2 started, 2 refused."), "{out}");
    assert!(stderr(&o).contains("no flow was started"), "{}", stderr(&o));

    // JSON output: one object per contact, then a summary.
    let json_file = dir.path().join("contacts.json");
    std::fs::write(&json_file, format!("[{{\"contact_id\": \"{unknown}\"}}]")).unwrap();
    let o = run(
        &[
            "flows",
            "start",
            "nope",
            "--tenant",
            "demo",
            "--channel",
            &channel,
            "--contacts",
            json_file.to_str().unwrap(),
            "--json",
        ],
        dir.path(),
    );
    let lines: Vec<serde_json::Value> = stdout(&o)
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
        .collect();
    assert_eq!(lines[0]["started"], false);
    assert_eq!(lines[0]["error"], "flow not found");
    assert_eq!(lines[1]["summary"]["refused"], 1);

    // A bad file is named with the line to fix, before anything is started.
    std::fs::write(&csv, format!("{unknown}\nnot-an-id\n")).unwrap();
    let o = run(
        &[
            "flows",
            "start",
            "balance",
            "--tenant",
            "demo",
            "--channel",
            &channel,
            "--contacts",
            csv.to_str().unwrap(),
        ],
        dir.path(),
    );
    assert!(!o.status.success());
    assert!(stderr(&o).contains("line 2"), "{}", stderr(&o));
    assert!(stdout(&o).is_empty(), "nothing was started: {}", stdout(&o));
}

#[tokio::test]
async fn flows_start_starts_a_flow_that_the_running_server_then_sends() {
    use std::time::{Duration, Instant};
    const BALANCE_PROMPT: &str = "Please send your account number (8 to 12 digits).";
    let dir = tempfile::tempdir().unwrap();
    let o = run(
        &[
            "demo",
            "--seed-only",
            "--json",
            "--admin-password",
            "cli-test-password",
        ],
        dir.path(),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let seeded: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    let channel = seeded["webchat_channel_id"].as_str().unwrap().to_string();

    // A running server, and a web chat customer who wrote to it.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let served = common::Served::start(bin(), dir.path(), None).await;
    let base = served.base.clone();
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let visitor: serde_json::Value = http
        .post(format!("{base}/chat/{channel}/session"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = visitor["token"].as_str().unwrap();
    let r = http
        .post(format!("{base}/chat/{channel}/messages"))
        .bearer_auth(token)
        .json(&serde_json::json!({"client_msg_id": "m1", "text": "hi"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 202);
    let accepted: serde_json::Value = r.json().await.unwrap();
    let conv = accepted["conversation_id"].as_str().unwrap().to_string();
    // The contact's id, as staff see it.
    let r = http
        .post(format!("{base}/api/v1/auth/login"))
        .json(&serde_json::json!({"email": "admin@demo.example", "password": "cli-test-password"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let cookie: String = r
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok()?.split(';').next().map(str::to_string))
        .collect::<Vec<_>>()
        .join("; ");
    let staff_get = |path: String| {
        let (http, cookie, base) = (http.clone(), cookie.clone(), base.clone());
        async move {
            http.get(format!("{base}{path}"))
                .header("cookie", cookie)
                .send()
                .await
                .unwrap()
                .json::<serde_json::Value>()
                .await
                .unwrap()
        }
    };
    let detail = staff_get(format!("/api/v1/conversations/{conv}")).await;
    let contact = detail["contact"]["id"]
        .as_str()
        .expect("contact")
        .to_string();

    // Act: the operator starts the balance flow for that contact.
    let csv = dir.path().join("contacts.csv");
    std::fs::write(&csv, format!("contact_id\n{contact}\n")).unwrap();
    let o = run(
        &[
            "flows",
            "start",
            "balance",
            "--tenant",
            "demo",
            "--channel",
            &channel,
            "--contacts",
            csv.to_str().unwrap(),
        ],
        dir.path(),
    );

    // Assert: reported as started in the customer's conversation, and the running server
    // sends the flow's first message there.
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(
        out.contains(&format!("[1/1] {contact}: started in conversation {conv}")),
        "{out}"
    );
    assert!(out.contains("1 of 1 started, 0 refused."), "{out}");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let m = staff_get(format!("/api/v1/conversations/{conv}/messages")).await;
        let asked = m["messages"].as_array().is_some_and(|list| {
            list.iter()
                .any(|x| x["direction"] == "outbound" && x["content"]["body"] == BALANCE_PROMPT)
        });
        if asked {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the balance prompt was not sent within 30 s: {m}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[test]
fn keys_commands_explain_themselves() {
    for args in [
        &["keys", "--help"][..],
        &["keys", "rotate", "--help"],
        &["keys", "add-version", "--help"],
    ] {
        let out = bin().args(args).output().expect("binary runs");
        assert!(out.status.success(), "{args:?}: {}", stderr(&out));
        assert!(stdout(&out).contains("Usage"), "{args:?}");
    }
}

#[test]
fn first_start_makes_a_master_key_outside_the_data_dir_and_rotation_moves_to_a_new_one() {
    // Arrange: no key configured; the config dir is a temp folder.
    let home = tempfile::tempdir().unwrap();
    let data = home.path().join("data");
    let config_home = home.path().join("config");
    let plain = |args: &[&str]| {
        bin()
            .env_remove("SWITCHBOARD_MASTER_KEY")
            .env("XDG_CONFIG_HOME", &config_home)
            .args(args)
            .arg("--data-dir")
            .arg(&data)
            .output()
            .expect("binary runs")
    };

    // Act: the first command that opens the database makes the key and says so.
    let out = plain(&["tenants", "add", "--slug", "acme", "--name", "Acme"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let key_file = config_home.join("switchboard").join("master.key");
    assert!(
        stdout(&out).contains("Created a new master key"),
        "{}",
        stdout(&out)
    );
    assert!(key_file.exists());
    assert!(!key_file.starts_with(&data));

    // A different key is refused with a clear message.
    let wrong = bin()
        .args([
            "tenants",
            "add",
            "--slug",
            "other",
            "--name",
            "Other",
            "--data-dir",
        ])
        .arg(&data)
        .output()
        .unwrap();
    assert!(!wrong.status.success());
    assert!(
        stderr(&wrong).contains("cannot unwrap"),
        "{}",
        stderr(&wrong)
    );

    // Rotate to a new key file; afterwards only the new key opens the data.
    let new_key = home.path().join("new.key");
    let out = bin()
        .args(["keys", "generate", "--out", new_key.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let out = plain(&[
        "keys",
        "rotate",
        "--new-key-file",
        new_key.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("1 data keys re-wrapped"),
        "{}",
        stdout(&out)
    );
    let old = plain(&["tenants", "add", "--slug", "x", "--name", "X"]);
    assert!(
        !old.status.success(),
        "the old key no longer opens the database"
    );
    let new = bin()
        .env_remove("SWITCHBOARD_MASTER_KEY")
        .env("SWITCHBOARD_MASTER_KEY_FILE", &new_key)
        .args(["tenants", "add", "--slug", "y", "--name", "Y", "--data-dir"])
        .arg(&data)
        .output()
        .unwrap();
    assert!(new.status.success(), "{}", stderr(&new));
}
