//! Every client's sessions, keyed by client id, with the caps on how many
//! there may be. One lock guards the whole map: operations are quick (no
//! guest code runs under it).

use crate::output::RunOutput;
use crate::peer::Peer;
use goru_protocol::codes;
use goru_protocol::types::SessionInfo;
use goru_protocol::{ErrorObject, Id};
use goru_runtimes::{Language, Session};
use serde_json::json;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// The request whose code a session is running, for `host/call` params.
#[derive(Default)]
pub(crate) struct RunContext {
    pub(crate) session_id: Option<String>,
    pub(crate) request_id: Mutex<Option<Id>>,
}

impl RunContext {
    pub(crate) fn set_request(&self, id: Option<Id>) {
        *lock(&self.request_id) = id;
    }

    pub(crate) fn request(&self) -> Option<Id> {
        lock(&self.request_id).clone()
    }
}

/// One warm session.
pub(crate) struct SessionSlot {
    pub(crate) id: String,
    pub(crate) language: Language,
    pub(crate) session: tokio::sync::Mutex<Session>,
    pub(crate) output: Arc<RunOutput>,
    pub(crate) context: Arc<RunContext>,
    runs: AtomicU64,
    last_used: Mutex<Instant>,
    current_run: Mutex<Option<CancellationToken>>,
}

impl SessionSlot {
    pub(crate) fn new(
        id: String,
        language: Language,
        session: Session,
        output: Arc<RunOutput>,
        context: Arc<RunContext>,
    ) -> Self {
        SessionSlot {
            id,
            language,
            session: tokio::sync::Mutex::new(session),
            output,
            context,
            runs: AtomicU64::new(0),
            last_used: Mutex::new(Instant::now()),
            current_run: Mutex::new(None),
        }
    }

    /// Marks a run starting (cancellable through `token`) or ending.
    pub(crate) fn set_run(&self, token: Option<CancellationToken>) {
        if token.is_none() {
            self.runs.fetch_add(1, Ordering::Relaxed);
        }
        *lock(&self.last_used) = Instant::now();
        *lock(&self.current_run) = token;
    }

    /// Stops the run in progress, if any.
    pub(crate) fn cancel_run(&self) {
        if let Some(token) = lock(&self.current_run).as_ref() {
            token.cancel();
        }
    }

    fn busy(&self) -> bool {
        lock(&self.current_run).is_some()
    }

    fn idle_for(&self, now: Instant) -> Duration {
        now.saturating_duration_since(*lock(&self.last_used))
    }

    pub(crate) fn info(&self) -> SessionInfo {
        SessionInfo {
            session_id: self.id.clone(),
            language: self.language,
            busy: self.busy(),
            runs: self.runs.load(Ordering::Relaxed),
            idle_ms: self.idle_for(Instant::now()).as_millis() as u64,
        }
    }
}

#[derive(Default)]
struct ClientEntry {
    /// The live connection, by its number.
    connection: Option<(u64, Peer)>,
    host_functions: Vec<String>,
    sessions: HashMap<String, Arc<SessionSlot>>,
    /// Sandboxes being created or running one-shot code.
    reserved: usize,
    disconnected_at: Option<Instant>,
}

impl ClientEntry {
    fn count(&self) -> usize {
        self.sessions.len() + self.reserved
    }
}

#[derive(Default)]
struct State {
    clients: HashMap<String, ClientEntry>,
    /// Sessions plus reservations, over all clients.
    live: usize,
}

#[derive(Clone)]
pub(crate) struct Registry {
    state: Arc<Mutex<State>>,
    max_sessions: usize,
    max_per_client: usize,
}

/// A place for one sandbox counted against the caps; given back on drop
/// unless [`Registry::insert`] turned it into a session.
pub(crate) struct Reservation {
    registry: Registry,
    client_id: String,
    held: bool,
}

impl Drop for Reservation {
    fn drop(&mut self) {
        if self.held {
            let mut state = self.registry.lock();
            state.live -= 1;
            if let Some(client) = state.clients.get_mut(&self.client_id) {
                client.reserved -= 1;
            }
        }
    }
}

impl Registry {
    pub(crate) fn new(max_sessions: usize, max_per_client: usize) -> Self {
        Registry {
            state: Arc::default(),
            max_sessions,
            max_per_client,
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        lock(&self.state)
    }

    /// Binds `client_id` to a connection. Refused while another live
    /// connection holds the id. Returns the client's surviving sessions.
    pub(crate) fn attach(
        &self,
        client_id: &str,
        connection: u64,
        peer: Peer,
        host_functions: Vec<String>,
    ) -> Result<Vec<SessionInfo>, ErrorObject> {
        let mut state = self.lock();
        let client = state.clients.entry(client_id.to_string()).or_default();
        if client.connection.is_some() {
            return Err(ErrorObject::new(
                codes::CLIENT_ID_IN_USE,
                "another connection is using this client id",
            ));
        }
        client.connection = Some((connection, peer));
        client.host_functions = host_functions;
        client.disconnected_at = None;
        Ok(client.sessions.values().map(|s| s.info()).collect())
    }

    /// Unbinds a connection from its client. Its sessions wait for a
    /// reconnect (the reaper closes them after the grace period), or are
    /// closed now when `close_sessions`.
    pub(crate) fn detach(&self, client_id: &str, connection: u64, close_sessions: bool) {
        let removed = {
            let mut state = self.lock();
            let Some(client) = state.clients.get_mut(client_id) else {
                return;
            };
            if client.connection.as_ref().map(|(n, _)| *n) != Some(connection) {
                return;
            }
            client.connection = None;
            client.disconnected_at = Some(Instant::now());
            if close_sessions {
                let removed: Vec<_> = client.sessions.drain().map(|(_, s)| s).collect();
                state.live -= removed.len();
                removed
            } else {
                Vec::new()
            }
        };
        for slot in removed {
            slot.cancel_run();
        }
    }

    /// The connection serving `client_id` now, if it is connected.
    pub(crate) fn peer(&self, client_id: &str) -> Option<Peer> {
        let state = self.lock();
        let client = state.clients.get(client_id)?;
        client.connection.as_ref().map(|(_, peer)| peer.clone())
    }

    pub(crate) fn host_functions(&self, client_id: &str) -> Vec<String> {
        let state = self.lock();
        state
            .clients
            .get(client_id)
            .map(|c| c.host_functions.clone())
            .unwrap_or_default()
    }

    /// Counts one more sandbox for `client_id`, or refuses with `LimitExceeded`.
    pub(crate) fn reserve(&self, client_id: &str) -> Result<Reservation, ErrorObject> {
        let mut state = self.lock();
        if state.live >= self.max_sessions {
            return Err(limit_exceeded(
                "maxSessions",
                self.max_sessions,
                "sessions in this daemon",
            ));
        }
        let client = state.clients.entry(client_id.to_string()).or_default();
        if client.count() >= self.max_per_client {
            return Err(limit_exceeded(
                "maxSessionsPerClient",
                self.max_per_client,
                "sessions for one client",
            ));
        }
        client.reserved += 1;
        state.live += 1;
        Ok(Reservation {
            registry: self.clone(),
            client_id: client_id.to_string(),
            held: true,
        })
    }

    /// Turns a reservation into a live session.
    pub(crate) fn insert(&self, mut reservation: Reservation, slot: Arc<SessionSlot>) {
        let mut state = self.lock();
        let client = state
            .clients
            .entry(reservation.client_id.clone())
            .or_default();
        client.reserved -= 1;
        client.sessions.insert(slot.id.clone(), slot);
        reservation.held = false;
    }

    pub(crate) fn get(&self, client_id: &str, session_id: &str) -> Option<Arc<SessionSlot>> {
        let state = self.lock();
        state
            .clients
            .get(client_id)?
            .sessions
            .get(session_id)
            .cloned()
    }

    /// Removes a session (its run, if any, is cancelled by the caller).
    pub(crate) fn remove(&self, client_id: &str, session_id: &str) -> Option<Arc<SessionSlot>> {
        let mut state = self.lock();
        let slot = state
            .clients
            .get_mut(client_id)?
            .sessions
            .remove(session_id)?;
        state.live -= 1;
        Some(slot)
    }

    pub(crate) fn list(&self, client_id: &str) -> Vec<SessionInfo> {
        let state = self.lock();
        let mut sessions: Vec<_> = state
            .clients
            .get(client_id)
            .map(|c| c.sessions.values().map(|s| s.info()).collect())
            .unwrap_or_default();
        sessions.sort_by(|a: &SessionInfo, b| a.session_id.cmp(&b.session_id));
        sessions
    }

    /// Live sessions and reservations in all.
    pub(crate) fn live(&self) -> usize {
        self.lock().live
    }

    /// Closes sessions idle longer than `idle` and every session of clients
    /// gone longer than `grace`; forgets clients with nothing left.
    pub(crate) fn reap(&self, idle: Duration, grace: Duration) -> usize {
        let now = Instant::now();
        let mut removed = Vec::new();
        {
            let mut state = self.lock();
            for client in state.clients.values_mut() {
                let gone = client
                    .disconnected_at
                    .is_some_and(|at| now.saturating_duration_since(at) >= grace);
                let ids: Vec<String> = client
                    .sessions
                    .values()
                    .filter(|s| gone || (!s.busy() && s.idle_for(now) >= idle))
                    .map(|s| s.id.clone())
                    .collect();
                for id in ids {
                    if let Some(slot) = client.sessions.remove(&id) {
                        removed.push(slot);
                    }
                }
            }
            state.live -= removed.len();
            state
                .clients
                .retain(|_, c| c.connection.is_some() || !c.sessions.is_empty() || c.reserved > 0);
        }
        for slot in &removed {
            slot.cancel_run();
        }
        removed.len()
    }
}

fn limit_exceeded(name: &str, max: usize, what: &str) -> ErrorObject {
    ErrorObject::new(
        codes::LIMIT_EXCEEDED,
        format!("too many {what} (the limit is {max}); close some first"),
    )
    .with_data(json!({"limit": name, "max": max}))
}

pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}
