//! The example policies in tests/policies/ are accepted by the plugin; the ones under
//! invalid/ are refused with the kind and message listed beside them, changing nothing.

mod common;

#[test]
fn every_example_policy_is_accepted() {
    let dir = common::repo_root().join("tests/policies");
    let mut count = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "json") {
            let text = std::fs::read_to_string(&path).unwrap();
            let result = common::device()
                .task
                .push_policy(text.as_str().into())
                .into_result();
            assert!(result.is_ok(), "{}: {:?}", path.display(), result);
            count += 1;
        }
    }
    assert!(count >= 5);
}

#[test]
fn every_invalid_policy_is_refused_as_documented() {
    let dir = common::repo_root().join("tests/policies/invalid");
    let expected = std::fs::read_to_string(dir.join("expected-errors.txt")).unwrap();
    let mut count = 0;
    for line in expected.lines().filter(|l| !l.trim().is_empty()) {
        let mut parts = line.splitn(3, ' ');
        let (file, kind, message) = (
            parts.next().unwrap(),
            parts.next().unwrap(),
            parts.next().unwrap(),
        );
        let text = std::fs::read_to_string(dir.join(file)).unwrap();
        let device = common::device();
        let before = device
            .task
            .settings_json()
            .into_result()
            .unwrap()
            .to_string();
        let err = device
            .task
            .push_policy(text.as_str().into())
            .into_result()
            .unwrap_err();
        assert_eq!(err.kind.as_str(), kind, "{file}: {err}");
        assert!(
            err.message.starts_with(message),
            "{file}:\n got: {}\nwant: {message}",
            err.message
        );
        assert_eq!(
            device
                .task
                .settings_json()
                .into_result()
                .unwrap()
                .to_string(),
            before
        );
        count += 1;
    }
    let files = std::fs::read_dir(&dir)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .path()
                .extension()
                .is_some_and(|x| x == "json")
        })
        .count();
    assert_eq!(
        count, files,
        "every invalid policy has its expected error listed"
    );
}
