//! The server's rules on their own: inheritance, locks, profiles, revisions, delivery.

use std::collections::BTreeMap;

use proptest::prelude::*;
use serde_json::{json, Value as Json};

use super::*;

fn entry(value: i64, locked: bool) -> Entry {
    Entry {
        value: json!(value),
        locked,
        versions: None,
    }
}

fn content(settings: &[(&str, i64, bool)]) -> Content {
    Content {
        settings: settings
            .iter()
            .map(|(p, v, l)| (p.to_string(), entry(*v, *l)))
            .collect(),
        ..Content::default()
    }
}

/// An active policy of `group`, saved by the admin at time 0.
fn active(s: &mut Server, group: GroupId, name: &str, content: Content) {
    s.create_policy(group, name, content, true, "admin", 0)
        .unwrap();
}

fn value(server: &Server, device: usize, path: &str) -> Option<Json> {
    server
        .effective(device)
        .get(path)
        .map(|s| s.entry.value.clone())
}

/// Root > Servers > Private; one device in Private.
fn three_levels() -> (Server, GroupId, GroupId) {
    let mut s = Server::default();
    let servers = s.tree.add(Tree::ROOT, "Servers").unwrap();
    let private = s.tree.add(servers, "Private").unwrap();
    s.devices.push(ManagedDevice::new(private));
    (s, servers, private)
}

#[test]
fn an_upstream_lock_wins_over_a_subgroup_s_policy_and_says_so() {
    let (mut s, servers, _) = three_levels();
    active(&mut s, Tree::ROOT, "Root", content(&[("a.x", 1, true)]));
    active(
        &mut s,
        servers,
        "Servers",
        content(&[("a.x", 2, false), ("a.y", 3, false)]),
    );
    let effective = s.effective(0);
    assert_eq!(effective["a.x"].entry, entry(1, true));
    let p = s.provenance_json(&effective["a.x"]);
    assert_eq!((&p["group"], &p["policy"]), (&json!("/"), &json!("Root")));
    assert_eq!(p["overrides"][0]["policy"], "Servers");
    assert_eq!(effective["a.y"].provenance.group, servers);
    assert!(s
        .provenance_line("a.x", &effective)
        .contains("overrides policy \"Servers\""));
}

#[test]
fn a_child_may_lock_what_its_parent_leaves_unlocked() {
    let (mut s, servers, _) = three_levels();
    active(&mut s, Tree::ROOT, "Root", content(&[("a.x", 1, false)]));
    active(&mut s, servers, "Servers", content(&[("a.x", 2, true)]));
    assert_eq!(s.effective(0)["a.x"].entry, entry(2, true));
}

#[test]
fn inherit_cleared_cuts_the_parent_off_unless_it_forces_inheritance() {
    let (mut s, servers, private) = three_levels();
    active(&mut s, Tree::ROOT, "Root", content(&[("a.x", 1, true)]));
    s.tree.group_mut(private).inherit = false;
    assert_eq!(
        value(&s, 0, "a.x"),
        None,
        "the root's policy no longer reaches it"
    );
    s.tree.group_mut(servers).inherit = false;
    s.edit_policy("Root", "edited", "admin", 1, |c| {
        c.force_inheritance = true;
        Ok(())
    })
    .unwrap();
    assert_eq!(value(&s, 0, "a.x"), Some(json!(1)), "forced through both");
}

#[test]
fn a_group_without_an_active_policy_inherits_and_an_inactive_one_is_never_inherited() {
    let (mut s, servers, _) = three_levels();
    active(&mut s, Tree::ROOT, "Root", content(&[("a.x", 1, false)]));
    s.create_policy(
        servers,
        "Draft",
        content(&[("a.x", 2, false)]),
        false,
        "admin",
        0,
    )
    .unwrap();
    assert_eq!(value(&s, 0, "a.x"), Some(json!(1)));
    s.activate("Draft").unwrap();
    assert_eq!(value(&s, 0, "a.x"), Some(json!(2)));
    active(&mut s, servers, "Other", content(&[("a.x", 3, false)]));
    assert!(
        !s.policy("Draft").unwrap().active,
        "one active policy per group"
    );
    s.delete("Other").unwrap();
    assert_eq!(value(&s, 0, "a.x"), Some(json!(1)));
}

#[test]
fn the_first_active_profile_wins_over_its_policy() {
    let (mut s, _, _) = three_levels();
    let mut c = content(&[("a.x", 1, false)]);
    let profile = |name: &str, v, condition| Profile {
        name: name.into(),
        condition,
        settings: [("a.x".to_string(), entry(v, true))].into(),
    };
    c.profiles = vec![
        profile(
            "Away",
            2,
            Condition {
                out_of_office: Some(true),
                tags: vec![],
            },
        ),
        profile(
            "Laptops",
            3,
            Condition {
                out_of_office: None,
                tags: vec!["laptop".into()],
            },
        ),
    ];
    s.create_policy(Tree::ROOT, "Root", c, true, "admin", 0)
        .unwrap();
    assert_eq!(value(&s, 0, "a.x"), Some(json!(1)));
    s.devices[0].tags.insert("laptop".into());
    assert_eq!(value(&s, 0, "a.x"), Some(json!(3)));
    s.devices[0].out_of_office = true;
    let e = s.effective(0);
    assert_eq!(e["a.x"].entry.value, json!(2), "the first in the list wins");
    assert_eq!(e["a.x"].provenance.profile.as_deref(), Some("Away"));
    let many = Content {
        profiles: (0..=policy::MOST_PROFILES)
            .map(|i| profile(&i.to_string(), 0, Condition::default()))
            .collect(),
        ..Content::default()
    };
    assert!(s
        .create_policy(Tree::ROOT, "Many", many, false, "admin", 0)
        .is_err());
}

#[test]
fn every_save_is_a_revision_that_can_be_compared_and_rolled_back() {
    let (mut s, _, _) = three_levels();
    s.create_policy(
        Tree::ROOT,
        "Root",
        content(&[("a.x", 1, false)]),
        true,
        "alice",
        10,
    )
    .unwrap();
    s.edit_policy("Root", "edited", "bob", 20, |c| {
        c.settings.insert("a.x".into(), entry(2, true));
        Ok(())
    })
    .unwrap();
    assert_eq!(s.roll_back("Root", 1, "carol", 30).unwrap(), 3);
    let p = s.policy("Root").unwrap();
    assert_eq!(p.current().what, "rolled back to revision 1");
    assert_eq!(
        (p.current().by.as_str(), p.current().time_ms),
        ("carol", 30)
    );
    assert_eq!(value(&s, 0, "a.x"), Some(json!(1)));
    let d = policy::diff(
        &p.revision(1).unwrap().content,
        &p.revision(2).unwrap().content,
    );
    assert_eq!(d, vec!["a.x: 1 → 2 (locked)".to_string()]);
    assert!(s
        .roll_back("Root", 9, "carol", 30)
        .unwrap_err()
        .message
        .contains("no revision 9"));
}

#[test]
fn a_sync_never_undoes_a_local_change_but_a_new_save_applies_again() {
    let (mut s, _, _) = three_levels();
    active(&mut s, Tree::ROOT, "Root", content(&[("a.x", 1, false)]));
    let first = s.plan(|_| true, false).remove(0).unwrap();
    assert!(first.document.as_deref().unwrap().contains("\"x\":1"));
    s.delivered(0, first, 0);
    let resync = s.plan(|_| true, true).remove(0).unwrap();
    assert_eq!(
        resync.document.as_deref(),
        Some(r#"{"settings":{}}"#),
        "an unlocked value already applied is not sent again"
    );
    s.delivered(0, resync, 0);
    s.edit_policy("Root", "edited", "admin", 1, |_| Ok(()))
        .unwrap();
    let save = s.plan(|_| true, false).remove(0).unwrap();
    assert!(
        save.document.as_deref().unwrap().contains("\"x\":1"),
        "applied again"
    );
    s.delivered(0, save, 1);
    assert!(s.plan(|_| true, false)[0].is_none(), "nothing new to send");
}

#[test]
fn a_policy_that_goes_away_brings_back_no_unlocked_value_of_another() {
    let (mut s, servers, _) = three_levels();
    active(
        &mut s,
        Tree::ROOT,
        "Root",
        content(&[("d.accepted", 1, false), ("t.limit", 2, false)]),
    );
    active(
        &mut s,
        servers,
        "Servers",
        content(&[("d.accepted", 0, true), ("t.limit", 16, true)]),
    );
    let first = s.plan(|_| true, false).remove(0).unwrap();
    let text = first.document.clone().unwrap();
    assert!(text.contains("\"locked\":true"), "{text}");
    s.delivered(0, first, 0);
    for change in ["deactivate", "delete"] {
        let mut s = s.clone();
        match change {
            "deactivate" => s.deactivate("Servers").unwrap(),
            _ => s.delete("Servers").unwrap(),
        }
        let after = s.plan(|_| true, false).remove(0).unwrap();
        assert_eq!(
            after.document.as_deref(),
            Some(r#"{"settings":{}}"#),
            "{change}: the locks are released, and the root's unlocked values, saved before, are not applied again"
        );
        s.delivered(0, after, 1);
        // A new save of the root's policy applies its values.
        s.edit_policy("Root", "edited", "admin", 2, |_| Ok(()))
            .unwrap();
        let saved = s.plan(|_| true, false).remove(0).unwrap();
        assert!(saved
            .document
            .as_deref()
            .unwrap()
            .contains("\"accepted\":1"));
    }
}

#[test]
fn a_device_moved_under_a_policy_new_to_it_gets_its_values_and_profiles_count_as_new() {
    let (mut s, servers, private) = three_levels();
    let other = s.tree.add(Tree::ROOT, "Other").unwrap();
    let mut c = content(&[("a.x", 1, false)]);
    c.profiles.push(Profile {
        name: "away".into(),
        condition: Condition {
            out_of_office: Some(true),
            tags: vec![],
        },
        settings: [("a.x".to_string(), entry(7, false))].into(),
    });
    active(&mut s, servers, "Servers", c);
    active(&mut s, other, "Other", content(&[("a.x", 3, false)]));
    let first = s.plan(|_| true, false).remove(0).unwrap();
    s.delivered(0, first, 0);
    s.devices[0].out_of_office = true;
    let away = s.plan(|_| true, false).remove(0).unwrap();
    assert!(away.document.as_deref().unwrap().contains("\"x\":7"));
    s.delivered(0, away, 1);
    s.devices[0].out_of_office = false;
    let back = s.plan(|_| true, false).remove(0).unwrap();
    assert!(
        back.document.as_deref().unwrap().contains("\"x\":1"),
        "the policy's own value applies again when its profile no longer does"
    );
    s.delivered(0, back, 2);
    s.devices[0].group = other;
    let moved = s.plan(|_| true, false).remove(0).unwrap();
    assert!(moved.document.as_deref().unwrap().contains("\"x\":3"));
    s.delivered(0, moved, 3);
    s.devices[0].group = private;
    assert!(
        s.plan(|_| true, false)[0].is_none(),
        "a save the device already applied is not applied again"
    );
}

#[test]
fn values_waiting_for_private_ksn_to_go_off_are_sent_until_it_does_or_a_lock_supersedes_them() {
    let (mut s, servers, _) = three_levels();
    s.deferred_in_private_ksn.insert("d.files".into());
    s.private_ksn = true;
    active(
        &mut s,
        Tree::ROOT,
        "Root",
        content(&[("d.files", 0, false)]),
    );
    let first = s.plan(|_| true, false).remove(0).unwrap();
    s.delivered(0, first, 0);
    assert!(s.devices[0].delivered.pending.contains_key("d.files"));
    // Another policy's save reaches the device: the waiting value goes with it.
    active(
        &mut s,
        servers,
        "Servers",
        content(&[("t.limit", 4, false)]),
    );
    let second = s.plan(|_| true, false).remove(0).unwrap();
    assert!(second.document.as_deref().unwrap().contains("\"files\":0"));
    s.delivered(0, second, 1);
    // Private KSN goes off: the plugin applied it; it is not sent again.
    s.private_ksn = false;
    let off = s.plan(|_| true, false).remove(0).unwrap();
    s.delivered(0, off, 2);
    assert!(s.devices[0].delivered.pending.is_empty());
    let resync = s.plan(|_| true, true).remove(0).unwrap();
    assert!(!resync.document.as_deref().unwrap().contains("files"));

    // A lock supersedes a waiting value: released, the value is the lock's, not this one.
    let (mut s, servers, _) = three_levels();
    s.deferred_in_private_ksn.insert("d.files".into());
    s.private_ksn = true;
    active(
        &mut s,
        Tree::ROOT,
        "Root",
        content(&[("d.files", 1, false)]),
    );
    let first = s.plan(|_| true, false).remove(0).unwrap();
    s.delivered(0, first, 0);
    active(&mut s, servers, "Servers", content(&[("d.files", 0, true)]));
    let locked = s.plan(|_| true, false).remove(0).unwrap();
    s.delivered(0, locked, 1);
    assert!(s.devices[0].delivered.pending.is_empty());
    s.delete("Servers").unwrap();
    let released = s.plan(|_| true, false).remove(0).unwrap();
    assert_eq!(released.document.as_deref(), Some(r#"{"settings":{}}"#));
}

#[test]
fn devices_synchronise_at_their_own_phase_once_an_interval() {
    let mut s = Server::default();
    for _ in 0..4 {
        s.devices.push(ManagedDevice::new(Tree::ROOT));
    }
    let quarter = SYNC_INTERVAL_MS / 4;
    assert_eq!(s.due(0, quarter), vec![false, true, false, false]);
    assert_eq!(s.due(0, SYNC_INTERVAL_MS), vec![true, true, true, true]);
    assert_eq!(
        s.due(SYNC_INTERVAL_MS, SYNC_INTERVAL_MS + 1),
        vec![false; 4]
    );
    let all = s.due(0, 3 * SYNC_INTERVAL_MS);
    assert!(all.iter().all(|d| *d));
    // At the end of time, and with an interval of ages: no overflow.
    assert_eq!(s.due(u64::MAX - 1, u64::MAX), vec![false; 4]);
    s.sync_interval_ms = u64::MAX;
    assert_eq!(s.due(0, u64::MAX), vec![true; 4]);
}

// The property: for random trees, policies, profiles and local changes, every device's
// value, as a plugin that applies what it is sent would hold it, is "unlocked policy <
// local < locked", upstream locks winning.

const PATHS: [&str; 3] = ["a.x", "a.y", "b.z"];

/// Settings as (path index, value, locked).
type SettingsSpec = Vec<(usize, i64, bool)>;
/// A policy: its group, active, force inheritance, settings, and maybe a profile (when
/// out of office or not, and its settings).
type PolicySpec = (
    usize,
    bool,
    bool,
    SettingsSpec,
    Option<(bool, SettingsSpec)>,
);

#[derive(Clone, Debug)]
struct World {
    parents: Vec<usize>,
    inherit: Vec<bool>,
    policies: Vec<PolicySpec>,
    devices: Vec<(usize, bool)>,
    local: Vec<(usize, usize, i64)>,
}

fn world() -> impl Strategy<Value = World> {
    let settings = || prop::collection::vec((0..PATHS.len(), 0..5i64, any::<bool>()), 0..3);
    (1..6usize).prop_flat_map(move |groups| {
        (
            prop::collection::vec(0..groups.max(1), groups),
            prop::collection::vec(any::<bool>(), groups),
            prop::collection::vec(
                (
                    0..groups,
                    any::<bool>(),
                    any::<bool>(),
                    settings(),
                    prop::option::of((any::<bool>(), settings())),
                ),
                0..6,
            ),
            prop::collection::vec((0..groups, any::<bool>()), 1..5),
            prop::collection::vec((0..5usize, 0..PATHS.len(), 10..15i64), 0..6),
        )
            .prop_map(|(parents, inherit, policies, devices, local)| World {
                parents,
                inherit,
                policies,
                devices,
                local,
            })
    })
}

fn settings_of(list: &[(usize, i64, bool)]) -> Settings {
    list.iter()
        .map(|(p, v, l)| (PATHS[*p].to_string(), entry(*v, *l)))
        .collect()
}

/// A device as a plugin holds it: a local layer (what unlocked policy values and local
/// changes wrote, and what a released lock leaves), and the locks of the last document.
#[derive(Default, Clone)]
struct Plugin {
    layer: BTreeMap<String, Json>,
    locks: BTreeMap<String, Json>,
}

impl Plugin {
    fn apply(&mut self, document: &str) {
        let doc: Json = serde_json::from_str(document).unwrap();
        let settings = policy::parse_settings(&doc["settings"], "settings").unwrap();
        self.locks.clear();
        for (path, e) in settings {
            if e.locked {
                self.locks.insert(path.clone(), e.value.clone());
            }
            self.layer.insert(path, e.value);
        }
    }

    fn value(&self, path: &str) -> Option<Json> {
        self.locks.get(path).or(self.layer.get(path)).cloned()
    }
}

fn deliver(server: &mut Server, plugins: &mut [Plugin], force: bool) {
    for (i, delivery) in server.plan(|_| true, force).into_iter().enumerate() {
        if let Some(delivery) = delivery {
            if let Some(doc) = &delivery.document {
                plugins[i].apply(doc);
            }
            server.delivered(i, delivery, 0);
        }
    }
}

/// The rule, written from the vendor's text rather than from the merge: the first
/// reaching policy (from the root) that locks the path; else the device's local change;
/// else the lowest reaching policy that sets it.
fn expected(server: &Server, device: usize, path: &str, local: Option<&Json>) -> Option<Json> {
    let d = &server.devices[device];
    let chain = server.tree.chain(d.group);
    let mut reaching = Vec::new();
    for (depth, g) in chain.iter().enumerate() {
        if let Some(p) = server.active_policy(*g) {
            let content = &p.current().content;
            let cut = chain[depth + 1..]
                .iter()
                .any(|b| !server.tree.group(*b).inherit);
            if content.force_inheritance || !cut {
                let mut own = content.settings.clone();
                for profile in content.profiles.iter().rev() {
                    if profile.condition.holds(d.out_of_office, &d.tags) {
                        own.extend(profile.settings.clone());
                    }
                }
                reaching.push(own);
            }
        }
    }
    if let Some(locked) = reaching
        .iter()
        .find_map(|s| s.get(path).filter(|e| e.locked))
    {
        return Some(locked.value.clone());
    }
    if let Some(local) = local {
        return Some(local.clone());
    }
    reaching
        .iter()
        .rev()
        .find_map(|s| s.get(path))
        .map(|e| e.value.clone())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn every_device_holds_unlocked_policy_below_local_below_locked(w in world()) {
        let mut s = Server::default();
        for g in 1..w.parents.len() {
            // Parents come before their children.
            let parent = w.parents[g] % g;
            s.tree.add(parent, &format!("g{g}")).unwrap();
        }
        for (g, inherit) in w.inherit.iter().enumerate() {
            s.tree.group_mut(g).inherit = *inherit;
        }
        for (n, (g, active, force, own, profile)) in w.policies.iter().enumerate() {
            let mut c = Content { settings: settings_of(own), force_inheritance: *force, ..Content::default() };
            if let Some((away, settings)) = profile {
                c.profiles.push(Profile {
                    name: "p".into(),
                    condition: Condition { out_of_office: Some(*away), tags: vec![] },
                    settings: settings_of(settings),
                });
            }
            s.create_policy(*g, &format!("P{n}"), c, *active, "admin", 0).unwrap();
        }
        for (g, away) in &w.devices {
            let mut d = ManagedDevice::new(*g);
            d.out_of_office = *away;
            s.devices.push(d);
        }
        let mut plugins = vec![Plugin::default(); s.devices.len()];
        deliver(&mut s, &mut plugins, false);
        // Local changes, refused where a lock holds another value, as the plugin does.
        let mut local: Vec<BTreeMap<String, Json>> = vec![BTreeMap::new(); s.devices.len()];
        for (device, path, v) in &w.local {
            let device = device % s.devices.len();
            let path = PATHS[*path];
            if plugins[device].locks.get(path).is_some_and(|l| *l != json!(v)) {
                continue;
            }
            plugins[device].layer.insert(path.into(), json!(v));
            local[device].insert(path.into(), json!(v));
        }
        deliver(&mut s, &mut plugins, false);
        deliver(&mut s, &mut plugins, true);
        for (i, plugin) in plugins.iter().enumerate() {
            for path in PATHS {
                let want = expected(&s, i, path, local[i].get(path));
                prop_assert_eq!(plugin.value(path), want, "device {} {}", i, path);
            }
        }
    }
}

// The second property: over random sequences of administrators' and users' acts, a value
// on a device changes only by an act that concerns it. A lock always holds; a policy that
// goes away (deleted, deactivated) and a synchronisation change no value; a save (an
// edit, a rollback) applies that policy's unlocked values; a local change its own.

/// One act: what, on which policy or device, which path, which value.
type Act = (u8, usize, usize, i64);

fn acts() -> impl Strategy<Value = Vec<Act>> {
    prop::collection::vec((0..7u8, 0..8usize, 0..PATHS.len(), 20..25i64), 1..12)
}

fn snapshot(plugins: &[Plugin]) -> Vec<Vec<Option<Json>>> {
    plugins
        .iter()
        .map(|p| PATHS.iter().map(|path| p.value(path)).collect())
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn no_value_changes_without_an_act_that_concerns_it(w in world(), acts in acts()) {
        let mut s = Server::default();
        for g in 1..w.parents.len() {
            s.tree.add(w.parents[g] % g, &format!("g{g}")).unwrap();
        }
        for (g, inherit) in w.inherit.iter().enumerate() {
            s.tree.group_mut(g).inherit = *inherit;
        }
        let mut names = Vec::new();
        for (n, (g, active, force, own, _)) in w.policies.iter().enumerate() {
            let c = Content { settings: settings_of(own), force_inheritance: *force, ..Content::default() };
            s.create_policy(*g, &format!("P{n}"), c, *active, "admin", 0).unwrap();
            names.push(format!("P{n}"));
        }
        for (g, away) in &w.devices {
            let mut d = ManagedDevice::new(*g);
            d.out_of_office = *away;
            s.devices.push(d);
        }
        let mut plugins = vec![Plugin::default(); s.devices.len()];
        deliver(&mut s, &mut plugins, false);
        for (what, which, path, v) in acts {
            let before = snapshot(&plugins);
            let name = names.get(which % names.len().max(1)).cloned();
            // The policy whose save this is, if the act is a save.
            let mut saved = None;
            let mut local = None;
            match (what, &name) {
                (0, Some(n)) => { let _ = s.delete(n); }
                (1, Some(n)) => { let _ = s.deactivate(n); }
                (2, Some(n)) if s.policy(n).is_ok() => {
                    s.edit_policy(n, "edited", "admin", 1, |c| {
                        c.settings.insert(PATHS[path].into(), entry(v, v % 2 == 0));
                        Ok(())
                    }).unwrap();
                    saved = Some(s.policy(n).unwrap().id);
                }
                (3, Some(n)) if s.policy(n).is_ok() => {
                    s.roll_back(n, 1, "admin", 2).unwrap();
                    saved = Some(s.policy(n).unwrap().id);
                }
                (4, _) => {
                    let device = which % s.devices.len();
                    let path = PATHS[path];
                    if plugins[device].locks.get(path).is_none_or(|l| *l == json!(v)) {
                        plugins[device].layer.insert(path.into(), json!(v));
                        local = Some((device, path));
                    }
                }
                _ => {}
            }
            deliver(&mut s, &mut plugins, what == 5);
            let after = snapshot(&plugins);
            for (i, plugin) in plugins.iter().enumerate() {
                let effective = s.effective(i);
                for (k, path) in PATHS.iter().enumerate() {
                    let now = plugin.value(path);
                    match effective.get(*path) {
                        Some(e) if e.entry.locked => {
                            prop_assert_eq!(now, Some(e.entry.value.clone()), "device {} {}: the lock holds", i, path);
                        }
                        Some(e) if saved == Some(e.provenance.policy) => {
                            prop_assert_eq!(now, Some(e.entry.value.clone()), "device {} {}: the save applies", i, path);
                        }
                        _ if local == Some((i, *path)) => {}
                        _ => prop_assert_eq!(&after[i][k], &before[i][k], "device {} {}: act {} changed it", i, path, what),
                    }
                }
            }
        }
    }
}
