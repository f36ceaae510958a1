//! Settings layering: defaults < local < policy.
//!
//! A locked policy value is enforced from the policy layer. An unlocked policy value is
//! written into the local layer at each push (marked as coming from the policy), so a
//! local change overrides it until the next push. Acceptance boxes are not stored here:
//! their value is the consent in force (see `consent`).

use super::{
    consent::{Consent, Source},
    doc::Policy,
    table::{Role, Setting, Value, SETTING_COUNT, TABLE},
};

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Layers {
    pub policy: Policy,
    pub local: [Option<(Value, Source)>; SETTING_COUNT],
}

/// A setting's effective value and its provenance.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Resolved {
    pub value: Value,
    pub source: Source,
    pub locked: bool,
}

impl Layers {
    /// The effective value of every setting, in table order.
    pub fn resolve_all(&self, consent: &Consent) -> [Resolved; SETTING_COUNT] {
        std::array::from_fn(|i| self.resolve(TABLE[i].setting, consent))
    }

    pub fn resolve(&self, setting: Setting, consent: &Consent) -> Resolved {
        let locked = self.policy.locked(setting).is_some();
        if setting.descriptor().role == Role::Statement {
            let (acceptance, ended) = match setting {
                Setting::KsnStatementAccepted => (consent.ksn, consent.ksn_ended),
                _ => (consent.ksn.and(consent.kmp), consent.kmp_ended),
            };
            // A box that reads false says who cleared it: a withdrawal is the source's own.
            let source = match (acceptance, ended) {
                (Some(a), _) => a.source,
                (None, Some(e)) => e.source,
                (None, None) => Source::Default,
            };
            return Resolved {
                value: Value::Bool(acceptance.is_some()),
                source,
                locked,
            };
        }
        if let Some(withheld) = setting.category_index().and_then(|i| consent.withheld[i]) {
            return Resolved {
                value: Value::Bool(false),
                source: withheld.source,
                locked,
            };
        }
        if let Some(value) = self.policy.locked(setting) {
            return Resolved {
                value,
                source: Source::Policy,
                locked,
            };
        }
        match self.local[setting.index()] {
            Some((value, source)) => Resolved {
                value,
                source,
                locked,
            },
            None => Resolved {
                value: setting.descriptor().default,
                source: Source::Default,
                locked,
            },
        }
    }

    pub fn set_local(&mut self, setting: Setting, value: Value, source: Source) {
        self.local[setting.index()] = Some((value, source));
    }
}
