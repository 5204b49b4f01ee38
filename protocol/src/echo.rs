//! Client input quoted back in messages, clipped.
//!
//! Threat: a message that quotes a value whole lets one request make the
//! daemon build, queue and send a message as large as the request (100
//! `session/create` with a 2 M-character `language` held 1.3 GiB in a
//! daemon whose client did not read). Every [`crate::ErrorObject`] message
//! passes through [`clip_message`], so no error can carry more than a few
//! KiB of what a client sent, whoever wrote the message (serde included).

use std::borrow::Cow;

/// The most characters of one quoted value kept in a message.
pub const MAX_ECHO_CHARS: usize = 100;
/// The most characters of a whole message.
pub const MAX_MESSAGE_CHARS: usize = 1024;

/// `text` cut to at most `max` characters; a cut one ends in `…`.
pub fn clip(text: &str, max: usize) -> Cow<'_, str> {
    match text.char_indices().nth(max) {
        None => Cow::Borrowed(text),
        Some((end, _)) => Cow::Owned(format!("{}…", &text[..end])),
    }
}

/// `message` with every quoted span (between backticks, or between double
/// quotes as serde writes values) clipped to [`MAX_ECHO_CHARS`], and the
/// whole clipped to [`MAX_MESSAGE_CHARS`].
pub fn clip_message(message: String) -> String {
    if message.len() <= MAX_ECHO_CHARS {
        // Nothing in it can be longer than the limit.
        return message;
    }
    let mut clipped = String::new();
    let mut rest = message.as_str();
    while clipped.len() < MAX_MESSAGE_CHARS * 4 {
        let Some(open) = rest.find(['`', '"']) else {
            break;
        };
        let quote = &rest[open..=open];
        clipped.push_str(&rest[..=open]);
        let inside = &rest[open + 1..];
        let close = inside.find(quote).unwrap_or(inside.len());
        clipped.push_str(&clip(&inside[..close], MAX_ECHO_CHARS));
        rest = &inside[close..];
        if !rest.is_empty() {
            clipped.push_str(quote);
            rest = &rest[1..];
        }
    }
    clipped.push_str(&clip(rest, MAX_MESSAGE_CHARS));
    clip(&clipped, MAX_MESSAGE_CHARS).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_messages_are_kept_whole() {
        let message = "unknown method `x`, expected \"y\"".to_string();
        assert_eq!(clip_message(message.clone()), message);
        let long = format!("{} `ok`", "word ".repeat(100));
        assert_eq!(clip_message(long.clone()), long);
    }

    #[test]
    fn each_long_quoted_value_is_clipped_and_the_rest_kept() {
        let value = "é".repeat(2_000_000);
        let message = format!("unknown variant `{value}`, expected `python` or `javascript`");
        let clipped = clip_message(message);
        let head = "é".repeat(MAX_ECHO_CHARS);
        assert_eq!(
            clipped,
            format!("unknown variant `{head}…`, expected `python` or `javascript`")
        );
        let message = format!("invalid type: string \"{value}\", expected u64");
        assert_eq!(
            clip_message(message),
            format!("invalid type: string \"{head}…\", expected u64")
        );
    }

    #[test]
    fn an_unquoted_or_unclosed_echo_is_clipped_as_a_whole() {
        for message in [
            "x".repeat(1 << 20),
            format!("no end `{}", "y".repeat(1 << 20)),
            "`a` ".repeat(1 << 18),
        ] {
            let clipped = clip_message(message);
            assert!(
                clipped.chars().count() <= MAX_MESSAGE_CHARS + 1,
                "{clipped}"
            );
            assert!(clipped.ends_with('…'));
        }
    }
}
