//! The scenario steps (`{"do": ...}`), each defined once: its fields (the scenario
//! format and its JSON Schema), how the console takes it (usage, help, completion, the
//! words it reads), what it does to the world, how it reads in a report, and how a
//! device's answer is checked against the step's own `expect`. The `Action` enum and
//! every list of steps (scenario parsing, the console's verbs and help) come from
//! `steps!` below.

mod console;
mod environment;
mod lookups;
mod server;
mod settings;
mod task;

use schemars::JsonSchema;
use serde::{de::DeserializeOwned, Deserialize};
use serde_json::{Map, Value as Json};

pub use console::{json_argument, number};
pub use environment::{
    AdvanceTime, ResetCounters, SetLicense, SetNetwork, SetPrivateKsn, SetStorage,
};
pub use lookups::{
    AccessExpect, AnswerExpect, CheckFile, CheckUrl, LaunchApp, LaunchExpect, OpenFile,
};
pub use server::{
    ActivatePolicy, ConditionSpec, CreateGroup, CreatePolicy, DeactivatePolicy, DeleteGroup,
    DeletePolicy, EditPolicy, InstallPlugin, MoveDevices, ProfileSpec, RemoveProfile, RenameGroup,
    RenamePolicy, RollBackPolicy, SetDevice, SetGroup, SetProfile,
};
pub use settings::{PushPolicy, Resync, SetLocal};
pub use task::{RestartHost, Start, Stop};

use crate::world::{Answer, Answers, World};
use admin_server::ServerError;

/// Why a step could not be done on the devices.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum StepError {
    /// The server refused it (its own error, by kind); nothing changed.
    #[error("the server refused it: {0}")]
    Refused(#[from] ServerError),
    /// It cannot be done as written (a plugin that cannot be loaded, say).
    #[error("{0}")]
    Invalid(String),
}

impl From<String> for StepError {
    fn from(message: String) -> Self {
        StepError::Invalid(message)
    }
}

/// What differed between a step's answer and its own `expect`: what, expected, found.
pub type Mismatch = (&'static str, String, String);

/// One kind of step.
pub trait StepKind: DeserializeOwned + JsonSchema + Clone + std::fmt::Debug {
    /// Its name, as `do` and the console spell it.
    const NAME: &'static str;
    /// The console's arguments, for help and usage errors.
    const USAGE: &'static str;
    /// What it does, in a line.
    const HELP: &'static str;
    /// What the console offers to complete each argument with.
    const COMPLETE: &'static [&'static [&'static str]] = &[];
    /// Whether it acts on devices one by one, so that `on` chooses which; a step that
    /// changes the server or the network as a whole takes no `on` (refused at load, never
    /// ignored).
    const ADDRESSES_DEVICES: bool = true;

    /// The console's words after the verb (and the rest of the line as typed), as the
    /// step's JSON fields.
    fn fields(words: &[&str], rest: &str) -> Result<Map<String, Json>, String>;

    /// What the types alone do not say (an MD5's digits, say); errors name their place
    /// below `path`.
    fn validate(&self, _path: &str) -> Result<(), String> {
        Ok(())
    }

    /// Its arguments in a few words, for reports (`44d8… (10 bytes)`).
    fn arguments(&self) -> String {
        String::new()
    }

    /// Does it, on every device.
    fn perform(&self, world: &mut World) -> Result<Answers, StepError>;

    /// Compares one device's answer with the step's own `expect`, if it has one.
    fn check(&self, _answer: &Answer) -> Result<(), Mismatch> {
        Ok(())
    }
}

macro_rules! steps {
    ($($step:ident),* $(,)?) => {
        /// A `do` step.
        #[derive(Deserialize, JsonSchema, Debug, Clone)]
        #[serde(tag = "do", rename_all = "snake_case")]
        pub enum Action {
            // Boxed: a long scenario holds many steps, and a few kinds are large.
            $( $step(Box<$step>), )*
        }

        impl Action {
            /// Every step's name.
            pub const NAMES: &'static [&'static str] = &[$( $step::NAME ),*];

            /// Every step as the console lists it: name, arguments, what it does.
            pub const VERBS: &'static [(&'static str, &'static str, &'static str)] =
                &[$( ($step::NAME, $step::USAGE, $step::HELP) ),*];

            pub fn name(&self) -> &'static str {
                match self { $( Action::$step(_) => $step::NAME, )* }
            }

            /// Whether `on` may choose the devices it acts on.
            pub fn addresses_devices(&self) -> bool {
                match self { $( Action::$step(_) => $step::ADDRESSES_DEVICES, )* }
            }

            pub fn validate(&self, path: &str) -> Result<(), String> {
                match self { $( Action::$step(s) => s.validate(path), )* }
            }

            /// The step in a few words, for reports and the console.
            pub fn describe(&self) -> String {
                let arguments = match self { $( Action::$step(s) => s.arguments(), )* };
                if arguments.is_empty() {
                    self.name().to_string()
                } else {
                    format!("{} {arguments}", self.name())
                }
            }

            /// Does it, then files the events it caused in the server's store.
            pub fn perform(&self, world: &mut World) -> Result<Answers, StepError> {
                let answers = match self { $( Action::$step(s) => s.perform(world), )* };
                world.collect_events();
                answers
            }

            pub fn check(&self, answer: &Answer) -> Result<(), Mismatch> {
                match self { $( Action::$step(s) => s.check(answer), )* }
            }

            /// The step named `verb`, from the console's words, as scenario JSON; `None`
            /// when no step has that name.
            pub fn from_console(verb: &str, words: &[&str], rest: &str) -> Option<Result<Json, String>> {
                $(
                    if verb == $step::NAME {
                        return Some($step::fields(words, rest).map(|mut fields| {
                            fields.insert("do".into(), Json::from(verb));
                            Json::Object(fields)
                        }));
                    }
                )*
                None
            }

            /// What the console offers for argument `index` of the step named `verb`.
            pub fn completions(verb: &str, index: usize) -> &'static [&'static str] {
                $(
                    if verb == $step::NAME {
                        return $step::COMPLETE.get(index).copied().unwrap_or(&[]);
                    }
                )*
                &[]
            }
        }
    };
}

steps! {
    PushPolicy,
    Resync,
    SetLocal,
    Start,
    Stop,
    SetPrivateKsn,
    SetLicense,
    SetNetwork,
    SetStorage,
    CheckFile,
    CheckUrl,
    OpenFile,
    LaunchApp,
    RestartHost,
    AdvanceTime,
    ResetCounters,
    CreateGroup,
    SetGroup,
    RenameGroup,
    DeleteGroup,
    MoveDevices,
    SetDevice,
    InstallPlugin,
    CreatePolicy,
    EditPolicy,
    ActivatePolicy,
    DeactivatePolicy,
    DeletePolicy,
    RenamePolicy,
    RollBackPolicy,
    SetProfile,
    RemoveProfile,
}

/// A usage error for `S`.
pub(crate) fn usage<S: StepKind>() -> String {
    format!("usage: {} {}", S::NAME, S::USAGE)
}

/// No fields at all, for steps without arguments.
pub(crate) fn no_fields<S: StepKind>(words: &[&str]) -> Result<Map<String, Json>, String> {
    if words.is_empty() {
        Ok(Map::new())
    } else {
        Err(format!("{} takes no arguments", S::NAME))
    }
}

/// A device's answer as a lookup's, if it is one.
pub(crate) fn lookup_of(answer: &Answer) -> Option<&plugin_api::LookupAnswer> {
    match answer {
        Answer::Lookup(found) | Answer::Access(_, found) | Answer::Launch(_, Some(found)) => {
            Some(found)
        }
        _ => None,
    }
}
