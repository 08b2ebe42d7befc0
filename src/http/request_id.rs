//! Request ids: every request is handled as its id ([`telemetry::with_request_id`]), so every log
//! line of that request says `request_id=...`, and the answer says `X-Request-Id` back.
//!
//! A proxy's id is taken as it is, so that its access log and ours name the same request; one
//! that could garble a log line or a header (not visible ASCII, too long, sent twice) is
//! replaced by one of our own, never trimmed into something else.

use std::future::Future;

use actix_web::dev::{Service, ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::http::ConnectionType;
use actix_web::web;
use rand::RngCore;

use super::AppState;
use crate::telemetry;

pub const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Longer ids than this are not an id any proxy makes (UUIDs are 36, Traefik's and nginx's 32).
pub const MAX_LEN: usize = 128;

/// Whether a client's `X-Request-Id` is kept: 1 to [`MAX_LEN`] bytes of visible ASCII, so that
/// no space or control character can split a log line or start a field of its own.
pub fn accepted(value: &[u8]) -> bool {
    (1..=MAX_LEN).contains(&value.len()) && value.iter().all(u8::is_ascii_graphic)
}

/// 22 base64url characters: 11 for 8 random bytes drawn once per thread, 11 for the thread's
/// count of ids. An id only needs to be unique, not secret or unguessable, so a counter does:
/// no random generator runs per request, and the random half is written out once.
pub fn generate() -> HeaderValue {
    thread_local! {
        static NEXT: std::cell::Cell<([u8; 11], u64)> =
            std::cell::Cell::new((sextets(rand::thread_rng().next_u64()), 0));
    }
    let (prefix, count) = NEXT.with(|next| {
        let (prefix, count) = next.get();
        next.set((prefix, count.wrapping_add(1)));
        (prefix, count)
    });
    let mut text = [0u8; 22];
    text[..11].copy_from_slice(&prefix);
    text[11..].copy_from_slice(&sextets(count));
    HeaderValue::from_bytes(&text).unwrap_or_else(|_| HeaderValue::from_static("-"))
}

/// `value` in 11 base64url digits, most significant first (the first digit holds 4 bits).
fn sextets(value: u64) -> [u8; 11] {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut digits = [0u8; 11];
    for (i, digit) in digits.iter_mut().enumerate() {
        let shift = 6 * (10 - i);
        *digit = ALPHABET[((value >> shift) & 63) as usize];
    }
    digits
}

/// The request's id: the client's when [`accepted`] and sent once, otherwise a new one.
pub fn of(req: &ServiceRequest) -> HeaderValue {
    let mut values = req.headers().get_all(&X_REQUEST_ID);
    match (values.next(), values.next()) {
        (Some(value), None) if accepted(value.as_bytes()) => value.clone(),
        _ => generate(),
    }
}

/// The middleware (`App::wrap_fn`): the request runs as its id, and the answer carries it.
/// While shutting down, answers also close their connection, so that proxies open their next
/// one to a replica that stays.
pub fn middleware<S, B>(
    req: ServiceRequest,
    service: &S,
) -> impl Future<Output = Result<ServiceResponse<B>, actix_web::Error>> + 'static
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error>,
    S::Future: 'static,
{
    let id = of(&req);
    // `call` only routes: the handler runs, and logs, when the future is polled.
    let response = service.call(req);
    async move {
        let mut response = telemetry::with_request_id(id.clone(), response).await?;
        let draining = response
            .request()
            .app_data::<web::Data<AppState>>()
            .is_some_and(|state| state.is_shutting_down());
        if draining {
            response
                .response_mut()
                .head_mut()
                .set_connection_type(ConnectionType::Close);
        }
        response.headers_mut().insert(X_REQUEST_ID, id);
        Ok(response)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_client_id_is_kept_only_when_it_cannot_garble_a_line() {
        let longest = "a".repeat(MAX_LEN);
        let too_long = "a".repeat(MAX_LEN + 1);
        let cases: &[(&[u8], bool)] = &[
            (b"0af7651916cd43dd8448eb211c80319c", true),
            (b"f47ac10b-58cc-4372-a567-0e02b2c3d479", true),
            (b"x", true),
            (b"a/b+c=d_e.f:g~h!\"#$%&'()*,;<>?@[\\]^`{|}", true),
            (longest.as_bytes(), true),
            (b"", false),
            (too_long.as_bytes(), false),
            (b"two words", false),
            (b"tab\there", false),
            (b"line\nbreak", false),
            (b"cr\rhere", false),
            (b"nul\0here", false),
            (b"del\x7fhere", false),
            ("caf\u{e9}".as_bytes(), false),
            (b"\xff\xfe", false),
        ];
        for (value, kept) in cases {
            assert_eq!(
                accepted(value),
                *kept,
                "{:?}",
                String::from_utf8_lossy(value)
            );
        }
    }

    #[test]
    fn sextets_are_base64url_digits_most_significant_first() {
        assert_eq!(&sextets(0), b"AAAAAAAAAAA");
        assert_eq!(&sextets(1), b"AAAAAAAAAAB");
        assert_eq!(&sextets(63), b"AAAAAAAAAA_");
        assert_eq!(&sextets(64), b"AAAAAAAAABA");
        assert_eq!(&sextets(u64::MAX), b"P__________");
    }

    #[test]
    fn generated_ids_are_22_base64url_characters_and_differ() {
        let ids: Vec<HeaderValue> = (0..50).map(|_| generate()).collect();
        for id in &ids {
            let text = id.to_str().unwrap();
            assert_eq!(text.len(), 22, "{text}");
            assert!(
                text.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
                "{text}"
            );
            assert!(accepted(id.as_bytes()), "{text}");
        }
        let distinct: std::collections::HashSet<&HeaderValue> = ids.iter().collect();
        assert_eq!(distinct.len(), ids.len());
        // Other threads count from prefixes of their own.
        let elsewhere: Vec<HeaderValue> =
            std::thread::spawn(|| (0..50).map(|_| generate()).collect())
                .join()
                .unwrap();
        assert!(elsewhere.iter().all(|id| !distinct.contains(id)));
    }
}
