//! The table of methods: one unit type per method, binding its name, its
//! direction, its params and (for a request) its result, in the manner of
//! `lsp_types::request::Request`. The daemon's dispatch, the Rust client and
//! the schema ([`crate::schema`]) all take their types from here, so they
//! cannot disagree about a method; [`ALL`] lists every method once, so the
//! schema cannot miss one.

use crate::types::*;
use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// Who sends a method.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    ClientToDaemon,
    DaemonToClient,
}

/// A request: a method answered with a result or an error.
pub trait Method {
    const NAME: &'static str;
    const DIRECTION: Direction;
    type Params: Serialize + DeserializeOwned + JsonSchema;
    type Result: Serialize + DeserializeOwned + JsonSchema;
}

/// A notification: a method that gets no answer.
pub trait Notification {
    const NAME: &'static str;
    const DIRECTION: Direction;
    type Params: Serialize + DeserializeOwned + JsonSchema;
}

/// Whether a method is answered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Request,
    Notification,
}

/// One method of the table, without its types: what the schema and the
/// daemon's handler check iterate over.
#[derive(Clone, Copy)]
pub struct Descriptor {
    pub name: &'static str,
    pub direction: Direction,
    pub kind: Kind,
    /// The schema of the params.
    pub params: fn(&mut SchemaGenerator) -> Schema,
    /// The schema of the result; `None` for a notification.
    pub result: Option<fn(&mut SchemaGenerator) -> Schema>,
}

impl std::fmt::Debug for Descriptor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Descriptor")
            .field("name", &self.name)
            .field("direction", &self.direction)
            .field("kind", &self.kind)
            .finish_non_exhaustive()
    }
}

fn schema_of<T: JsonSchema>(generator: &mut SchemaGenerator) -> Schema {
    generator.subschema_for::<T>()
}

/// Declares each method's unit type and trait impl, and [`ALL`], from one
/// list, so that a method cannot be in one and not the other.
macro_rules! methods {
    (
        requests { $(
            $(#[$rdoc:meta])*
            $request:ident = $rname:literal, $rdir:ident, $rparams:ty => $result:ty;
        )* }
        notifications { $(
            $(#[$ndoc:meta])*
            $notification:ident = $nname:literal, $ndir:ident, $nparams:ty;
        )* }
    ) => {
        $(
            $(#[$rdoc])*
            #[derive(Clone, Copy, Debug)]
            pub enum $request {}

            impl Method for $request {
                const NAME: &'static str = $rname;
                const DIRECTION: Direction = Direction::$rdir;
                type Params = $rparams;
                type Result = $result;
            }
        )*
        $(
            $(#[$ndoc])*
            #[derive(Clone, Copy, Debug)]
            pub enum $notification {}

            impl Notification for $notification {
                const NAME: &'static str = $nname;
                const DIRECTION: Direction = Direction::$ndir;
                type Params = $nparams;
            }
        )*

        /// Every method of the protocol, requests first, in the order above.
        pub const ALL: &[Descriptor] = &[
            $(Descriptor {
                name: $rname,
                direction: Direction::$rdir,
                kind: Kind::Request,
                params: schema_of::<$rparams>,
                result: Some(schema_of::<$result>),
            },)*
            $(Descriptor {
                name: $nname,
                direction: Direction::$ndir,
                kind: Kind::Notification,
                params: schema_of::<$nparams>,
                result: None,
            },)*
        ];
    };
}

methods! {
    requests {
        /// The first request on every connection.
        Initialize = "initialize", ClientToDaemon, InitializeParams => InitializeResult;
        SessionCreate = "session/create", ClientToDaemon, SessionCreateParams => SessionCreateResult;
        SessionRun = "session/run", ClientToDaemon, SessionRunParams => RunResult;
        /// The result is `null`.
        SessionClose = "session/close", ClientToDaemon, SessionCloseParams => ();
        SessionList = "session/list", ClientToDaemon, NoParams => SessionListResult;
        /// One run in a fresh sandbox.
        Run = "run", ClientToDaemon, RunParams => RunResult;
        /// After it only `exit` may follow; the result is `null`.
        Shutdown = "shutdown", ClientToDaemon, NoParams => ();
        /// Daemon to client: call a host function the client serves.
        HostCall = "host/call", DaemonToClient, HostCallParams => HostCallResult;
    }
    notifications {
        CancelRequest = "$/cancelRequest", ClientToDaemon, CancelParams;
        /// Ends the connection; cleanly only after `shutdown`.
        Exit = "exit", ClientToDaemon, NoParams;
        /// Daemon to client: output of a streaming run.
        RunOutput = "run/output", DaemonToClient, RunOutputParams;
    }
}

/// The descriptor of the method called `name`.
pub fn find(name: &str) -> Option<&'static Descriptor> {
    ALL.iter().find(|method| method.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn names_are_unique() {
        let names: HashSet<_> = ALL.iter().map(|m| m.name).collect();
        assert_eq!(names.len(), ALL.len());
    }

    #[test]
    fn the_table_agrees_with_the_traits() {
        let request = find(SessionRun::NAME).unwrap();
        assert_eq!(request.kind, Kind::Request);
        assert_eq!(request.direction, SessionRun::DIRECTION);
        let notification = find(RunOutput::NAME).unwrap();
        assert_eq!(notification.kind, Kind::Notification);
        assert_eq!(notification.direction, Direction::DaemonToClient);
    }
}
