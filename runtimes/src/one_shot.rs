//! One-shot runs: a fresh sandbox for one piece of code, thrown away after.
//! Built on sessions, so it sits above them (sessions start from an
//! [`Engine`], whose type is therefore below).

use crate::Error;
use crate::engine::Engine;
use crate::instance::StartError;
use crate::outcome::Outcome;
use crate::session::SessionBuilder;
use std::time::Instant;

impl Engine {
    /// Runs `code` once in a fresh sandbox configured by `builder`, and
    /// throws the sandbox away. Limits hit while the sandbox starts are
    /// reported in the outcome like limits hit while the code runs.
    pub async fn run_once(
        &self,
        builder: &SessionBuilder,
        code: &str,
        filename: &str,
    ) -> Result<Outcome, Error> {
        let started = Instant::now();
        match builder.start(self).await {
            Ok(mut session) => {
                let mut outcome = session.run(code, filename).await?;
                outcome.duration = started.elapsed();
                Ok(outcome)
            }
            Err(StartError::Limit(status)) => Ok(Outcome {
                status,
                stdout: Vec::new(),
                stderr: Vec::new(),
                duration: started.elapsed(),
                clipped: false,
            }),
            Err(StartError::Engine(err)) => Err(err),
        }
    }
}
