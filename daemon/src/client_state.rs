//! What the daemon knows of the client on one connection: its id once
//! `initialize` bound it, whether it sent `shutdown`, and its view of the
//! registry (only its own sessions). The handlers work on this; the
//! transport ([`crate::connection`]) only creates it and detaches it.

use crate::config::Config;
use crate::daemon::{Daemon, Inner};
use crate::peer::Peer;
use crate::registry::{Reservation, SessionSlot, lock};
use goru_protocol::types::SessionInfo;
use goru_protocol::{ErrorObject, codes};
use goru_runtimes::Engine;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};

pub(crate) struct ClientState {
    daemon: Daemon,
    /// The connection's number, which the registry binds the client id to.
    connection: u64,
    /// Sends to this client.
    peer: Peer,
    /// The client id, once `initialize` succeeded. Held while `initialize`
    /// binds it, so that of pipelined `initialize` requests only one binds.
    client_id: Mutex<Option<String>>,
    shutdown: AtomicBool,
}

impl ClientState {
    pub(crate) fn new(daemon: Daemon, connection: u64, peer: Peer) -> Self {
        ClientState {
            daemon,
            connection,
            peer,
            client_id: Mutex::new(None),
            shutdown: AtomicBool::new(false),
        }
    }

    pub(crate) fn config(&self) -> &Config {
        self.daemon.config()
    }

    pub(crate) fn engine(&self) -> &Engine {
        &self.daemon.inner.engine
    }

    /// The daemon, held weakly by what lives inside it (host functions).
    pub(crate) fn weak_daemon(&self) -> Weak<Inner> {
        Arc::downgrade(&self.daemon.inner)
    }

    pub(crate) fn peer(&self) -> &Peer {
        &self.peer
    }

    /// The bound client id, or `NotInitialized`.
    pub(crate) fn client_id(&self) -> Result<String, ErrorObject> {
        lock(&self.client_id).clone().ok_or_else(|| {
            ErrorObject::new(
                codes::NOT_INITIALIZED,
                "send `initialize` before any other request",
            )
        })
    }

    pub(crate) fn is_initialized(&self) -> bool {
        lock(&self.client_id).is_some()
    }

    /// Binds `client_id` to this connection, once: `check` runs (under the
    /// binding's lock) only on a connection not yet initialized. Returns the
    /// client's sessions from an earlier connection.
    pub(crate) fn bind(
        &self,
        client_id: &str,
        host_functions: Vec<String>,
        check: impl FnOnce() -> Result<(), ErrorObject>,
    ) -> Result<Vec<SessionInfo>, ErrorObject> {
        let mut bound = lock(&self.client_id);
        if bound.is_some() {
            return Err(ErrorObject::new(
                codes::ALREADY_INITIALIZED,
                "this connection is already initialized",
            ));
        }
        check()?;
        let sessions = self.daemon.inner.registry.attach(
            client_id,
            self.connection,
            self.peer.clone(),
            host_functions,
        )?;
        *bound = Some(client_id.to_string());
        Ok(sessions)
    }

    /// The client's sessions, as the registry holds them; `NotInitialized`
    /// before `initialize`.
    pub(crate) fn sessions(&self) -> Result<Sessions<'_>, ErrorObject> {
        Ok(Sessions {
            state: self,
            client_id: self.client_id()?,
        })
    }

    pub(crate) fn shut_down(&self) {
        self.shutdown.store(true, Ordering::Release);
    }

    pub(crate) fn is_shut_down(&self) -> bool {
        self.shutdown.load(Ordering::Acquire)
    }

    /// The connection ended: the client's sessions wait for it to
    /// reconnect, or are closed now when it ended `clean`ly.
    pub(crate) fn detach(&self, clean: bool) {
        let client_id = lock(&self.client_id).clone();
        if let Some(client_id) = client_id {
            self.daemon
                .inner
                .registry
                .detach(&client_id, self.connection, clean);
        }
    }
}

/// One client's sessions in the registry: every call is for its id only.
pub(crate) struct Sessions<'a> {
    state: &'a ClientState,
    client_id: String,
}

impl Sessions<'_> {
    pub(crate) fn client_id(&self) -> &str {
        &self.client_id
    }

    fn registry(&self) -> &crate::registry::Registry {
        &self.state.daemon.inner.registry
    }

    /// The host functions the client declared at `initialize`.
    pub(crate) fn host_functions(&self) -> Vec<String> {
        self.registry().host_functions(&self.client_id)
    }

    /// Counts one more sandbox for the client, or refuses with `LimitExceeded`.
    pub(crate) fn reserve(&self) -> Result<Reservation, ErrorObject> {
        self.registry().reserve(&self.client_id)
    }

    pub(crate) fn insert(&self, reservation: Reservation, slot: Arc<SessionSlot>) {
        self.registry().insert(reservation, slot);
    }

    pub(crate) fn get(&self, session_id: &str) -> Option<Arc<SessionSlot>> {
        self.registry().get(&self.client_id, session_id)
    }

    pub(crate) fn remove(&self, session_id: &str) -> Option<Arc<SessionSlot>> {
        self.registry().remove(&self.client_id, session_id)
    }

    pub(crate) fn list(&self) -> Vec<SessionInfo> {
        self.registry().list(&self.client_id)
    }
}
