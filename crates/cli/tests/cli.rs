//! The `switchboard` binary as a user runs it: help for every command, JSON output for
//! scripts, clear errors with a non-zero exit, and the seeding and loading commands.

use std::path::Path;
use std::process::{Command, Output};

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_switchboard"));
    c.env_remove("SWITCHBOARD_DATABASE_URL")
        .env_remove("DATABASE_URL")
        .env_remove("SWITCHBOARD_DATA_DIR")
        .env("SWITCHBOARD_LOG", "warn");
    c
}

fn run(args: &[&str], data: &Path) -> Output {
    bin()
        .args(args)
        .arg("--data-dir")
        .arg(data)
        .output()
        .expect("binary runs")
}

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
