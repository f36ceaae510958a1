//! The console driven through a pipe, as a script would: answers, `explain` for each kind
//! of setting, bad commands, and the exit status (1 after any error line).

mod common;

fn session(input: &str) -> (i32, String) {
    session_on(1, input)
}

fn session_on(devices: usize, input: &str) -> (i32, String) {
    let devices = devices.to_string();
    let (code, out, _) = common::host_sim_with_input(&["shell", "--devices", &devices], input);
    (code, out)
}

/// The output of command `n` (0-based) of a session.
fn answer(output: &str, n: usize) -> String {
    output
        .split("\n> ")
        .nth(n)
        .unwrap_or("")
        .lines()
        .skip(1)
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn explain_says_where_each_value_comes_from_and_whether_it_applies() {
    let (code, out) = session(
        r#"push_policy {"settings": {"task": {"action_on_untrusted": {"value": "log", "locked": true}, "checksum_limit_mb": 8}}}
set_local {"task": {"lookup_timeout_ms": 2500}}
explain task.action_on_untrusted
explain task.checksum_limit_mb
explain task.lookup_timeout_ms
set_private_ksn on
explain data_handling.send_statistics
explain task.schedule
"#,
    );
    assert_eq!(code, 0, "{out}");
    let locked = answer(&out, 2);
    assert!(
        locked.starts_with("task.action_on_untrusted = \"log\""),
        "{locked}"
    );
    assert!(
        locked.contains("source:  policy (locked)") && locked.contains("locked:  yes"),
        "{locked}"
    );
    assert!(
        locked.contains("a local change to another value is refused"),
        "{locked}"
    );

    let unlocked = answer(&out, 3);
    assert!(
        unlocked.starts_with("task.checksum_limit_mb = 8"),
        "{unlocked}"
    );
    assert!(
        unlocked.contains("source:  policy (unlocked)") && unlocked.contains("locked:  no"),
        "{unlocked}"
    );
    assert!(
        unlocked.contains("overrides it until the next push"),
        "{unlocked}"
    );

    let local = answer(&out, 4);
    assert!(
        local.starts_with("task.lookup_timeout_ms = 2500"),
        "{local}"
    );
    assert!(
        local.contains("source:  local") && local.contains("changed locally"),
        "{local}"
    );

    let unavailable = answer(&out, 6);
    assert!(unavailable.contains("applies: no"), "{unavailable}");
    assert!(
        unavailable.contains("unavailable in Private KSN mode"),
        "{unavailable}"
    );

    let default = answer(&out, 7);
    assert!(
        default.contains("source:  default") && default.contains("applies: yes"),
        "{default}"
    );
}

#[test]
fn the_private_ksn_story_in_the_console() {
    let (code, out) = session(
        r#"set_private_ksn on
push_policy {"settings": {"data_handling": {"ksn_statement_accepted": {"value": true, "locked": true}}}}
start
status
set_private_ksn off
status
start
set_local {"data_handling": {"ksn_statement_accepted": true}}
start
status
received
expect {"state": "running", "network": "proxy"}
"#,
    );
    assert_eq!(code, 1, "the refused start fails a scripted session: {out}");
    assert_eq!(
        answer(&out, 3),
        "device 0: running, network private, Private KSN on, licence valid"
    );
    assert!(
        answer(&out, 4).contains("task_error license_violation"),
        "{out}"
    );
    assert_eq!(
        answer(&out, 5),
        "device 0: failed (license_violation), network none, Private KSN off, licence valid"
    );
    assert!(
        answer(&out, 6).starts_with("error: device 0: statement_not_accepted"),
        "{out}"
    );
    assert_eq!(
        answer(&out, 9),
        "device 0: running, network proxy, Private KSN off, licence valid"
    );
    assert!(answer(&out, 10).contains("private        0"), "{out}");
    assert_eq!(answer(&out, 11), "ok: as expected");
}

#[test]
fn bad_commands_get_one_line_and_the_console_goes_on() {
    let (code, out) = session(
        "frobnicate\nset_private_ksn maybe\npush_policy {\"settings\": \nset_network cloud up\ncheck_file xyz\nadvance_time soon\nexplain task.nothing\nlog many\nstart now\nstatus\n",
    );
    assert_eq!(code, 1);
    let expected_starts = [
        "unknown command `frobnicate`",
        "usage: set_private_ksn on|off",
        "malformed JSON",
        "set_network: unknown Service `cloud`",
        "check_file.md5: an MD5 checksum is 32 hexadecimal digits",
        "expected a whole number, got `soon`",
        "no setting `task.nothing`",
        "expected a whole number, got `many`",
        "start takes no arguments",
        "device 0: stopped",
    ];
    for (i, start) in expected_starts.iter().enumerate() {
        let a = answer(&out, i);
        assert!(a.starts_with(start), "command {i}: {a:?}\n{out}");
        assert_eq!(a.lines().count(), 1, "command {i}: {a:?}");
    }
}

#[test]
fn a_failed_expectation_fails_the_session_and_fleets_are_summarised() {
    let (code, out) = session("expect {\"state\": \"running\"}\nstatus\n");
    assert_eq!(code, 1);
    assert!(
        answer(&out, 0).starts_with("error: device 0: state: expected running, found stopped"),
        "{out}"
    );

    let (_, out) = session_on(
        8,
        "set_local {\"data_handling\": {\"ksn_statement_accepted\": true}}\nstart\nstatus\n",
    );
    assert_eq!(
        answer(&out, 2),
        "8 devices: running, network proxy, Private KSN off, licence valid"
    );
}

#[test]
fn a_scripted_session_fails_on_any_error_line_and_succeeds_otherwise() {
    let fine = r#"status
{"do": "start", "expect_error": "statement_not_accepted"}
set_local {"data_handling": {"ksn_statement_accepted": true}}
start
expect {"state": "running"}
counters
"#;
    let (code, out) = session(fine);
    assert_eq!(code, 0, "{out}");
    let failures = [
        "expect {\"state\": \"failed\"}",
        "strat",
        "start",
        "set_private_ksn maybe",
        "push_policy @no-such-policy.json",
        "{\"do\": \"stop\", \"expect_error\": \"invalid_state\"}",
    ];
    for failure in failures {
        let (code, out) = session(&format!("{failure}\nstatus\n"));
        assert_eq!(code, 1, "{failure}: {out}");
        assert!(
            answer(&out, 1).starts_with("device 0: "),
            "the session goes on after {failure}: {out}"
        );
    }
}

#[test]
fn mistyped_verbs_steps_and_settings_get_the_nearest_name() {
    let (_, out) = session("strat\n{\"do\": \"strat\"}\nexplain task.checksum_limit\nfrobnicate\n");
    assert_eq!(
        answer(&out, 0),
        "unknown command `strat`; did you mean `start`?"
    );
    let step = answer(&out, 1);
    assert!(
        step.contains("unknown variant `strat`") && step.ends_with("did you mean `start`?"),
        "{step}"
    );
    assert_eq!(
        answer(&out, 2),
        "no setting `task.checksum_limit`; did you mean `task.checksum_limit_mb`?"
    );
    assert_eq!(
        answer(&out, 3),
        "unknown command `frobnicate`; `help` lists them"
    );
}

#[test]
fn a_policy_or_local_file_that_cannot_be_read_is_named_with_why() {
    let dir = std::env::temp_dir().join(format!("ksn-shell-files-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("broken.json"), "{\"settings\": ").unwrap();
    std::fs::write(dir.join("binary.json"), [0xff, 0xfe, 0x00]).unwrap();
    let at = |name: &str| dir.join(name).display().to_string();
    let (code, out) = session(&format!(
        "push_policy @missing.json\nset_local @{}\npush_policy @{}\nset_local @{}\npush_policy @{}\npush_policy @\n",
        at("missing.json"),
        dir.display(),
        at("broken.json"),
        at("binary.json"),
    ));
    assert_eq!(code, 1);
    let expected = [
        "@missing.json: no such file".to_string(),
        format!("@{}: no such file", at("missing.json")),
        format!("@{}: is a directory", dir.display()),
        format!("@{}: malformed JSON: EOF while parsing", at("broken.json")),
        format!("@{}: not UTF-8 text", at("binary.json")),
        "@: no file named".to_string(),
    ];
    for (i, start) in expected.iter().enumerate() {
        let a = answer(&out, i);
        assert!(a.starts_with(start.as_str()), "command {i}: {a:?}\n{out}");
        assert_eq!(a.lines().count(), 1, "{a:?}");
        assert!(!a.contains("os error"), "{a:?}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn counters_are_one_aligned_name_value_per_line() {
    let (code, out) = session(
        "set_local {\"data_handling\": {\"ksn_statement_accepted\": true}}\nstart\ncheck_file 44d88612fea8a8f36de82e1278abb02f\ncounters\n",
    );
    assert_eq!(code, 0, "{out}");
    let counters = answer(&out, 3);
    let lines: Vec<&str> = counters.lines().collect();
    assert!(lines.len() >= 4, "{counters}");
    assert!(
        lines.contains(&"cache_entries      1"),
        "names padded, values aligned: {counters}"
    );
    for line in &lines {
        assert_eq!(line.len(), lines[0].len(), "{counters}");
        let (name, value) = line.split_once(' ').unwrap();
        assert!(
            name.chars()
                .all(|c| c.is_ascii_lowercase() || c == '_' || c == '.'),
            "{line}"
        );
        assert!(value.trim().parse::<u64>().is_ok(), "{line}");
    }
}

#[test]
fn statement_shows_the_text_the_current_mode_accepts_with_its_version() {
    let (code, out) = session("statement\nset_private_ksn on\nstatement\nstatement kmp\n");
    assert_eq!(code, 0, "{out}");
    assert!(
        answer(&out, 0).starts_with("Kaspersky Security Network Statement (version 1)"),
        "{out}"
    );
    assert!(answer(&out, 0).contains("send_scanned_urls_data"), "{out}");
    assert!(
        answer(&out, 2).starts_with("Kaspersky Private Security Network Statement (version 1)"),
        "{out}"
    );
    assert!(
        answer(&out, 3).starts_with("Kaspersky Managed Protection Statement"),
        "{out}"
    );
    let (code, out) = session("statement gdpr\n");
    assert_eq!(code, 1);
    assert!(
        answer(&out, 0).contains("expected ksn, private_ksn or kmp"),
        "{out}"
    );
}

#[test]
fn the_server_s_views_show_groups_policies_revisions_events_and_statuses() {
    let input = r#"create_group Servers
{"do": "move_devices", "group": "Servers", "on": {"device": 1}}
create_policy Root / {"settings": {"task": {"checksum_limit_mb": {"value": 8, "locked": true}}}}
edit_policy Root {"settings": {"task": {"checksum_limit_mb": 16}}}
groups
policies
diff Root 1 2
explain task.checksum_limit_mb
statuses
events info 3
diff Nothing
"#;
    let (code, out) = session_on(2, input);
    assert_eq!(code, 1, "the last command is an error: {out}");
    let groups = answer(&out, 4);
    assert!(
        groups.contains("/ (Managed devices): 2 devices (2 Warning), 1 in the group itself; policy \"Root\" revision 2")
            && groups.contains("  Servers: 1 device (1 Warning)"),
        "{groups}"
    );
    let policies = answer(&out, 5);
    assert!(
        policies.contains("\"Root\" of /: active, revision 2")
            && policies.contains("task.checksum_limit_mb = 16"),
        "{policies}"
    );
    assert!(
        answer(&out, 6).contains("task.checksum_limit_mb: 8 (locked) → 16"),
        "{out}"
    );
    assert!(
        answer(&out, 7).contains("policy:  set by policy \"Root\" of group / (revision 2)"),
        "{out}"
    );
    let statuses = answer(&out, 8);
    assert!(
        statuses.contains("device 1 (Servers): Warning: the statement is not accepted")
            && statuses.contains("statuses: 2 devices (2 Warning)"),
        "{statuses}"
    );
    let events = answer(&out, 9);
    assert_eq!(
        events.lines().filter(|l| l.contains(" info: ")).count(),
        3,
        "{events}"
    );
    assert!(answer(&out, 10).contains("no policy \"Nothing\""), "{out}");
}
