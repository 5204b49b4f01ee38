//! goru's client library: run code in a goru daemon's sandboxes from Rust.
//!
//! ```no_run
//! # async fn example() -> Result<(), goru_client::ClientError> {
//! use goru_client::protocol::types::{Language, SessionCreateParams, SessionRunParams};
//! use goru_client::{Client, ClientOptions};
//!
//! let options = ClientOptions::new().host_function("add", |args| async move {
//!     let sum = args["a"].as_i64().unwrap_or(0) + args["b"].as_i64().unwrap_or(0);
//!     Ok(sum.into())
//! });
//! let client = Client::connect("/run/goru.sock", options).await?;
//! let session = client
//!     .create_session(SessionCreateParams::new(Language::Python))
//!     .await?;
//! let result = client
//!     .run_in(SessionRunParams::new(session, r#"print(call("add", a=2, b=3))"#))
//!     .await?;
//! assert_eq!(result.stdout, "5\n");
//! client.shutdown().await
//! # }
//! ```

mod daemon_client;

pub use daemon_client::*;
/// The wire types, method names and error codes.
pub use goru_protocol as protocol;
