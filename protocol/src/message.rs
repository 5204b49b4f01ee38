//! JSON-RPC 2.0 messages: parsing an incoming body into a request, a
//! notification or a response, and the error object.

use crate::codes;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// A request id: an integer or a string, as JSON-RPC 2.0 allows.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum Id {
    Number(i64),
    String(String),
}

impl std::fmt::Display for Id {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Id::Number(n) => write!(f, "{n}"),
            Id::String(s) => write!(f, "{s:?}"),
        }
    }
}

/// A JSON-RPC error object.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ErrorObject {
    /// One of [`crate::codes`].
    pub code: i64,
    pub message: String,
    /// Details: for `LimitExceeded`, `{"limit": name, "max": value}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<Value>,
}

impl ErrorObject {
    /// An error with `message`, its quoted values clipped
    /// ([`crate::echo::clip_message`]): messages often quote client input.
    pub fn new(code: i64, message: impl Into<String>) -> Self {
        ErrorObject {
            code,
            message: crate::echo::clip_message(message.into()),
            data: None,
        }
    }

    pub fn with_data(mut self, data: Value) -> Self {
        self.data = Some(data);
        self
    }
}

impl std::fmt::Display for ErrorObject {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} (code {})", self.message, self.code)
    }
}

impl std::error::Error for ErrorObject {}

#[derive(Clone, Debug, PartialEq)]
pub struct Request {
    pub id: Id,
    pub method: String,
    pub params: Option<Value>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Notification {
    pub method: String,
    pub params: Option<Value>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Response {
    /// `None` only in an error answering a message whose id could not be read.
    pub id: Option<Id>,
    pub result: Result<Value, ErrorObject>,
}

/// Any message either side may send.
#[derive(Clone, Debug, PartialEq)]
pub enum Message {
    Request(Request),
    Notification(Notification),
    Response(Response),
}

/// A body that is not a valid message: the error to answer with, and the id
/// to answer to when one could be read.
#[derive(Clone, Debug, PartialEq)]
pub struct Invalid {
    pub id: Option<Id>,
    pub error: ErrorObject,
}

impl Message {
    /// Parses one frame's body.
    pub fn parse(body: &[u8]) -> Result<Message, Invalid> {
        let value: Value = serde_json::from_slice(body).map_err(|err| Invalid {
            id: None,
            error: ErrorObject::new(codes::PARSE_ERROR, format!("the body is not JSON: {err}")),
        })?;
        let invalid = |id: Option<Id>, message: &str| Invalid {
            id,
            error: ErrorObject::new(codes::INVALID_REQUEST, message),
        };
        let mut object = match value {
            Value::Object(object) => object,
            Value::Array(_) => {
                return Err(invalid(
                    None,
                    "batches (JSON arrays) are not supported: send one message per frame",
                ));
            }
            _ => return Err(invalid(None, "a message must be a JSON object")),
        };
        // `"id": null` is only for an error answering a message whose id
        // could not be read.
        let mut null_id = false;
        let id = match object.remove("id") {
            None => None,
            Some(Value::Null) => {
                null_id = true;
                None
            }
            Some(Value::Number(n)) => match n.as_i64() {
                Some(n) => Some(Id::Number(n)),
                None => return Err(invalid(None, "`id` must be an integer or a string")),
            },
            Some(Value::String(s)) => Some(Id::String(s)),
            Some(_) => return Err(invalid(None, "`id` must be an integer or a string")),
        };
        if object.remove("jsonrpc") != Some(Value::String("2.0".into())) {
            return Err(invalid(id, "`jsonrpc` must be \"2.0\""));
        }
        if let Some(method) = object.remove("method") {
            if null_id {
                return Err(invalid(
                    None,
                    "a request's `id` must be an integer or a string, not null",
                ));
            }
            let Value::String(method) = method else {
                return Err(invalid(id, "`method` must be a string"));
            };
            let params = object.remove("params");
            if let Some(params) = &params
                && !params.is_object()
                && !params.is_null()
            {
                return Err(Invalid {
                    id,
                    error: ErrorObject::new(codes::INVALID_PARAMS, "`params` must be an object"),
                });
            }
            let params = params.filter(|p| !p.is_null());
            if let Some(key) = object.keys().next() {
                return Err(invalid(id, &format!("unexpected member `{key}`")));
            }
            return Ok(match id {
                Some(id) => Message::Request(Request { id, method, params }),
                None => Message::Notification(Notification { method, params }),
            });
        }
        let result = match (object.remove("result"), object.remove("error")) {
            (Some(result), None) => Ok(result),
            (None, Some(error)) => {
                Err(serde_json::from_value::<ErrorObject>(error).map_err(|_| {
                    invalid(
                        id.clone(),
                        "`error` must have an integer `code` and a string `message`",
                    )
                })?)
            }
            _ => {
                return Err(invalid(
                    id,
                    "a message needs `method`, or exactly one of `result` and `error`",
                ));
            }
        };
        if id.is_none() && !(null_id && result.is_err()) {
            return Err(invalid(
                None,
                "a response needs an `id` (null only in an error)",
            ));
        }
        Ok(Message::Response(Response { id, result }))
    }

    /// The message as a JSON body.
    pub fn to_json(&self) -> Vec<u8> {
        let mut object = Map::new();
        object.insert("jsonrpc".into(), "2.0".into());
        match self {
            Message::Request(request) => {
                object.insert("id".into(), id_value(Some(&request.id)));
                object.insert("method".into(), request.method.clone().into());
                if let Some(params) = &request.params {
                    object.insert("params".into(), params.clone());
                }
            }
            Message::Notification(notification) => {
                object.insert("method".into(), notification.method.clone().into());
                if let Some(params) = &notification.params {
                    object.insert("params".into(), params.clone());
                }
            }
            Message::Response(response) => {
                object.insert("id".into(), id_value(response.id.as_ref()));
                match &response.result {
                    Ok(result) => object.insert("result".into(), result.clone()),
                    Err(error) => object.insert(
                        "error".into(),
                        serde_json::to_value(error).expect("an error object serializes"),
                    ),
                };
            }
        }
        serde_json::to_vec(&Value::Object(object)).expect("a JSON value serializes")
    }
}

fn id_value(id: Option<&Id>) -> Value {
    match id {
        None => Value::Null,
        Some(Id::Number(n)) => (*n).into(),
        Some(Id::String(s)) => s.clone().into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(value: Value) -> Result<Message, Invalid> {
        Message::parse(&serde_json::to_vec(&value).unwrap())
    }

    #[test]
    fn round_trips_each_kind() {
        for message in [
            Message::Request(Request {
                id: Id::Number(7),
                method: "run".into(),
                params: Some(json!({"a": 1})),
            }),
            Message::Request(Request {
                id: Id::String("x".into()),
                method: "shutdown".into(),
                params: None,
            }),
            Message::Notification(Notification {
                method: "exit".into(),
                params: None,
            }),
            Message::Response(Response {
                id: Some(Id::Number(1)),
                result: Ok(json!(null)),
            }),
            Message::Response(Response {
                id: Some(Id::Number(2)),
                result: Err(ErrorObject::new(-1, "no")),
            }),
            Message::Response(Response {
                id: None,
                result: Err(ErrorObject::new(-32600, "bad frame")),
            }),
        ] {
            assert_eq!(Message::parse(&message.to_json()).unwrap(), message);
        }
    }

    #[test]
    fn invalid_messages_get_the_right_code_and_keep_the_id() {
        let code = |r: Result<Message, Invalid>| r.unwrap_err().error.code;
        assert_eq!(code(Message::parse(b"{not json")), codes::PARSE_ERROR);
        assert_eq!(code(parse(json!([]))), codes::INVALID_REQUEST);
        assert_eq!(code(parse(json!(3))), codes::INVALID_REQUEST);
        assert_eq!(
            code(parse(json!({"id": 1, "method": "x"}))),
            codes::INVALID_REQUEST
        );
        assert_eq!(
            code(parse(json!({"jsonrpc": "2.0", "id": 1.5, "method": "x"}))),
            codes::INVALID_REQUEST
        );
        assert_eq!(
            code(parse(json!({"jsonrpc": "2.0", "id": {}, "method": "x"}))),
            codes::INVALID_REQUEST
        );
        assert_eq!(
            code(parse(json!({"jsonrpc": "2.0", "id": 1, "method": 5}))),
            codes::INVALID_REQUEST
        );
        assert_eq!(
            code(parse(
                json!({"jsonrpc": "2.0", "id": 1, "method": "x", "params": [1]})
            )),
            codes::INVALID_PARAMS
        );
        assert_eq!(
            code(parse(json!({"jsonrpc": "2.0", "id": 1}))),
            codes::INVALID_REQUEST
        );
        assert_eq!(
            code(parse(json!({"jsonrpc": "2.0", "result": 1}))),
            codes::INVALID_REQUEST
        );
        assert_eq!(
            code(parse(json!({"jsonrpc": "2.0", "id": null, "result": 1}))),
            codes::INVALID_REQUEST
        );
        assert_eq!(
            code(parse(json!({"jsonrpc": "2.0", "id": null, "method": "x"}))),
            codes::INVALID_REQUEST
        );
        let invalid = parse(json!({"jsonrpc": "1.0", "id": "abc", "method": "x"})).unwrap_err();
        assert_eq!(invalid.id, Some(Id::String("abc".into())));
    }
}
